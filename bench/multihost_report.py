"""Figures and the printed report of bench/multihost.py (issue 19)."""
from __future__ import annotations

import shlex
import statistics
import sys

from load import api_by_kind, pct  # bench/load.py


def summarise(args, facts, shift, base, timings, results, sampler, checks) -> dict:
    t0, t_users, t_end = timings["t_first"], timings["t_users"], timings["t_end"]
    api = api_by_kind(results.rows, t_users, t_end)
    samples = [s for s in sampler.samples if s["t"] >= t0 - 1]
    cores = facts["cpus"] or 1
    for s in samples:
        s["groups"]["other processes"] = max(0.0, s["busy"] * cores - sum(
            v for k, v in s["groups"].items() if k != "other processes"))
    groups = sorted({g for s in samples for g in s["groups"]})
    cpu = {g: {"mean": statistics.fmean(s["groups"].get(g, 0) for s in samples) if samples else 0,
               "max": max((s["groups"].get(g, 0) for s in samples), default=0)} for g in groups}
    # CPU seconds each group spent from the first docking to the last camera released, per GB docked:
    # the per-byte cost docs/scaling.md builds on.
    window = [x for x in samples if x["t"] <= t0 + timings["released_last_s"] + 1]
    cpu_s = {g: sum(x["groups"].get(g, 0) / 100 * x["seconds"] for x in window) for g in groups}
    gb = shift["bytes"] / 1e9
    for g in groups:
        cpu[g].update(cpu_s=cpu_s[g], cpu_s_per_gb=cpu_s[g] / gb if gb else float("nan"))
    machine = {k: {"mean": statistics.fmean(s[k] for s in samples) if samples else 0,
                   "max": max((s[k] for s in samples), default=0)}
               for k in ("busy", "iowait", "steal", "read_mb_s", "write_mb_s", "disk_util")}
    series = [{"t": round(s["t"] - t0, 1), "busy": round(s["busy"], 1), "iowait": round(s["iowait"], 1),
               "read_mb_s": round(s["read_mb_s"], 1), "write_mb_s": round(s["write_mb_s"], 1),
               "verified": s["verified"], "released": s["released"], "queues": s["queues"]} for s in samples]
    per_cam = list(timings["per_camera_s"].values())
    opened = list(timings["docking_to_session_s"].values())
    nbytes = shift["bytes"]
    return {
        "command": shlex.join(getattr(sys, "orig_argv", sys.argv)), "args": vars(args), "machine": facts,
        "shift": {"cameras": args.hosts * args.cameras_per_host, "clips": shift["files"], "bytes": nbytes},
        "baseline": {k: v for k, v in base.items() if k != "digests"},
        "ours": {"verified_last_s": timings["verified_last_s"], "released_last_s": timings["released_last_s"],
                 "mb_s_verified": nbytes / 1e6 / timings["verified_last_s"],
                 "mb_s_released": nbytes / 1e6 / timings["released_last_s"],
                 "ratio": (nbytes / 1e6 / timings["released_last_s"]) / base["mb_s"],
                 "arrival_bound_mb_s": nbytes / 1e6 / args.dock_window if args.dock_window > 0 else float("inf")},
        "per_camera": {"p50_s": pct(per_cam, 50), "p95_s": pct(per_cam, 95), "max_s": max(per_cam, default=float("nan")),
                       "min_s": min(per_cam, default=float("nan")), "cameras": len(per_cam),
                       "docked_to_session_p50_s": pct(opened, 50),
                       "docked_to_session_max_s": max(opened, default=float("nan")), "all": timings["per_camera_s"]},
        "api": api, "errors": dict(results.errors), "cpu_percent_of_one_core": cpu, "machine_percent": machine,
        "queues_max": {q: max((s["queues"].get(q, 0) for s in samples), default=0) for q in sampler.queues},
        "checks": checks, "series": series,
    }


def report(s: dict, target_ratio: float, target_p95: float) -> str:
    a, m, o, b, pc, c = s["args"], s["machine"], s["ours"], s["baseline"], s["per_camera"], s["checks"]
    sh = s["shift"]
    store = "local write-once store (--local-store)" if a["local_store"] else \
        f"S3 Object Lock: Ceph RGW {a['s3']} through a TCP forwarder on {a['subnet']}.1"
    api_p95 = s["api"]["all"]["p95_ms"]
    ok_checks = (c["custody_ok"] and c["verified"] == sh["clips"] == c["recordings"] == c["sha256_match"]
                 and c["left_on_cameras"] == 0 and (a["local_store"] or c["locked_in_store"] == sh["clips"]))
    out = ["", "=" * 78, "Multi-host shift change (bench/multihost.py, issue 19)", "=" * 78,
           f"command: {s['command']}",
           f"machine: {m['cpu_model']}, {m['cpus']} CPUs, {m['mem_gb']:.1f} GB RAM, kernel {m['kernel']}, "
           f"Python {m['python']}; loadavg start {' '.join(m['loadavg_start'])}, end {' '.join(m['loadavg_end'])}; "
           f"page cache dropped before the baseline and the shift: {'yes' if m['page_cache_dropped'] else 'NO'}",
           f"rig: {a['hosts']} dock hosts (network namespaces, veth → bridge {a['subnet']}.0/24), each dockd + "
           f"dock worker -c {a['dock_concurrency']}; own PostgreSQL 15 and Redis on {a['subnet']}.1; {store}; "
           f"gunicorn gthread {a['web_workers']}×{a['web_threads']}; media worker during the shift: "
           + (f"-c {a['media_concurrency']}" if a["media_concurrency"] else "stopped (tasks queued)"),
           f"shift: {sh['cameras']} cameras ({a['hosts']} × {a['cameras_per_host']}), {sh['clips']} clips, "
           f"{sh['bytes'] / 1e6:.0f} MB ({a['clip_seconds']:g} s 1080p H.264/AAC at {a['bitrate']}), docked over "
           f"{a['dock_window']:g} s; {a['users']} users", "",
           f"baseline (read + SHA-256 + write + fsync, sequential): {b['seconds']:.1f} s, {b['mb_s']:.0f} MB/s "
           f"({b['cpu_s']:.1f} s CPU)",
           f"ours: first docking → last clip verified   {o['verified_last_s']:.1f} s, {o['mb_s_verified']:.0f} MB/s",
           f"      first docking → last camera released {o['released_last_s']:.1f} s, {o['mb_s_released']:.0f} MB/s "
           f"= {o['ratio']:.2f}× the baseline (target ≥ {target_ratio}×; arrivals alone allow "
           f"{o['arrival_bound_mb_s']:.0f} MB/s)",
           f"per camera, docked → may be unplugged: p50 {pc['p50_s']:.1f} s, p95 {pc['p95_s']:.1f} s, max "
           f"{pc['max_s']:.1f} s (min {pc['min_s']:.1f}; docked → session opened p50 "
           f"{pc['docked_to_session_p50_s']:.1f} s, max {pc['docked_to_session_max_s']:.1f} s)", "",
           f"{'API request':<14}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'errors':>8}"]
    for kind, x in s["api"].items():
        out.append(f"{kind:<14}{x['requests']:>7}{x['rps']:>8.1f}{x['p50_ms']:>9.0f}{x['p95_ms']:>9.0f}"
                   f"{x['max_ms']:>9.0f}{x['errors']:>8}")
    if s["errors"]:
        out.append("errors: " + ", ".join(f"{k} ×{v}" for k, v in sorted(s["errors"].items())))
    queues = list(s["queues_max"])
    out += ["", "queue depths over time (waiting tasks; verified clips and released cameras so far):",
            f"{'t s':>6}{'busy%':>6}{'iow%':>6}{'rd MB/s':>8}{'wr MB/s':>8}{'verif':>6}{'rel':>5}  "
            + " ".join(f"{q:>12}" for q in queues)]
    series = s["series"]
    step = max(1, len(series) // 30)
    for x in series[::step] + ([series[-1]] if series and (len(series) - 1) % step else []):
        out.append(f"{x['t']:>6.0f}{x['busy']:>6.0f}{x['iowait']:>6.0f}{x['read_mb_s']:>8.0f}{x['write_mb_s']:>8.0f}"
                   f"{x['verified']:>6}{x['released']:>5}  " + " ".join(f"{x['queues'].get(q, 0):>12}" for q in queues))
    out.append("max depth: " + ", ".join(f"{q} {v}" for q, v in s["queues_max"].items()))
    out += ["", "CPU (from the first docking): % of one core mean / max; CPU s until the last camera released, per GB:"]
    for k, v in sorted(s["cpu_percent_of_one_core"].items(), key=lambda kv: -kv[1]["mean"]):
        out.append(f"  {k:<24}{v['mean']:>6.0f} / {v['max']:<5.0f}{v['cpu_s']:>8.1f} s{v['cpu_s_per_gb']:>8.1f} s/GB")
    mp = s["machine_percent"]
    out.append(f"machine: busy {mp['busy']['mean']:.0f} % (max {mp['busy']['max']:.0f}), iowait {mp['iowait']['mean']:.0f} %, "
               f"steal {mp['steal']['mean']:.0f} %; disk write {mp['write_mb_s']['mean']:.0f} MB/s mean (max "
               f"{mp['write_mb_s']['max']:.0f}), read {mp['read_mb_s']['mean']:.0f} MB/s, utilisation "
               f"{mp['disk_util']['mean']:.0f} %")
    out += ["", f"checks: {c['verified']}/{sh['clips']} clips verified, {c['recordings']} recordings, "
            f"{c['sha256_match']} with the baseline's SHA-256, "
            + ("" if a["local_store"] else f"{c['locked_in_store']} locked (COMPLIANCE, right size) in the store, ")
            + f"{c['wiped']} wiped, {c['left_on_cameras']} left on cameras; custody verify: {c['custody']}"
            + (f"; store errors: {c['store_errors']}" if c["store_errors"] else ""),
            f"verdict: throughput {o['ratio']:.2f}× {'PASS' if o['ratio'] >= target_ratio else 'FAIL'}; "
            f"API p95 {api_p95:.0f} ms {'PASS' if api_p95 < target_p95 else 'FAIL'}; "
            f"clips and custody {'PASS' if ok_checks else 'FAIL'}", "=" * 78]
    return "\n".join(out)
