#!/usr/bin/env python
"""Offload benchmark (issue 2): time until every docked clip is verified, against a plain copy + hashlib.

What it does, in order (see bench/README.md and docs/benchmarks.md):

1. Generation (not timed): one 1080p H.264/AAC clip is encoded with
   ``evidence.integrations.ffmpeg.synthesize_clip``; every other clip is a stream-copy remux of it
   with a unique ``comment`` / ``creation_time`` tag, so every file has its own SHA-256 (the
   pipeline deduplicates identical content). Clips and sidecars are spread over N camera volumes
   (``<workdir>/master/slotK``, copied to ``<workdir>/docks/slotK`` before each phase).
2. Baseline (timed): for every file of the volumes, ``shutil.copyfile`` to a directory, SHA-256 of
   the copy with hashlib, fsync; sequential.
3. Ours (timed): ``manage.py offload <volume> --no-progress`` for the N volumes at once (one process
   per docked camera), until all have exited (0 = every clip verified in the store). Media work is
   queued to the filesystem broker and not run (no CELERY_TASK_ALWAYS_EAGER).
   The page cache is dropped before each timed phase (then the project's code is re-warmed by an
   untimed ``manage.py offload --help``: clips cold, software warm); the order alternates with --repeat.
4. Diagnostics (not in the ratio): disk read + SHA-256 of the clips and of the stored objects with
   the page cache dropped (the cost of the read-back verification), hashlib speed in memory, and
   the fixed cost of N concurrent ``offload`` runs on empty volumes.
5. Playback copies: ``playback_copy(remux=True)`` and the whole ``recording_process_media`` step vs
   the same ffmpeg command run bare; then the same for a transcode (HEVC by default, remux=False).

Run from the repository root:  .venv/bin/python bench/offload.py  (about 10 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import resource
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import PageCache, cpu_model, meminfo, read_text  # noqa: E402  (bench/machine.py)
from unittest import mock

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from evidence.integrations import ffmpeg as fx  # noqa: E402  (needs REPO on sys.path)

PY = sys.executable
MANAGE = str(REPO / "manage.py")
CHUNK = 8 * 1024 * 1024  # same as TEMOIN_CHUNK_SIZE / the store
ORG = "bench"
TARGET_OFFLOAD = 1.3
TARGET_MEDIA = 1.1
# Project settings read from the environment: none may leak into the runs but TEMOIN_DATA_DIR.
PROJECT_ENV_PREFIXES = ("TEMOIN_", "DATABASE_URL", "S3_", "CELERY_", "DJANGO_", "REDIS_")


# --- small helpers -----------------------------------------------------------------------------

def log(msg: str = "") -> None:
    print(msg, flush=True)


def mb(n: float) -> float:
    return n / 1e6


def rate(nbytes: int, seconds: float) -> float:
    return mb(nbytes) / seconds if seconds > 0 else float("inf")


def project_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV_PREFIXES)}
    env["TEMOIN_DATA_DIR"] = str(data_dir)
    return env




PAGE_CACHE = PageCache(warn=lambda msg: log(msg))


def drop_caches() -> bool:
    return PAGE_CACHE.drop()


PER_CAMERA_PROCESS = False
# Warm (default): the offload process has started Django before the camera is docked, as dockd
# and the dock worker have on a dock host; the clock starts at "docked". --cold-start times the
# whole `manage.py offload` command, interpreter start-up included.
WARM_PROCESS = True
WARM_RUNNER = r"""
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
sys.path.insert(0, os.getcwd())
import django
django.setup()
import evidence.ingest.services  # noqa: F401,E402  (loaded, as in a running dockd / worker)
import evidence.management.commands.offload  # noqa: F401,E402
from django.core import checks
from django.core.management import execute_from_command_line
checks.run_checks()  # done once when dockd / the worker started (it imports every URL and view)
print("ready", flush=True)
sys.stdin.readline()
log = os.open(os.environ["BENCH_LOG"], os.O_WRONLY | os.O_CREAT | os.O_APPEND)
os.dup2(log, 1)
os.dup2(log, 2)
execute_from_command_line(["manage.py", "offload", *sys.argv[1:], "--skip-checks"])
"""


def manage(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, MANAGE, *args], env=project_env(data_dir), cwd=REPO,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def sha256_file(path: Path, *, fadvise_dontneed: bool = False) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        if fadvise_dontneed:
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while data := fh.read(CHUNK):
            h.update(data)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def machine_facts(workdir: Path) -> dict:
    cpu, mem = cpu_model(), meminfo()
    du = shutil.disk_usage(workdir)
    fs = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", str(workdir)],
                        capture_output=True, text=True).stdout.strip()
    rot = ""
    src = fs.split()[0] if fs else ""
    if src.startswith("/dev/"):
        rot = read_text(f"/sys/block/{Path(src).name}/queue/rotational").strip()
    ffv = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_total_gib": round(mem.get("MemTotal", 0) / 2**30, 1),
        "mem_available_gib": round(mem.get("MemAvailable", 0) / 2**30, 1),
        "loadavg": read_text("/proc/loadavg").split()[:3],
        "workdir": str(workdir),
        "workdir_fs": fs + ({"0": " (non-rotational)", "1": " (rotational)"}.get(rot, "")),
        "workdir_free_gb": round(du.free / 1e9, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ffmpeg": ffv[0] if ffv else "?",
    }


# --- 1. generation -----------------------------------------------------------------------------

def device_json(path: Path, serial: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "DEVICE.json").write_text(json.dumps({"serial": serial, "model": "BENCH-1080", "firmware": "1.0.0"}))


def generate(workdir: Path, *, cameras: int, total_bytes: int, clip_seconds: float, bitrate: str,
             transcode_codec: str, transcode_seconds: float, transcode_clips: int = 1) -> dict:
    gen = workdir / "gen"
    master = workdir / "master"
    gen.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    base = gen / "base.mp4"
    log(f"generating the base clip: {clip_seconds:g} s of 1080p H.264/AAC at {bitrate} (ultrafast)…")
    fx.synthesize_clip(base, seconds=clip_seconds, width=1920, height=1080, preset="ultrafast", bitrate=bitrate)
    base_size = base.stat().st_size
    n_clips = max(cameras, math.ceil(total_bytes / base_size))
    log(f"base clip {mb(base_size):.1f} MB → {n_clips} clips (distinct remuxes) over {cameras} camera(s)")

    serials = [f"BWC-{k + 1:04d}" for k in range(cameras)]
    volumes = []
    for k, serial in enumerate(serials):
        device_json(master / f"slot{k + 1}", serial)
        volumes.append({"slot": f"slot{k + 1}", "serial": serial, "matricule": f"M{k + 1:04d}", "clips": []})
    start0 = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).replace(microsecond=0)
    run_tag = uuid.uuid4().hex[:8]
    for i in range(n_clips):
        vol = volumes[i % cameras]
        j = len(vol["clips"])
        started = start0 + dt.timedelta(seconds=i * (clip_seconds + 60))
        ended = started + dt.timedelta(seconds=clip_seconds)
        stem = f"DCIM/100BWC/{vol['serial']}_{started:%Y%m%d_%H%M%S}_{j:04d}"
        clip = master / vol["slot"] / f"{stem}.mp4"
        clip.parent.mkdir(parents=True, exist_ok=True)
        # Stream copy (no re-encoding), moov left at the end as cameras write it; the tags make
        # every file's bytes, hence its SHA-256, unique.
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(base), "-map", "0", "-c", "copy",
             "-metadata", f"comment=temoin-bench {run_tag} {vol['serial']} clip {j}",
             "-metadata", f"creation_time={started:%Y-%m-%dT%H:%M:%S.000000Z}", "-f", "mp4", str(clip)],
            check=True,
        )
        sidecar = {
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "ended_at": ended.isoformat().replace("+00:00", "Z"),
            "officer": vol["matricule"],
            "trigger_reason": "incident" if i % 3 else "risk_of_incident",
            "trigger_source": "manual button",
            "purpose": "evidence",
            "subject_notified": bool(i % 2),
            "location": [48.8566 + i * 1e-4, 2.3522 - i * 1e-4],
            "intervention": f"BENCH-{run_tag}-{i:04d}",
        }
        clip.with_suffix(".json").write_text(json.dumps(sidecar))
        mtime = int(ended.timestamp() * 1e9)
        os.utime(clip, ns=(mtime, mtime))
        vol["clips"].append({"rel": f"{stem}.mp4", "size": clip.stat().st_size})

    # A short HEVC (or MJPEG) clip on its own camera, for the transcode part.
    tserial = "BWC-TRANSCODE"
    device_json(master / "transcode", tserial)
    ext = ".avi" if transcode_codec == "mjpeg" else ".mp4"
    tclip = master / "transcode" / "DCIM" / f"{tserial}_0001{ext}"
    tclip.parent.mkdir(parents=True, exist_ok=True)
    log(f"generating the transcode clip: {transcode_seconds:g} s of 1080p {transcode_codec}…")
    fx.synthesize_clip(tclip, seconds=transcode_seconds, width=1920, height=1080, codec=transcode_codec,
                       creation_time=start0)
    for n in range(2, transcode_clips + 1):  # distinct copies (stream copy, another tag)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(tclip), "-map", "0", "-c", "copy",
                        "-metadata", f"comment=temoin-bench {run_tag} transcode {n}",
                        str(tclip.with_name(f"{tserial}_{n:04d}{ext}"))], check=True)
    os.sync()
    files = sum(len(v["clips"]) for v in volumes)
    nbytes = sum(c["size"] for v in volumes for c in v["clips"])
    log(f"generated {files} clips, {mb(nbytes):.1f} MB, in {time.perf_counter() - t0:.0f} s")
    return {"volumes": volumes, "master": str(master), "files": files, "bytes": nbytes,
            "transcode": {"slot": "transcode", "serial": tserial, "matricule": "MT0001",
                          "clip": str(tclip), "size": tclip.stat().st_size}}


def refresh_docks(workdir: Path, gen: dict, slots: list[str]) -> None:
    """<workdir>/docks/<slot> = a fresh copy of the master volume (times kept), when anything is missing."""
    master, docks = Path(gen["master"]), workdir / "docks"
    for slot in slots:
        src, dst = master / slot, docks / slot
        same = dst.exists() and all(
            (dst / p.relative_to(src)).exists() and (dst / p.relative_to(src)).stat().st_size == p.stat().st_size
            for p in src.rglob("*") if p.is_file())
        if not same:
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, copy_function=shutil.copy2)


def volume_files(root: Path) -> list[Path]:
    """What a plain copy of the camera would take: clips and sidecars (not DEVICE.json)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "DEVICE.json")


# --- 2. baseline -------------------------------------------------------------------------------

def run_baseline(workdir: Path, gen: dict, tag: str) -> dict:
    docks = workdir / "docks"
    files = [f for v in gen["volumes"] for f in volume_files(docks / v["slot"])]
    dest = workdir / f"baseline-{tag}"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    drop_caches()
    c0, t0 = cpu_seconds(), time.perf_counter()
    nbytes = 0
    for i, src in enumerate(files):
        dst = dest / f"{i:05d}-{src.name}"
        shutil.copyfile(src, dst)
        h = hashlib.sha256()
        with open(dst, "rb", buffering=0) as fh:
            while data := fh.read(CHUNK):
                h.update(data)
                nbytes += len(data)
            os.fsync(fh.fileno())
    fsync_dir(dest)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    shutil.rmtree(dest)
    return {"seconds": seconds, "cpu_s": cpu, "files": len(files), "bytes": nbytes}


# --- 3. ours -----------------------------------------------------------------------------------

def setup_template(workdir: Path, gen: dict) -> Path:
    """A migrated data dir with the organisation, officers and cameras (copied for every repeat)."""
    tpl = workdir / "data-template"
    shutil.rmtree(tpl, ignore_errors=True)
    tpl.mkdir(parents=True)
    log("setting up the data dir (migrate, addorg, adduser, addcamera)…")
    manage(tpl, "migrate", "--noinput")
    manage(tpl, "addorg", ORG, "Bench police service")
    for v in [*gen["volumes"], gen["transcode"]]:
        manage(tpl, "adduser", f"officer-{v['matricule'].lower()}", "--org", ORG, "--role", "officer",
               "--matricule", v["matricule"])
        manage(tpl, "addcamera", v["serial"], "--org", ORG, "--officer", v["matricule"])
    return tpl


def warm_code(data: Path) -> None:
    """Load Python, Django and the project into the page cache (untimed) after dropping it: on a
    dock host the software is warm, the camera's clips are not. The baseline runs in this process."""
    manage(data, "offload", "--help")


def fresh_data_dir(workdir: Path, tpl: Path, tag: str) -> Path:
    data = workdir / f"data-{tag}"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(tpl, data)
    return data


def offload_concurrently(data: Path, volumes: list[Path], *, keep: bool, logdir: Path, tag: str) -> dict:
    logdir.mkdir(parents=True, exist_ok=True)
    env = project_env(data)
    procs = []
    c0, t0, epoch0 = cpu_seconds(), time.perf_counter(), time.time()
    # Default: one `offload` process for the cameras docked at once (as on a dock host, where the
    # software starts once); --per-camera-process runs one process per camera instead.
    groups = [[vol] for vol in volumes] if PER_CAMERA_PROCESS or len(volumes) == 1 else [volumes]
    warm = []
    for group in groups:
        vol = group[0]
        out = open(logdir / f"offload-{tag}-{vol.name}.log", "w")
        args = [*map(str, group), "--dock", "bench", "--no-progress"]
        if len(group) == 1:
            args += ["--slot", vol.name]
        if keep:
            args.append("--keep")
        if WARM_PROCESS:
            p = subprocess.Popen([PY, "-c", WARM_RUNNER, *args], env={**env, "BENCH_LOG": out.name}, cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert p.stdout.readline().strip() == "ready", "the warm offload process did not start"
            warm.append(p)
            procs.append((vol, out, p))
        else:
            procs.append((vol, out, subprocess.Popen([PY, MANAGE, "offload", *args], env=env, cwd=REPO,
                                                     stdout=out, stderr=subprocess.STDOUT)))
    if WARM_PROCESS:  # the cameras are docked now
        c0, t0, epoch0 = cpu_seconds(), time.perf_counter(), time.time()
        for p in warm:
            p.stdin.write("go\n")
            p.stdin.flush()
    ends = {}
    pending = {p.pid: (vol, out, p) for vol, out, p in procs}
    while pending:
        pid, status = os.wait()
        if pid in pending:
            vol, out, p = pending.pop(pid)
            ends[vol.name] = (time.perf_counter() - t0, os.waitstatus_to_exitcode(status))
            p.returncode = ends[vol.name][1]
            out.close()
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    return {"seconds": seconds, "cpu_s": cpu, "spawn_epoch": epoch0,
            "per_volume": {k: {"seconds": round(s, 2), "exit": rc} for k, (s, rc) in ends.items()},
            "all_exit_0": all(rc == 0 for _, rc in ends.values())}


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


def timeline(data: Path, spawn_epoch: float, session_ids: list[int] | None = None) -> dict:
    """Where the offload time went, from the custody events' timestamps (one session per process).

    startup: process spawned → offload.started; pulls: recording.collected → recording.stored per
    clip (camera read + hash + store write + fsync + read-back + lock check); close: last clip →
    offload.finished (wipe); the rest is the process exit.
    """
    con = sqlite3.connect(data / "temoin.sqlite3")
    try:
        ev = con.execute("SELECT occurred_at, action, subject_type, subject_id, details FROM audit_custodyevent "
                         "WHERE action IN ('offload.started', 'offload.finished', 'recording.collected', "
                         "'recording.stored') ORDER BY seq").fetchall()
        rec_session = dict(con.execute("SELECT id, offload_session_id FROM evidence_recording").fetchall())
        rec_size = dict(con.execute("SELECT id, size FROM evidence_recording").fetchall())
    finally:
        con.close()
    sessions: dict[int, dict] = {}
    collected: dict[int, float] = {}
    for at, action, stype, sid, details in ev:
        t = _epoch(at)
        if action == "offload.started":
            sessions.setdefault(int(sid), {})["started"] = t
        elif action == "offload.finished":
            sessions.setdefault(int(sid), {})["finished"] = t
        elif action == "recording.collected":
            collected[int(sid)] = t
        elif action == "recording.stored":
            rid = int(sid)
            s = sessions.setdefault(rec_session[rid], {})
            s.setdefault("pulls", []).append((t - collected[rid], rec_size.get(rid) or 0))
            s["last_stored"] = max(s.get("last_stored", 0), t)
    if session_ids is not None:
        sessions = {k: v for k, v in sessions.items() if k in session_ids}
    startup = [s["started"] - spawn_epoch for s in sessions.values() if "started" in s]
    close = [s["finished"] - s["last_stored"] for s in sessions.values() if "finished" in s and "last_stored" in s]
    pulls = [p for s in sessions.values() for p in s.get("pulls", [])]
    return {
        "startup_s_mean": sum(startup) / len(startup) if startup else None,
        "startup_s_max": max(startup) if startup else None,
        "close_s_mean": sum(close) / len(close) if close else None,
        "pull_s_sum": sum(d for d, _ in pulls),
        "pull_s_mean": sum(d for d, _ in pulls) / len(pulls) if pulls else None,
        "pull_mb_s_per_clip": (mb(sum(b for _, b in pulls)) / sum(d for d, _ in pulls)) if pulls else None,
        "pulls": len(pulls),
    }


def db_counts(data: Path) -> dict:
    con = sqlite3.connect(data / "temoin.sqlite3")
    try:
        items = dict(con.execute("SELECT status, COUNT(*) FROM devices_offloaditem GROUP BY status").fetchall())
        recs = dict(con.execute("SELECT status, COUNT(*) FROM evidence_recording GROUP BY status").fetchall())
    finally:
        con.close()
    return {"items": items, "recordings": recs}


def run_ours(workdir: Path, gen: dict, tpl: Path, tag: str, *, keep: bool) -> dict:
    data = fresh_data_dir(workdir, tpl, tag)
    vols = [workdir / "docks" / v["slot"] for v in gen["volumes"]]
    drop_caches()
    warm_code(data)
    res = offload_concurrently(data, vols, keep=keep, logdir=workdir / "logs", tag=tag)
    res["data_dir"] = str(data)
    res["db"] = db_counts(data)
    res["timeline"] = timeline(data, res["spawn_epoch"])
    verified = res["db"]["items"].get("verified", 0)
    res["files"] = gen["files"]
    res["bytes"] = gen["bytes"]
    res["ok"] = res["all_exit_0"] and verified == gen["files"]
    left = sum(1 for v in vols for p in v.rglob("*.mp4"))
    res["clips_left_on_cameras"] = left
    if not res["ok"]:
        log(f"ERROR: offload {tag}: exits {res['per_volume']}, items {res['db']['items']} (logs in {workdir / 'logs'})")
    return res


# --- 4. diagnostics ----------------------------------------------------------------------------

def diagnostics(workdir: Path, gen: dict, data: Path) -> dict:
    out = {}
    clips = [Path(gen["master"]) / v["slot"] / c["rel"] for v in gen["volumes"] for c in v["clips"]]
    drop_caches()
    t0 = time.perf_counter()
    for p in clips:
        sha256_file(p)
    out["camera_read_hash_s"] = time.perf_counter() - t0

    objs = sorted(p for p in (data / "store" / "objects" / "originals").rglob("*") if p.is_file())
    drop_caches()
    t0 = time.perf_counter()
    for p in objs:
        sha256_file(p, fadvise_dontneed=True)  # what LocalStore.digest does
    out["store_readback_s"] = time.perf_counter() - t0
    out["store_objects"] = len(objs)

    buf = os.urandom(64 * 1024 * 1024)
    h = hashlib.sha256()
    t0 = time.perf_counter()
    for _ in range(16):
        h.update(buf)
    out["sha256_memory_mb_s"] = rate(16 * len(buf), time.perf_counter() - t0)

    # The same offload, one camera after the other (is docking N at once faster on this machine?).
    refresh_docks(workdir, gen, [v["slot"] for v in gen["volumes"]])
    seq_data = fresh_data_dir(workdir, workdir / "data-template", "sequential")
    drop_caches()
    warm_code(seq_data)
    t0 = time.perf_counter()
    ok = True
    for v in gen["volumes"]:
        r = offload_concurrently(seq_data, [workdir / "docks" / v["slot"]], keep=False, logdir=workdir / "logs",
                                 tag="sequential")
        ok = ok and r["all_exit_0"]
    out["sequential_offload_s"] = time.perf_counter() - t0
    out["sequential_offload_ok"] = ok and db_counts(seq_data)["items"].get("verified", 0) == gen["files"]
    shutil.rmtree(seq_data, ignore_errors=True)

    # Fixed cost: N concurrent offload processes on volumes holding no clip.
    empties = []
    for v in gen["volumes"]:
        e = workdir / "empty" / v["slot"]
        device_json(e, v["serial"])
        empties.append(e)
    warm_code(data)
    res = offload_concurrently(data, empties, keep=True, logdir=workdir / "logs", tag="empty")
    out["empty_offload_s"] = res["seconds"]
    return out


# --- 5. playback copies ------------------------------------------------------------------------

def django_setup(data: Path) -> None:
    for k in list(os.environ):
        if k.startswith(PROJECT_ENV_PREFIXES):
            del os.environ[k]
    os.environ["TEMOIN_DATA_DIR"] = str(data)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def wrapper_args(src: Path, dst: Path, *, remux: bool) -> list[str]:
    """The exact command line playback_copy builds, without running it."""
    with mock.patch.object(fx, "run_ffmpeg", lambda args, **kw: None):
        return fx.playback_copy(src, dst, remux=remux)


def evict(path: Path) -> None:
    """Flush dirty pages, then drop this file's pages from the page cache (ffmpeg itself stays cached,
    as on a busy media worker; the clip is read from the disk, as it would be after an offload)."""
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cpu_seconds() -> float:
    """user + sys CPU of this process and of its reaped children (ffmpeg, offload processes)."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def timed(fn, src: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of fn(), the source evicted from the page cache first."""
    evict(src)
    c0, t0 = cpu_seconds(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, cpu_seconds() - c0


def media_bench(workdir: Path, gen: dict, data: Path, *, clips: int, repeat: int) -> dict:
    django_setup(data)
    from evidence.media.services import recording_process_media
    from evidence.integrations.store import get_store
    from evidence.models import Recording

    store = get_store()
    tmp = workdir / "media"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    results = {}

    def one_kind(kind: str, recs: list, runs_per_rec: int) -> dict:
        """Per recording: runs_per_rec runs of bare ffmpeg and of the wrapper (order alternating),
        then the whole media step once (it is idempotent: a recording is processed once)."""
        remux = kind == "remux"
        wall = {"bare": [], "wrapper": [], "full": []}
        cpu = {"bare": [], "wrapper": [], "full": []}
        sizes = []
        bare_cmd = None
        methods = []
        for i, rec in enumerate(recs):
            with store.local_path(rec.store_key, rec.store_version_id) as src:
                sizes.append(src.stat().st_size)
                dst_b, dst_w = tmp / "bare.mp4", tmp / "wrapper.mp4"
                args = wrapper_args(src, dst_b, remux=remux)
                bare_cmd = bare_cmd or args

                def bare():
                    subprocess.run(args, check=True, capture_output=True)

                def wrapper():
                    fx.playback_copy(src, dst_w, remux=remux)

                def full():
                    methods.append(recording_process_media(recording=rec))

                if i == 0:  # warm-up, not timed: ffmpeg and its codecs loaded once
                    bare()
                    dst_b.unlink(missing_ok=True)
                order = [("bare", bare), ("wrapper", wrapper)] * runs_per_rec
                if i % 2:
                    order.reverse()
                # The project's whole media step (ffprobe, stream hashes of the original and of the
                # copy, playback copy, poster, both stored with fsync, custody event) takes its turn
                # in the middle, so that load drifts hit the three variants alike.
                order.insert(len(order) // 2, ("full", full))
                for name, fn in order:
                    w_, c_ = timed(fn, src)
                    wall[name].append(w_)
                    cpu[name].append(c_)
                    for d in (dst_b, dst_w):
                        d.unlink(missing_ok=True)
        med = {k: statistics.median(v) for k, v in wall.items()}
        cmed = {k: statistics.median(v) for k, v in cpu.items()}
        return {
            "clips": len(recs), "runs_per_clip": runs_per_rec, "mean_bytes": sum(sizes) / len(sizes),
            "wall_s": wall, "cpu_s": cpu, "median_wall_s": med, "median_cpu_s": cmed,
            "wrapper_ratio": med["wrapper"] / med["bare"], "full_ratio": med["full"] / med["bare"],
            "wrapper_cpu_ratio": cmed["wrapper"] / cmed["bare"], "full_cpu_ratio": cmed["full"] / cmed["bare"],
            "bare_cmd": [a if not a.startswith("/") else Path(a).name for a in bare_cmd],
            "results": [f"{r.status}/{r.playback_method or '-'}" for r in methods],
        }

    remux_recs = list(Recording.objects.filter(status=Recording.Status.STORED, camera__serial__startswith="BWC-0")
                      .order_by("id")[:clips])
    log(f"playback copies: remux of {len(remux_recs)} stored clip(s), {repeat} run(s) each…")
    results["remux"] = one_kind("remux", remux_recs, repeat)

    # The transcode clips (one per run: the whole step runs once per recording) go through the
    # real offload first (not timed).
    t = gen["transcode"]
    refresh_docks(workdir, gen, [t["slot"]])
    res = offload_concurrently(data, [workdir / "docks" / t["slot"]], keep=True, logdir=workdir / "logs", tag="transcode")
    if not res["all_exit_0"]:
        log("ERROR: offload of the transcode clips failed; skipping the transcode part")
        return results
    trecs = list(Recording.objects.filter(status=Recording.Status.STORED, camera__serial=t["serial"]).order_by("id"))
    log(f"playback copies: transcode of {len(trecs)} clip(s) of {t['size'] / 1e6:.1f} MB, one run each…")
    results["transcode"] = one_kind("transcode", trecs, 1)
    shutil.rmtree(tmp, ignore_errors=True)
    return results


# --- report ------------------------------------------------------------------------------------

def fmt_list(values) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def verdict(ratio: float, target: float) -> str:
    return f"{'PASS' if ratio <= target else 'FAIL'} (target ≤ {target:.2f}×)"


def report(args, facts, gen, runs, diag, media) -> str:
    lines = []
    w = lines.append
    w("## Command")
    w("")
    w("    " + shlex.join(getattr(sys, "orig_argv", [PY, *sys.argv])))
    w("")
    w("## Machine")
    w("")
    for k, v in facts.items():
        w(f"- {k}: {v}")
    w(f"- loadavg at the end: {read_text('/proc/loadavg').split()[:3]} (the machine is shared: other jobs add noise)")
    w(f"- page cache dropped before each timed phase: {'yes' if PAGE_CACHE.all_dropped else 'NO (could not write /proc/sys/vm/drop_caches)'}")
    w("")
    w(f"## Offload: {gen['files']} clips (1080p H.264/AAC, {args.clip_seconds:g} s, {args.bitrate}) "
      f"+ sidecars on {args.cameras} cameras, {mb(gen['bytes']):.1f} MB")
    w("")
    w(f"offload mode: {'--keep (clips left on the cameras)' if args.keep else 'real use: verified clips wiped from the cameras'}; "
      + (f"{args.cameras} `manage.py offload` processes at once" if args.per_camera_process
         else f"one `manage.py offload` for the {args.cameras} cameras docked at once")
      + ("; timed from process start (--cold-start)" if args.cold_start
         else "; the offload process already running when the cameras dock (as dockd is); timed from docking")
      + "; baseline sequential; page cache dropped before each phase, then (ours) the code re-warmed by one "
        "untimed `manage.py offload --help`")
    w("")
    w("| run | order | files | MB | baseline s | baseline MB/s | ours s | ours MB/s | ours/baseline | verified |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        b, o = r["baseline"], r["ours"]
        w(f"| {r['run']} | {r['order']} | {o['files']} | {mb(o['bytes']):.0f} | {b['seconds']:.1f} | "
          f"{rate(o['bytes'], b['seconds']):.0f} | {o['seconds']:.1f} | {rate(o['bytes'], o['seconds']):.0f} | "
          f"{o['seconds'] / b['seconds']:.2f}× | {'all' if o['ok'] else 'NO'} |")
    tb = sum(r["baseline"]["seconds"] for r in runs)
    to = sum(r["ours"]["seconds"] for r in runs)
    ok = all(r["ours"]["ok"] for r in runs)
    ratio = to / tb
    w("")
    w(f"**verified-safe-to-wipe: {ratio:.2f}× the baseline → {verdict(ratio, TARGET_OFFLOAD) if ok else 'FAIL (not every clip verified)'}**")
    med = statistics.median(r["ours"]["seconds"] / r["baseline"]["seconds"] for r in runs)
    w("")
    w(f"median of the {len(runs)} runs' ratios: {med:.2f}× (issue 19 targets: ≤ 1.30× one camera, ≤ 1.15× four)")
    w("")
    w(f"CPU seconds (user + sys): baseline {sum(r['baseline']['cpu_s'] for r in runs):.1f}, "
      f"ours {sum(r['ours']['cpu_s'] for r in runs):.1f} (the {args.cameras} offload processes), on {os.cpu_count()} cores")
    w("")
    last = runs[-1]["ours"]
    w("per camera (last run): " + ", ".join(f"{k} {v['seconds']:.1f} s (exit {v['exit']})" for k, v in sorted(last["per_volume"].items())))
    w(f"offload items: {last['db']['items']}; recordings: {last['db']['recordings']}; "
      f"clips left on cameras: {last['clips_left_on_cameras']}")
    tl = last["timeline"]
    if tl.get("pulls"):
        w(f"timeline (last run, from custody timestamps): process start → session opened {tl['startup_s_mean']:.1f} s "
          f"(max {tl['startup_s_max']:.1f}); per clip pull (read + hash + store write + fsync + read-back) "
          f"{tl['pull_s_mean']:.2f} s mean, {tl['pull_mb_s_per_clip']:.0f} MB/s per process, "
          f"{tl['pull_s_sum']:.1f} s summed over {tl['pulls']} clips; last clip → session closed (wipe) "
          f"{tl['close_s_mean']:.2f} s mean")
    if diag:
        w("")
        w("Diagnostics (not part of the ratio; page cache dropped before each):")
        w("")
        nb = gen["bytes"]
        w(f"- disk read + SHA-256 of every clip (one camera-read pass): {diag['camera_read_hash_s']:.1f} s "
          f"({rate(nb, diag['camera_read_hash_s']):.0f} MB/s)")
        w(f"- read-back of the {diag['store_objects']} stored objects + SHA-256 (what the verification reads): "
          f"{diag['store_readback_s']:.1f} s ({rate(nb, diag['store_readback_s']):.0f} MB/s)")
        w(f"- hashlib SHA-256 in memory: {diag['sha256_memory_mb_s']:.0f} MB/s")
        w(f"- the same offload, one camera after the other: {diag['sequential_offload_s']:.1f} s "
          f"({rate(nb, diag['sequential_offload_s']):.0f} MB/s; {'all verified' if diag['sequential_offload_ok'] else 'NOT all verified'})")
        w(f"- fixed cost: {args.cameras} concurrent `offload` runs on volumes without clips: {diag['empty_offload_s']:.1f} s")
    if media:
        for kind, m in media.items():
            w("")
            label = ("Playback copies, remux (H.264/AAC → +faststart MP4)" if kind == "remux"
                     else f"Playback copies, transcode ({args.transcode_codec} {args.transcode_seconds:g} s 1080p → H.264)")
            runs_note = (f"{m['clips']} clip(s) × {m['runs_per_clip']} run(s) of bare and wrapper, 1 run of the whole step"
                         if kind == "remux" else f"{m['clips']} distinct clip(s), 1 run of each variant per clip")
            w(f"## {label}: {runs_note}")
            w("")
            w("Source evicted from the page cache before each run, after one untimed warm-up; medians of the runs. "
              "CPU = user + sys of the bench process and its ffmpeg children.")
            w("")
            w(f"bare command: `{shlex.join(m['bare_cmd'])}`")
            w("")
            nb = m["mean_bytes"]
            media_s = args.clip_seconds if kind == "remux" else args.transcode_seconds
            mw, mc = m["median_wall_s"], m["median_cpu_s"]
            w("| variant | runs | median s | MB/s (source) | × real time | CPU s | vs bare (wall) | vs bare (CPU) | target ≤ 1.10× (wall) |")
            w("|---|---|---|---|---|---|---|---|---|")
            rows = [("bare ffmpeg (subprocess)", "bare", None, None),
                    ("`ffmpeg.playback_copy()`", "wrapper", m["wrapper_ratio"], m["wrapper_cpu_ratio"]),
                    ("`recording_process_media()` (whole step)", "full", m["full_ratio"], m["full_cpu_ratio"])]
            for title, k, r, rc in rows:
                w(f"| {title} | {len(m['wall_s'][k])} | {mw[k]:.2f} | {rate(nb, mw[k]):.1f} | {media_s / mw[k]:.1f} | "
                  f"{mc[k]:.2f} | {'1.00×' if r is None else f'{r:.2f}×'} | {'1.00×' if rc is None else f'{rc:.2f}×'} | "
                  f"{'' if r is None else ('PASS' if r <= TARGET_MEDIA else 'FAIL')} |")
            w("")
            w(f"all runs, wall s: bare {fmt_list(m['wall_s']['bare'])}; wrapper {fmt_list(m['wall_s']['wrapper'])}; "
              f"whole step {fmt_list(m['wall_s']['full'])} → {', '.join(sorted(set(m['results'])))}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4, help="camera volumes docked at once")
    ap.add_argument("--total-gb", type=float, default=2.0, help="at least this many GB (1e9 bytes) of clips in all")
    ap.add_argument("--clip-seconds", type=float, default=30, help="length of each 1080p clip")
    ap.add_argument("--bitrate", default="25M", help="video bitrate of the clips")
    ap.add_argument("--workdir", default=None, help="default: a new temporary directory under /tmp")
    ap.add_argument("--keep-workdir", action="store_true", help="do not delete the workdir at the end")
    ap.add_argument("--repeat", type=int, default=1, help="baseline/ours pairs; the order alternates")
    ap.add_argument("--keep", action="store_true", help="run offload with --keep (default: wipe, as in real use)")
    ap.add_argument("--media-clips", type=int, default=3, help="clips for the playback-copy part (0 = skip)")
    ap.add_argument("--media-repeat", type=int, default=3,
                    help="runs of bare and wrapper per remux clip; number of transcode clips")
    ap.add_argument("--transcode-codec", choices=["hevc", "mjpeg"], default="hevc")
    ap.add_argument("--transcode-seconds", type=float, default=10)
    ap.add_argument("--no-diagnostics", action="store_true")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--cold-start", action="store_true",
                    help="time the whole `manage.py offload` command, Python and Django start-up included "
                         "(default: the offload process is already running when the cameras dock, as dockd is)")
    ap.add_argument("--per-camera-process", action="store_true",
                    help="one `offload` process per camera (default: one process for all docked cameras)")
    args = ap.parse_args(argv)
    global PER_CAMERA_PROCESS, WARM_PROCESS
    PER_CAMERA_PROCESS = args.per_camera_process
    WARM_PROCESS = not args.cold_start

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="temoin-bench-", dir="/tmp")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(workdir)
    log(f"workdir {workdir}")
    log(json.dumps(facts, indent=1))
    t_start = time.perf_counter()
    try:
        gen = generate(workdir, cameras=args.cameras, total_bytes=int(args.total_gb * 1e9),
                       clip_seconds=args.clip_seconds, bitrate=args.bitrate,
                       transcode_codec=args.transcode_codec, transcode_seconds=args.transcode_seconds,
                       transcode_clips=max(1, args.media_repeat))
        tpl = setup_template(workdir, gen)
        slots = [v["slot"] for v in gen["volumes"]]
        runs = []
        data = None
        for r in range(args.repeat):
            tag = f"r{r + 1}"
            order = ["baseline", "ours"] if r % 2 == 0 else ["ours", "baseline"]
            run = {"run": r + 1, "order": " → ".join(order)}
            for phase in order:
                refresh_docks(workdir, gen, slots)
                log(f"[{tag}] {phase}…")
                if phase == "baseline":
                    run["baseline"] = run_baseline(workdir, gen, tag)
                    log(f"[{tag}] baseline: {run['baseline']['seconds']:.1f} s")
                else:
                    if data is not None:  # keep only the last run's data dir
                        shutil.rmtree(data, ignore_errors=True)
                    run["ours"] = run_ours(workdir, gen, tpl, tag, keep=args.keep)
                    data = Path(run["ours"]["data_dir"])
                    log(f"[{tag}] ours: {run['ours']['seconds']:.1f} s, ok={run['ours']['ok']}")
            runs.append(run)
        diag = None if args.no_diagnostics else diagnostics(workdir, gen, data)
        media = media_bench(workdir, gen, data, clips=args.media_clips, repeat=args.media_repeat) \
            if args.media_clips > 0 else None
        text = report(args, facts, gen, runs, diag, media)
        log("")
        log(text)
        log("")
        log(f"total bench time {time.perf_counter() - t_start:.0f} s")
        if args.json:
            Path(args.json).write_text(json.dumps({"facts": facts, "runs": runs, "diagnostics": diag, "media": media,
                                                   "files": gen["files"], "bytes": gen["bytes"]}, indent=1, default=str))
        return 0 if all(r["ours"]["ok"] for r in runs) else 1
    finally:
        if args.keep_workdir:
            log(f"workdir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
