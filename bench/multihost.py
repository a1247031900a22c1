#!/usr/bin/env python
"""Multi-host shift change (issue 19): dock hosts as network namespaces, N cameras each, 50 users.

What it does (docs/benchmarks.md, "Multi-host shift change (issue 19)"):

1. The rig (bench/netns.py), not timed: a bridge and one network namespace per dock host; this
   script's own PostgreSQL cluster, redis-server and object-store forwarder (to Ceph RGW on
   127.0.0.1:7480) on the bridge address; the schema migrated while the clips are generated:
   real 1080p H.264/AAC clips by bench/offload.py's generator (one clip encoded, the others
   distinct stream-copy remuxes with sidecars), a "previous shift" (one short clip per camera, so
   that users have recordings to consult) and the shift under test (--total-gb over --hosts ×
   --cameras-per-host cameras).
2. Baseline (timed, page cache dropped, before any Témoin process runs): every clip of the shift
   read, SHA-256 and written to a new file with fsync, one after the other: what this machine's
   disk and one core do with the same bytes. The digests are kept for the final check.
3. The stack: each namespace runs ``dockd`` and a Celery worker on ``dock.<host>`` (as
   compose.yaml's dockd and dock-worker), on its own dock folder and data dir, reaching the
   database, the broker and the store only over the virtual network. gunicorn (gthread) and the
   media worker run on this machine's side of the bridge, through the same addresses.
4. The previous shift is docked and processed (not timed). Then 50 simulated users (bench/load.py's)
   browse, consult and play; the shift's cameras are moved into their slots (a rename: each volume
   appears whole, prepared beforehand and the page cache dropped, so that docking costs no copy and
   the clips are read from the disk as from a camera) spread over --dock-window seconds.
5. Measured: aggregate MB/s from the first docking to the last camera released (session finished:
   "the camera may be unplugged"), against the baseline; per camera, docking → released
   (p50/p95/max); queue depths, CPU per process group, disk, every second; API latency per kind.
6. Checks: every clip verified and wiped, recordings = clips docked, each recording's SHA-256 equal to
   the baseline's digest of its clip, each object locked (COMPLIANCE) with its size in the store,
   ``manage.py custody verify`` intact.

Needs root (network namespaces). Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock .venv/bin/python bench/multihost.py                 # 4 × 10 cameras, 10 GB
    flock /tmp/bench.lock .venv/bin/python bench/multihost.py --total-gb 0.5  # smoke
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import load as load_bench  # noqa: E402  (bench/load.py: users, setup, /proc sampling)
import offload as offload_bench  # noqa: E402  (bench/offload.py: clip generator, environment)
from machine import PageCache, cpu_model, meminfo, read_text  # noqa: E402
from multihost_measure import Sampler, checks  # noqa: E402
from multihost_report import report, summarise  # noqa: E402
from netns import Rig, netns_available, run  # noqa: E402

REPO = BENCH.parent
PY = sys.executable
CHUNK = 8 * 1024 * 1024
log = offload_bench.log
TARGET_RATIO, TARGET_API_P95_MS = 0.7, 500.0


# --- the Témoin processes on the rig ---------------------------------------------------------------

class Stack:
    """Témoin's processes: web + media worker on this side, dockd + dock worker in each namespace."""

    def __init__(self, args, workdir: Path, rig: Rig, bucket: str):
        self.args, self.workdir, self.rig = args, workdir, rig
        self.port = load_bench.free_port()
        self.hosts = [f"hote{i + 1}" for i in range(args.hosts)]
        self.dock_roots = {h: workdir / "docks" / h for h in self.hosts}
        keys = workdir / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        self.env = offload_bench.project_env(workdir / "data" / "central")
        self.env.update(
            DATABASE_URL=rig.database_url, CELERY_BROKER_URL=rig.redis_url, DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY=secrets.token_hex(32), TEMOIN_BEHIND_TLS="false", TEMOIN_LOG_LEVEL="WARNING",
            TEMOIN_CUSTODY_KEY=str(keys / "custody-ed25519.pem"), PYTHONPATH=str(REPO),
        )
        if args.local_store:  # only when S3 is impossible (said in the report)
            self.env.update(TEMOIN_STORE="local", TEMOIN_STORE_ROOT=str(workdir / "store"))
        else:
            self.env.update(S3_ENDPOINT_URL=rig.s3_url, S3_BUCKET=bucket, S3_ACCESS_KEY_ID=args.s3_access_key,
                            S3_SECRET_ACCESS_KEY=args.s3_secret_key, S3_REGION="us-east-1")

    def host_env(self, host: str) -> dict:
        return {**self.env, "TEMOIN_DOCK_NAME": host, "TEMOIN_DATA_DIR": str(self.workdir / "data" / host)}

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([PY, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start_all(self) -> None:
        a = self.args
        self.rig.start("web", [PY, "-m", "gunicorn", "config.wsgi:application", f"--bind=127.0.0.1:{self.port}",
                               "--worker-class=gthread", f"--workers={a.web_workers}", f"--threads={a.web_threads}",
                               "--timeout=120", "--log-level=warning"], env=self.env, cwd=REPO)
        self.start_media()
        for host, ns in zip(self.hosts, self.rig.namespaces):
            env = self.host_env(host)
            self.dock_roots[host].mkdir(parents=True, exist_ok=True)
            self.rig.start(f"worker-{host}", [PY, "-m", "celery", "-A", "config", "worker", "-Q", f"dock.{host}", "-n",
                                              f"dock-{host}@%h", f"--concurrency={a.dock_concurrency}", "-l", "warning"],
                           env=env, cwd=REPO, netns=ns)
            self.rig.start(f"dockd-{host}", [PY, "manage.py", "dockd", str(self.dock_roots[host]), "--dock", host,
                                             "--interval", "1"], env=env, cwd=REPO, netns=ns)

    def start_media(self) -> None:
        self.rig.start("worker-media", [PY, "-m", "celery", "-A", "config", "worker", "-Q", "media", "-n", "media@%h",
                                        f"--concurrency={max(1, self.args.media_concurrency)}", "-l", "warning"],
                       env=self.env, cwd=REPO)

    def wait_web(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.rig.check_alive()
            try:
                import http.client
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/health/")
                conn.getresponse().read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not answer:\n" + self.rig.tail("web"))
                time.sleep(0.5)


# --- generation, baseline, docking ------------------------------------------------------------------

def placement(volumes: list[dict], hosts: list[str], per_host: int) -> list[tuple[dict, str, str]]:
    """Camera k goes to host k // per_host, slot ``emplacement-<k % per_host + 1>``."""
    return [(v, hosts[k // per_host], f"emplacement-{k % per_host + 1}") for k, v in enumerate(volumes)]


def clip_files(master: Path, volumes: list[dict]) -> list[Path]:
    return [master / v["slot"] / c["rel"] for v in volumes for c in v["clips"]]


def baseline(files: list[Path], dest: Path, cache: PageCache) -> dict:
    """Read + SHA-256 + write + fsync of every clip (and its sidecar), one after the other, page cache dropped."""
    dest.mkdir(parents=True, exist_ok=True)
    cache.drop()
    digests, nbytes = {}, 0
    c0, t0 = time.process_time(), time.perf_counter()
    for i, src in enumerate(files):
        for path in (src, src.with_suffix(".json")):
            h = hashlib.sha256()
            with open(path, "rb", buffering=0) as fin, open(dest / f"{i:05d}{path.suffix}", "wb", buffering=0) as fout:
                while data := fin.read(CHUNK):
                    h.update(data)
                    fout.write(data)
                os.fsync(fout.fileno())
            if path is src:
                digests[str(src)] = h.hexdigest()
                nbytes += path.stat().st_size
    offload_bench.fsync_dir(dest)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    shutil.rmtree(dest)
    return {"seconds": seconds, "cpu_s": cpu, "bytes": nbytes, "files": len(files), "mb_s": nbytes / 1e6 / seconds,
            "digests": digests}


def stage(master: Path, slot: str, staging: Path, name: str, *, link: bool) -> Path:
    """A camera volume beside the dock folders (same file system): hard links of the master's files
    (no second copy of 10 GB; the wipe unlinks the camera's link only), or a copy."""
    dst = staging / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(master / slot, dst, copy_function=os.link if link else shutil.copy2)
    return dst


def dock(staged: Path, target: Path) -> float:
    """The camera appears in its slot whole (rename on the same file system)."""
    shutil.rmtree(target, ignore_errors=True)
    os.rename(staged, target)
    return time.time()


def wait_for(what: str, rig: Rig, timeout: float, done) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        rig.check_alive()
        if done():
            return time.monotonic() - t0
        time.sleep(0.5)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


# --- main -----------------------------------------------------------------------------------------------

def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hosts", type=int, default=4, help="dock hosts (network namespaces), default 4")
    p.add_argument("--cameras-per-host", type=int, default=10, help="cameras docked on each host, default 10")
    p.add_argument("--total-gb", type=float, default=10.0, help="GB (1e9 bytes) of clips in the shift, default 10")
    p.add_argument("--clip-seconds", type=float, default=60, help="length of each clip (default 60 s)")
    p.add_argument("--bitrate", default="5M", help="video bitrate (default 5M: ≈ 2.3 GB per recorded hour)")
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--think", type=float, default=1.0, help="mean think time between a user's requests, s")
    p.add_argument("--dock-window", type=float, default=30, help="the cameras dock spread over this many s")
    p.add_argument("--warmup", type=float, default=10, help="users browse this long before the first docking")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--web-workers", type=int, default=2)
    p.add_argument("--web-threads", type=int, default=8)
    p.add_argument("--dock-concurrency", type=int, default=1, help="Celery concurrency of each dock worker")
    p.add_argument("--media-concurrency", type=int, default=0,
                   help="media worker concurrency DURING the shift; 0 (default): the shift's media tasks wait in "
                        "their queue (the previous shift is processed by one media process)")
    p.add_argument("--subnet", default="10.77.0", help="the bridge's /24 (default 10.77.0)")
    p.add_argument("--s3", default="127.0.0.1:7480", help="object store (Ceph RGW) host:port on this machine")
    p.add_argument("--s3-access-key", default="temoin-ci")
    p.add_argument("--s3-secret-key", default="temoin-ci-secret-key")
    p.add_argument("--keep-bucket", action="store_true",
                   help="leave the bench's bucket (default: purged with radosgw-admin at the end)")
    p.add_argument("--local-store", action="store_true", help="the local write-once store instead of S3")
    p.add_argument("--copy-volumes", action="store_true", help="stage camera volumes as copies, not hard links")
    p.add_argument("--workdir", help="default: a new /tmp/temoin-mh-*")
    p.add_argument("--keep-workdir", action="store_true")
    p.add_argument("--json", help="also write every figure (and the per-second series) to this file")
    return p.parse_args(argv)


def purge_bucket(bucket: str) -> str:
    """The bench's own bucket, removed below S3 (its objects are locked in COMPLIANCE mode for years;
    the shared test cluster's OSD is 20 GB): radosgw-admin, the gateway's administration tool."""
    conf = os.environ.get("TEMOIN_CEPH_DIR", "/var/lib/temoin-ceph") + "/ceph.conf"
    if not shutil.which("radosgw-admin") or not Path(conf).exists():
        return f"bucket {bucket} left (no radosgw-admin / {conf})"
    proc = run("radosgw-admin", "-c", conf, "bucket", "rm", f"--bucket={bucket}", "--purge-objects", "--bypass-gc",
               check=False)
    return f"bucket {bucket} purged" if proc.returncode == 0 else f"bucket {bucket} NOT purged: {proc.stderr[-300:]}"


def main(argv=None) -> int:
    args = parse(argv)
    ok, why = netns_available()
    if not ok:
        log(f"bench/multihost.py needs root and network namespaces: {why}")
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="temoin-mh-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(workdir).free
    need = args.total_gb * 1e9 * (1.3 if args.copy_volumes else 1.15) + args.total_gb * 1e9 * 1.05
    if free < need:
        log(f"not enough free disk under {workdir}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed")
        return 2

    def _signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell starting the bench in the background (&) leaves SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _signal)
    bucket = f"temoin-mh-{os.getpid()}-{secrets.token_hex(3)}"
    s3_host, s3_port = args.s3.rsplit(":", 1)
    rig = Rig(workdir, hosts=args.hosts, subnet=args.subnet, log=log,
              s3_target=None if args.local_store else (s3_host, int(s3_port)))
    summary, result = None, 1
    t_begin = time.monotonic()
    cache = PageCache(warn=log)
    try:
        result, summary = run_bench(args, workdir, rig, bucket, cache)
    except KeyboardInterrupt as exc:
        log(f"interrupted ({exc}): cleaning up")
        result = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl+C must not stop the clean-up
        rig.close()
        if not args.local_store and not args.keep_bucket:
            log(purge_bucket(bucket))
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"workdir kept: {workdir}")
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if summary:
        print(report(summary, TARGET_RATIO, TARGET_API_P95_MS))
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=1, default=str))
    log(f"total duration (generation, set-up, run, checks, clean-up): {time.monotonic() - t_begin:.0f} s")
    return result


def run_bench(args, workdir: Path, rig: Rig, bucket: str, cache: PageCache):
    n_cameras = args.hosts * args.cameras_per_host
    facts = {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "mem_gb": meminfo().get("MemTotal", 0) / 2**30,
             "python": sys.version.split()[0], "kernel": os.uname().release,
             "loadavg_start": read_text("/proc/loadavg").split()[:3]}
    log(f"workdir {workdir}")
    # 1. The rig, and the schema migrated while the clips are generated (neither is timed).
    rig.net_up()
    rig.services_up()
    stack = Stack(args, workdir, rig, bucket)
    migrate = rig.start("migrate", [PY, "manage.py", "migrate", "--noinput"], env=stack.env, cwd=REPO)
    prev = offload_bench.generate(workdir / "previous", cameras=n_cameras, total_bytes=1, clip_seconds=4,
                                  bitrate="4M", transcode_codec="mjpeg", transcode_seconds=1)
    shift = offload_bench.generate(workdir / "shift", cameras=n_cameras, total_bytes=int(args.total_gb * 1e9),
                                   clip_seconds=args.clip_seconds, bitrate=args.bitrate, transcode_codec="mjpeg",
                                   transcode_seconds=1)
    master = Path(shift["master"])
    if migrate.wait() != 0:
        raise RuntimeError("manage.py migrate failed:\n" + rig.tail("migrate"))
    del rig.procs["migrate"]
    if not args.local_store:
        proc = subprocess.run([PY, "deploy/store-init.py"], cwd=REPO, env=stack.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"store-init failed: {proc.stdout}{proc.stderr}")
    cameras = [{"serial": v["serial"], "matricule": v["matricule"]} for v in shift["volumes"]]
    users = load_bench.setup_instance(stack, cameras, args.users)
    stack.manage("custody", "export-key")
    # 2. Baseline (timed; nothing of the stack runs yet), then the camera volumes staged beside the
    # dock folders (not timed).
    log(f"baseline: read + SHA-256 + write + fsync of {shift['files']} clips, {shift['bytes'] / 1e6:.0f} MB…")
    base = baseline(clip_files(master, shift["volumes"]), workdir / "baseline", cache)
    log(f"baseline {base['seconds']:.1f} s, {base['mb_s']:.0f} MB/s")
    staging = workdir / "docks" / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    # 3. The stack.
    stack.start_all()
    stack.wait_web()
    db = load_bench.pg(rig.database_url)
    try:
        # 4a. The previous shift, docked and processed before the users arrive (not timed).
        since_prev = dt.datetime.now(dt.timezone.utc)
        for vol, host, slot in placement(prev["volumes"], stack.hosts, args.cameras_per_host):
            dock(stage(Path(prev["master"]), vol["slot"], staging, f"p-{vol['slot']}", link=False),
                 stack.dock_roots[host] / slot)
        took = wait_for("the previous shift", rig, args.timeout, lambda: db.execute(
            "SELECT count(*) FROM evidence_recording WHERE ingested_at >= %s AND status IN ('ready', 'unplayable')",
            [since_prev]).fetchone()[0] >= prev["files"])
        log(f"previous shift ({prev['files']} clips) offloaded and processed in {took:.0f} s; undocking")
        load_bench.undock_all(stack)
        time.sleep(3)  # dockd notices the undocking (its interval is 1 s)
        if args.media_concurrency == 0:
            rig.stop("worker-media")  # the shift's media tasks wait in their queue (see --media-concurrency)
        staged = {vol["serial"]: stage(master, vol["slot"], staging, f"s-{vol['slot']}", link=not args.copy_volumes)
                  for vol in shift["volumes"]}
        cache.drop()
        # 4b. The shift change.
        results, stop_users = load_bench.Results(), threading.Event()
        since = dt.datetime.now(dt.timezone.utc)
        sampler = Sampler(stack, since)
        sampler.start()
        threads = []
        for i, user in enumerate(users):
            th = threading.Thread(target=load_bench.user_loop, daemon=True, name=f"user-{i}",
                                  args=(stack.port, user, stop_users, results, 1000 + i, args.think))
            th.start()
            threads.append(th)
        t_users = time.time()
        log(f"{len(users)} users browsing; {n_cameras} cameras dock on {args.hosts} hosts over {args.dock_window:g} s "
            f"after {args.warmup:g} s")
        time.sleep(args.warmup)
        order = placement(shift["volumes"], stack.hosts, args.cameras_per_host)
        random.Random(19).shuffle(order)
        docked_at: dict[str, float] = {}
        t_first = time.time()
        for k, (vol, host, slot) in enumerate(order):
            time.sleep(max(0.0, t_first + args.dock_window * k / max(1, len(order) - 1) - time.time()))
            docked_at[vol["serial"]] = dock(staged[vol["serial"]], stack.dock_roots[host] / slot)
        log(f"all {len(order)} cameras docked; waiting until every camera may be unplugged…")
        wait_for("the shift's cameras", rig, args.timeout, lambda: db.execute(
            "SELECT count(*) FROM devices_offloadsession WHERE started_at >= %s AND finished_at IS NOT NULL",
            [since]).fetchone()[0] >= n_cameras)
        t_done = time.time()
        time.sleep(max(0.0, t_first + args.dock_window - t_done))  # the API figures cover the docking window
        stop_users.set()
        for th in threads:
            th.join(timeout=70)
        t_end = time.time()
        sampler.stop.set()
        sampler.join(timeout=10)
        # 5. Timings (custody events and sessions are the ground truth), 6. checks.
        verified_last = db.execute(
            "SELECT max(e.occurred_at) FROM audit_custodyevent e JOIN evidence_recording r ON r.id = e.recording_id "
            "WHERE e.action = 'recording.verified' AND r.ingested_at >= %s", [since]).fetchone()[0]
        sessions = db.execute(
            "SELECT c.serial, s.started_at, s.finished_at FROM devices_offloadsession s "
            "JOIN devices_camera c ON c.id = s.camera_id WHERE s.started_at >= %s", [since]).fetchall()
        chk = checks(stack, db, since, base["digests"], master)
    finally:
        db.close()
    timings = {
        "t_first": t_first, "t_users": t_users, "t_end": t_end,
        "verified_last_s": verified_last.timestamp() - t_first,
        "released_last_s": max(f.timestamp() for _s, _a, f in sessions) - t_first,
        "per_camera_s": {s: f.timestamp() - docked_at[s] for s, _a, f in sessions if s in docked_at},
        "docking_to_session_s": {s: a.timestamp() - docked_at[s] for s, a, _f in sessions if s in docked_at},
    }
    facts["loadavg_end"] = read_text("/proc/loadavg").split()[:3]
    facts["page_cache_dropped"] = bool(cache.all_dropped)
    summary = summarise(args, facts, shift, base, timings, results, sampler, chk)
    ok = (chk["custody_ok"] and chk["verified"] == shift["files"] == chk["recordings"] == chk["sha256_match"]
          and chk["left_on_cameras"] == 0 and (args.local_store or chk["locked_in_store"] == shift["files"]))
    return (0 if ok else 1), summary


if __name__ == "__main__":
    sys.exit(main())
