#!/usr/bin/env python
"""Shift-change load test (issue 8): N docks × 8 cameras dock within minutes while 50 users browse.

What it does (docs/benchmarks.md, "Shift change"):

1. Generation (not timed): real 1080p H.264/AAC clips made by bench/offload.py's generator
   (``evidence.integrations.ffmpeg.synthesize_clip`` once, then distinct stream-copy remuxes with
   sidecars), once for a "previous shift" (one clip per camera, so that users have recordings to
   browse from the start) and once for the shift under test.
2. The stack, started by this script as in compose.yaml: PostgreSQL (a database of its own, dropped
   at the end), Redis (a database number of its own), gunicorn (gthread) serving Témoin, per dock
   a ``dockd`` and a Celery worker on ``dock.<name>``, and a Celery worker on ``media``; the
   embedded local write-once store under the work directory.
3. The previous shift is docked and processed (not timed). Then 50 simulated users (threads,
   keep-alive HTTP with their API tokens; officers see their own recordings, supervisors and legal
   staff their service's) list and open recordings, open consultations with a motif and fetch the
   playback copy with HTTP Range (a first range, then a seek), with think times; after a warm-up,
   the shift's cameras are dropped into their dock slots spread over ``--dock-window`` seconds.
4. Measured: offload completion (first docking → last clip verified in the store, and → last
   playback copy ready), per-docking latency, API latency p50/p95/max and error rate per request
   kind, and, every second, CPU per process group (/proc: web, dock workers, media worker, dockd,
   PostgreSQL, Redis, this script), machine CPU and iowait (/proc/stat), disk throughput and
   utilisation (/proc/diskstats), PostgreSQL backends and their wait events (pg_stat_activity of the
   database), Redis queue depths; /metrics is scraped every 5 s as Prometheus would.
5. Checks: every shift clip verified and wiped from its camera, ``custody verify`` intact.

Run from the repository root (PostgreSQL and Redis running):
    .venv/bin/python bench/load.py                          # 2 docks × 8 cameras, 50 users, ~5-8 min
    .venv/bin/python bench/load.py --docks 4 --clips-per-camera 4 --users 100   # scale up
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from typing import Callable
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import offload as offload_bench  # noqa: E402  (bench/offload.py: clip generator, environment helpers)
from machine import cpu_model, meminfo  # noqa: E402

REPO = BENCH.parent
PY = sys.executable
CAMERAS_PER_DOCK = 8
ORG = "charge"
CLK_TCK = os.sysconf("SC_CLK_TCK")
log = offload_bench.log


# --- the stack --------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, args, workdir: Path):
        self.args, self.workdir = args, workdir
        self.data = workdir / "data"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.docks = [f"quai{d + 1}" for d in range(args.docks)]
        self.dock_roots = {d: workdir / "docks" / d for d in self.docks}
        self.procs: dict[str, subprocess.Popen] = {}
        # config/settings.py reads TEMOIN_METRICS_TOKEN once the operations settings line is in; until
        # then (and harmlessly after) a one-line overlay in the workdir sets it from the environment.
        overlay = workdir / "settings_overlay"
        overlay.mkdir(exist_ok=True)
        (overlay / "temoin_load_settings.py").write_text(
            "import os\nfrom config.settings import *  # noqa: F401,F403\n"
            "TEMOIN_METRICS_TOKEN = os.environ['TEMOIN_METRICS_TOKEN']\n")
        self.env = offload_bench.project_env(self.data)
        self.env.update(
            DJANGO_SETTINGS_MODULE="temoin_load_settings",
            PYTHONPATH=os.pathsep.join(x for x in (str(overlay), str(REPO), os.environ.get("PYTHONPATH", "")) if x),
            DATABASE_URL=args.database_url, CELERY_BROKER_URL=args.redis_url, DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY=secrets.token_hex(32), TEMOIN_BEHIND_TLS="false", TEMOIN_METRICS_TOKEN=self.token,
            TEMOIN_LOG_LEVEL="WARNING",
        )

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([PY, "manage.py", *args], cwd=REPO, env=self.env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def start(self, role: str, argv: list[str], env: dict | None = None) -> None:
        fh = open(self.logs / f"{role}.log", "wb")
        self.procs[role] = subprocess.Popen(argv, cwd=REPO, env=env or self.env, stdout=fh, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def start_all(self) -> None:
        a = self.args
        self.start("web", [PY, "-m", "gunicorn", "config.wsgi:application", f"--bind=127.0.0.1:{self.port}",
                           "--worker-class=gthread", f"--workers={a.web_workers}", f"--threads={a.web_threads}",
                           "--timeout=120", "--log-level=warning"])
        for dock in self.docks:
            env = {**self.env, "TEMOIN_DOCK_NAME": dock}
            self.dock_roots[dock].mkdir(parents=True, exist_ok=True)
            self.start(f"worker-{dock}", [PY, "-m", "celery", "-A", "config", "worker", "-Q", f"dock.{dock}", "-n",
                                          f"{dock}@%h", f"--concurrency={a.dock_concurrency}", "-l", "warning"], env)
            self.start(f"dockd-{dock}", [PY, "manage.py", "dockd", str(self.dock_roots[dock]), "--dock", dock,
                                         "--interval", "1"], env)
        self.start("worker-media", [PY, "-m", "celery", "-A", "config", "worker", "-Q", "media", "-n", "media@%h",
                                    f"--concurrency={a.media_concurrency}", "-l", "warning"])

    def check_alive(self) -> None:
        dead = {role: p.returncode for role, p in self.procs.items() if p.poll() is not None}
        if dead:
            tails = "\n".join(f"--- {r}\n" + (self.logs / f"{r}.log").read_text(errors="replace")[-2000:] for r in dead)
            raise SystemExit(f"stack process(es) exited: {dead}\n{tails}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def http(self, method: str, path: str, *, token: str | None = None, bearer: bool = False, timeout: float = 30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {}
        if token:
            headers["Authorization"] = f"{'Bearer' if bearer else 'Token'} {token}"
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


# --- database helpers (psycopg, read-only queries on the bench's own database) ----------------------

def pg_admin(database_url: str):
    import psycopg

    parts = urlsplit(database_url)
    return psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True)


def pg(database_url: str):
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def recreate_database(database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    with pg_admin(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    with pg_admin(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SETUP_SCRIPT = r"""
import json, datetime as dt
from django.db import transaction
from django.utils import timezone
from accounts.services import organisation_create, user_create
from devices.services import camera_register, camera_assign
spec = json.loads(open(SPEC).read())
out = {"users": []}
with transaction.atomic():
    org = organisation_create(slug=spec["org"], name="Police municipale (test de charge)")
for cam in spec["cameras"]:
    with transaction.atomic():
        officer, token = user_create(username="agent." + cam["matricule"].lower(), organisation=org, role="officer",
                                     matricule=cam["matricule"])
        camera = camera_register(serial=cam["serial"], organisation=org, model="BENCH-1080")
        camera_assign(camera=camera, officer=officer, starts_at=timezone.now() - dt.timedelta(days=30))
    out["users"].append({"username": officer.username, "role": "officer", "token": token})
for i, role in enumerate(spec["others"]):
    with transaction.atomic():
        user, token = user_create(username=f"{role}.{i:03d}", organisation=org, role=role)
    out["users"].append({"username": user.username, "role": role, "token": token})
print("SETUP " + json.dumps(out))
"""


def setup_instance(stack: Stack, cameras: list[dict], users: int) -> list[dict]:
    stack.manage("migrate", "--noinput")
    officers = min(len(cameras), users // 3)
    others = ["legal" if i % 8 == 7 else "supervisor" for i in range(max(0, users - officers))]
    spec = stack.workdir / "setup.json"
    spec.write_text(json.dumps({"org": ORG, "cameras": cameras, "others": others}))
    out = stack.manage("shell", "-c", f"SPEC = {str(spec)!r}\n" + SETUP_SCRIPT).stdout
    created = json.loads(next(line for line in out.splitlines() if line.startswith("SETUP "))[6:])["users"]
    wearers = [u for u in created if u["role"] == "officer"][:officers]
    return wearers + [u for u in created if u["role"] != "officer"]


# --- docking ------------------------------------------------------------------------------------

def dock_camera(master_slot: Path, staging: Path, target: Path) -> float:
    """Copy the camera volume next to the dock, then rename it into its slot: it appears whole."""
    tmp = staging / f"{target.parent.name}-{target.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(master_slot, tmp, copy_function=shutil.copy2)
    shutil.rmtree(target, ignore_errors=True)
    os.rename(tmp, target)
    return time.time()


def undock_all(stack: Stack) -> None:
    for root in stack.dock_roots.values():
        for slot in root.iterdir():
            shutil.rmtree(slot, ignore_errors=True)


def placement(volumes: list[dict], docks: list[str]) -> list[tuple[dict, str, str]]:
    """Camera k goes to dock k // 8, slot "emplacement-<k % 8 + 1>"."""
    return [(v, docks[k // CAMERAS_PER_DOCK], f"emplacement-{k % CAMERAS_PER_DOCK + 1}")
            for k, v in enumerate(volumes)]


def wait_processed(stack: Stack, db, *, expected: int, since: dt.datetime, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        stack.check_alive()
        done = db.execute("SELECT count(*) FROM evidence_recording WHERE ingested_at >= %s AND status IN "
                          "('ready', 'unplayable')", [since]).fetchone()[0]
        if done >= expected:
            return time.monotonic() - t0
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


# --- simulated users -------------------------------------------------------------------------------

class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, int, float, float, int]] = []  # kind, status, seconds, at, bytes
        self.errors: Counter = Counter()

    def add(self, kind: str, status: int, seconds: float, nbytes: int = 0) -> None:
        with self.lock:
            self.rows.append((kind, status, seconds, time.time(), nbytes))


MOTIF = "Contrôle du déroulement de l'intervention (test de charge)"


def user_loop(port: int, user: dict, stop: threading.Event, results: Results, seed: int, think: float) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    auth = {"Authorization": f"Token {user['token']}"}
    known: list[dict] = []

    def call(kind: str, method: str, path: str, *, body: dict | None = None, headers: dict | None = None,
             ok=(200,)):
        nonlocal conn
        h = dict(auth, **(headers or {}))
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            payload = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            results.add(kind, 0, time.perf_counter() - t0)
            with results.lock:
                results.errors[f"{kind}: {type(exc).__name__}"] += 1
            return None, None
        results.add(kind, status, time.perf_counter() - t0, len(payload))
        if status not in ok:
            with results.lock:
                results.errors[f"{kind}: HTTP {status}"] += 1
            return status, None
        return status, payload

    time.sleep(rng.uniform(0, think))  # users do not all arrive in the same second
    while not stop.is_set():
        r = rng.random()
        if not known or r < 0.35:
            page = rng.choice([1, 1, 1, 2])
            _, payload = call("list", "GET", f"/api/recordings/?page={page}", ok=(200, 404))
            if payload:
                known = json.loads(payload).get("results", []) or known
        elif r < 0.80:
            rec = rng.choice(known)
            call("detail", "GET", f"/api/recordings/{rec['id']}/")
        else:
            ready = [rec for rec in known if rec.get("status") == "ready"]
            if ready:
                rec = rng.choice(ready)
                _, payload = call("consultation", "POST", f"/api/recordings/{rec['id']}/consultations/",
                                  body={"motif": MOTIF}, ok=(200, 201))
                if payload:
                    media = urlsplit(json.loads(payload)["media_url"]).path
                    status, first = call("media-range", "GET", media, headers={"Range": "bytes=0-524287"}, ok=(206,))
                    if status == 206:
                        # Seek: a range further in, as the player does when the user jumps ahead.
                        start = rng.randrange(0, max(1, rec.get("size") or 1 << 20))
                        call("media-range", "GET", media, headers={"Range": f"bytes={start}-{start + 262143}"},
                             ok=(206, 416))
        stop.wait(rng.uniform(0.5, 1.5) * think)
    conn.close()


# --- sampling: /proc, pg_stat_activity, Redis ------------------------------------------------------

def proc_table() -> dict[int, tuple[int, str, int]]:
    """pid → (ppid, comm, utime+stime+cutime+cstime in ticks)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        # fields[0] is state; utime, stime, cutime, cstime are fields 14-17 of stat (11-14 here).
        table[int(name)] = (int(fields[1]), comm, sum(int(x) for x in fields[11:15]))
    return table


def subtree_ticks(table) -> Callable[[int], int]:
    """For a /proc table {pid: (ppid, comm, ticks)}: a function giving the CPU ticks of a process
    and all its descendants."""
    children = defaultdict(list)
    for pid, (ppid, _comm, _t) in table.items():
        children[ppid].append(pid)

    def subtree(root: int) -> int:
        total, todo = 0, [root]
        while todo:
            pid = todo.pop()
            if pid in table:
                total += table[pid][2]
                todo.extend(children.get(pid, ()))
        return total

    return subtree


def group_cpu(stack: Stack, table) -> dict[str, int]:
    """CPU ticks per role: the subtree of each process the script started, PostgreSQL, Redis, this script."""
    subtree = subtree_ticks(table)
    groups = {}
    for role, proc in stack.procs.items():
        key = "dockd" if role.startswith("dockd-") else ("worker-dock" if role.startswith("worker-quai") else role)
        groups[key] = groups.get(key, 0) + subtree(proc.pid)
    for label, comm in (("postgresql (server)", "postgres"), ("redis", "redis-server")):
        roots = [pid for pid, (ppid, c, _t) in table.items() if c == comm and table.get(ppid, (0, ""))[1] != comm]
        groups[label] = sum(subtree(pid) for pid in roots)
    groups["bench (users)"] = table.get(os.getpid(), (0, "", 0))[2]
    return groups


def cpu_stat() -> dict[str, int]:
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return {"busy": user + nice + system + irq + softirq, "iowait": iowait, "idle": idle, "steal": steal,
            "total": user + nice + system + idle + iowait + irq + softirq + steal}


def disk_device(path: Path) -> str:
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    with open("/proc/diskstats") as fh:
        for line in fh:
            f = line.split()
            if int(f[0]) == major and int(f[1]) == minor:
                return f[2]
    return ""


def disk_stat(device: str) -> dict[str, int]:
    with open("/proc/diskstats") as fh:
        for line in fh:
            f = line.split()
            if f[2] == device:
                return {"read_bytes": int(f[5]) * 512, "write_bytes": int(f[9]) * 512, "io_ms": int(f[12])}
    return {"read_bytes": 0, "write_bytes": 0, "io_ms": 0}


class Sampler(threading.Thread):
    def __init__(self, stack: Stack, queues: list[str]):
        super().__init__(name="sampler", daemon=True)
        self.stack, self.queues = stack, queues
        self.stop = threading.Event()
        self.samples: list[dict] = []
        self.metrics_latency: list[float] = []
        self.device = disk_device(stack.workdir)
        self.dbname = urlsplit(stack.args.database_url).path.lstrip("/")

    def run(self) -> None:
        import redis

        r = redis.Redis.from_url(self.stack.args.redis_url)
        db = pg(self.stack.args.database_url)
        prev = None
        n = 0
        backend_ticks: dict[int, int] = {}  # CPU of the backends serving the bench's database, by pid
        while not self.stop.is_set():
            t = time.time()
            table = proc_table()
            now = {"t": t, "groups": group_cpu(self.stack, table), "cpu": cpu_stat(), "disk": disk_stat(self.device)}
            for (pid,) in db.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.dbname]).fetchall():
                if pid in table:
                    backend_ticks[pid] = table[pid][2]
            # A lower bound (a backend living less than a second is missed): the server's figure also
            # counts other databases of a shared server.
            now["groups"]["postgresql (bench db)"] = sum(backend_ticks.values())
            with r.pipeline(transaction=False) as pipe:
                for q in self.queues:
                    pipe.llen(q)
                now["queues"] = dict(zip(self.queues, pipe.execute()))
            rows = db.execute(
                "SELECT state, coalesce(wait_event_type, ''), coalesce(wait_event, ''), count(*) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1, 2, 3", [self.dbname]).fetchall()
            now["pg"] = [(s or "", wt, we, c) for s, wt, we, c in rows]
            if prev is not None:
                self.samples.append(self._delta(prev, now))
            prev = now
            n += 1
            if n % 5 == 0:
                t0 = time.perf_counter()
                status, _ = self.stack.http("GET", "/metrics", token=self.stack.token, bearer=True)
                if status == 200:
                    self.metrics_latency.append(time.perf_counter() - t0)
            self.stop.wait(max(0.0, 1.0 - (time.time() - t)))
        db.close()

    @staticmethod
    def _delta(a: dict, b: dict) -> dict:
        dt_s = b["t"] - a["t"]
        total = max(1, b["cpu"]["total"] - a["cpu"]["total"])
        return {
            "t": b["t"],
            "seconds": dt_s,
            # Percent of one core for each group; of the whole machine for busy/iowait.
            "groups": {k: 100.0 * max(0, b["groups"].get(k, 0) - a["groups"].get(k, 0)) / CLK_TCK / dt_s
                       for k in b["groups"]},
            "busy": 100.0 * (b["cpu"]["busy"] - a["cpu"]["busy"]) / total,
            "iowait": 100.0 * (b["cpu"]["iowait"] - a["cpu"]["iowait"]) / total,
            "steal": 100.0 * (b["cpu"]["steal"] - a["cpu"]["steal"]) / total,
            "read_mb_s": (b["disk"]["read_bytes"] - a["disk"]["read_bytes"]) / 1e6 / dt_s,
            "write_mb_s": (b["disk"]["write_bytes"] - a["disk"]["write_bytes"]) / 1e6 / dt_s,
            "disk_util": 100.0 * (b["disk"]["io_ms"] - a["disk"]["io_ms"]) / 1000.0 / dt_s,
            "queues": b["queues"],
            "pg": b["pg"],
        }


# --- report -------------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def api_by_kind(rows: list, t_start: float, t_end: float) -> dict:
    """Latency and errors of the users' requests between ``t_start`` and ``t_end``, by kind."""
    rows = [r for r in rows if t_start <= r[3] <= t_end]
    api = {}
    for kind in ["list", "detail", "consultation", "media-range", "all"]:
        sel = [r for r in rows if kind == "all" or r[0] == kind]
        lat = [r[2] * 1000 for r in sel]
        errors = sum(1 for r in sel if r[1] == 0 or r[1] >= 400 and not (r[0] == "media-range" and r[1] == 416)
                     and not (r[0] == "list" and r[1] == 404))
        api[kind] = {"requests": len(sel), "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95),
                     "max_ms": max(lat) if lat else float("nan"), "errors": errors,
                     "error_rate": errors / len(sel) if sel else 0.0,
                     "rps": len(sel) / (t_end - t_start) if t_end > t_start else 0.0}
    return api


def summarise(args, facts, stack, gen, timings, results: Results, sampler: Sampler, window: tuple[float, float],
              checks: dict) -> dict:
    t_start, t_end = window
    api = api_by_kind(results.rows, t_start, t_end)
    samples = [s for s in sampler.samples if t_start <= s["t"] <= t_end]
    cores = os.cpu_count() or 1
    for s in samples:
        # What the machine spent beyond this stack and this script: other programs on a shared host.
        ours = sum(v for k, v in s["groups"].items() if k != "postgresql (bench db)")
        s["groups"]["other processes"] = max(0.0, s["busy"] * cores - ours)
    groups = sorted({g for s in samples for g in s["groups"]})
    cpu = {g: {"mean": statistics.fmean(s["groups"].get(g, 0) for s in samples) if samples else 0,
               "max": max((s["groups"].get(g, 0) for s in samples), default=0)} for g in groups}
    machine = {k: {"mean": statistics.fmean(s[k] for s in samples) if samples else 0,
                   "max": max((s[k] for s in samples), default=0)}
               for k in ("busy", "iowait", "steal", "read_mb_s", "write_mb_s", "disk_util")}
    saturated = sum(1 for s in samples if s["busy"] + s["iowait"] >= 90) / len(samples) if samples else 0
    queues = {q: {"max": max((s["queues"].get(q, 0) for s in samples), default=0),
                  "mean": statistics.fmean(s["queues"].get(q, 0) for s in samples) if samples else 0}
              for q in sampler.queues}
    waits: Counter = Counter()
    active = []
    for s in samples:
        n_active = 0
        for state, wtype, wevent, count in s["pg"]:
            if state == "active":
                n_active += count
                waits[f"{wtype}:{wevent}" if wtype else "CPU (no wait)"] += count
        active.append(n_active)
    pg_summary = {"active_mean": statistics.fmean(active) if active else 0, "active_max": max(active, default=0),
                  "waits": dict(waits.most_common(8)), "samples": len(samples)}
    series = [{"t": round(s["t"] - t_start, 1), "busy": round(s["busy"], 1), "iowait": round(s["iowait"], 1),
               "queues": s["queues"], "write_mb_s": round(s["write_mb_s"], 1)} for s in samples]
    return {"args": vars(args), "machine": facts, "clips": gen, "timings": timings, "api": api,
            "errors": dict(results.errors), "cpu_percent_of_one_core": cpu, "machine_percent": machine,
            "saturated_fraction": saturated, "queues": queues, "postgresql": pg_summary,
            "metrics_scrape_ms": {"p50": pct([x * 1000 for x in sampler.metrics_latency], 50),
                                  "max": max(sampler.metrics_latency, default=0) * 1000,
                                  "scrapes": len(sampler.metrics_latency)},
            "checks": checks, "series": series}


def bottleneck(summary: dict) -> str:
    m, cpu, pgs, q = summary["machine_percent"], summary["cpu_percent_of_one_core"], summary["postgresql"], summary["queues"]
    top = sorted(cpu.items(), key=lambda kv: -kv[1]["mean"])[:3]
    tops = ", ".join(f"{k} {v['mean']:.0f} %" for k, v in top)
    cores = summary["machine"].get("cpus", 2)
    lines = []
    if summary["saturated_fraction"] >= 0.5 or m["busy"]["mean"] >= 80:
        lines.append(f"CPU-bound: the {cores} cores were ≥ 90 % busy (incl. iowait) {summary['saturated_fraction']:.0%} "
                     f"of the time (mean busy {m['busy']['mean']:.0f} %, iowait {m['iowait']['mean']:.0f} %); "
                     f"largest consumers (% of one core): {tops}.")
    else:
        lines.append(f"CPU not saturated (mean busy {m['busy']['mean']:.0f} %, iowait {m['iowait']['mean']:.0f} %); "
                     f"largest consumers (% of one core): {tops}.")
    if m["iowait"]["mean"] >= 20 or m["disk_util"]["mean"] >= 70:
        lines.append(f"Disk pressure: utilisation {m['disk_util']['mean']:.0f} % mean / {m['disk_util']['max']:.0f} % "
                     f"max, writes {m['write_mb_s']['mean']:.0f} MB/s mean / {m['write_mb_s']['max']:.0f} MB/s max.")
    else:
        lines.append(f"Disk not limiting: utilisation {m['disk_util']['mean']:.0f} % mean, writes "
                     f"{m['write_mb_s']['mean']:.0f} MB/s mean / {m['write_mb_s']['max']:.0f} MB/s max.")
    waits = pgs["waits"]
    lock_waits = sum(v for k, v in waits.items() if k.startswith(("Lock:", "LWLock:")))
    lines.append(f"PostgreSQL: {pgs['active_mean']:.1f} active backends on average (max {pgs['active_max']}); "
                 f"lock waits in {lock_waits} backend-samples; top states: "
                 + ", ".join(f"{k} {v}" for k, v in list(waits.items())[:4]) + ".")
    lines.append("Redis queues (max depth): " + ", ".join(f"{k} {v['max']}" for k, v in q.items()) + ".")
    return "\n".join(lines)


def report(summary: dict) -> str:
    t, api, c = summary["timings"], summary["api"], summary["checks"]
    out = [
        "",
        "=" * 78,
        "Shift change load test (bench/load.py)",
        "=" * 78,
        f"machine: {summary['machine']['cpu_model']}, {summary['machine']['cpus']} CPUs, "
        f"{summary['machine']['mem_gb']:.1f} GB RAM, Python {summary['machine']['python']}",
        f"docks × cameras: {summary['args']['docks']} × {CAMERAS_PER_DOCK} = {t['cameras']} cameras, "
        f"{t['clips']} clips, {t['bytes'] / 1e6:.0f} MB ({summary['args']['clip_seconds']:g} s 1080p H.264/AAC "
        f"at {summary['args']['bitrate']}), docked over {summary['args']['dock_window']:g} s; "
        f"{summary['args']['users']} users; web gthread {summary['args']['web_workers']}×"
        f"{summary['args']['web_threads']}, dock workers -c {summary['args']['dock_concurrency']}, "
        f"media worker -c {summary['args']['media_concurrency']}",
        "",
        f"offload: first docking → last clip verified in the store   {t['offload_s']:.1f} s "
        f"({t['bytes'] / 1e6 / max(t['offload_s'], 1e-9):.1f} MB/s)",
        f"         first docking → last playback copy ready           {t['processed_s']:.1f} s",
        f"         per docking (docked → session complete): p50 {t['docking_p50_s']:.1f} s, "
        f"p95 {t['docking_p95_s']:.1f} s, max {t['docking_max_s']:.1f} s",
        "",
        f"{'API request':<14}{'count':>7}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'errors':>8}",
    ]
    for kind, a in api.items():
        out.append(f"{kind:<14}{a['requests']:>7}{a['rps']:>8.1f}{a['p50_ms']:>9.0f}{a['p95_ms']:>9.0f}"
                   f"{a['max_ms']:>9.0f}{a['errors']:>8} ({a['error_rate']:.2%})")
    if summary["errors"]:
        out.append("errors: " + ", ".join(f"{k} ×{v}" for k, v in sorted(summary["errors"].items())))
    out += ["", "CPU, % of one core (mean / max over the shift change):"]
    for k, v in sorted(summary["cpu_percent_of_one_core"].items(), key=lambda kv: -kv[1]["mean"]):
        out.append(f"  {k:<16}{v['mean']:>6.0f} / {v['max']:.0f}")
    m = summary["machine_percent"]
    out.append(f"machine: busy {m['busy']['mean']:.0f} % (max {m['busy']['max']:.0f}), iowait {m['iowait']['mean']:.0f} %, "
               f"steal {m['steal']['mean']:.0f} %; disk {summary['clips'].get('device', '?')}: write "
               f"{m['write_mb_s']['mean']:.0f} MB/s mean (max {m['write_mb_s']['max']:.0f}), read "
               f"{m['read_mb_s']['mean']:.0f} MB/s, utilisation {m['disk_util']['mean']:.0f} %")
    ms = summary["metrics_scrape_ms"]
    out.append(f"/metrics scraped {ms['scrapes']}× during the run: p50 {ms['p50']:.0f} ms, max {ms['max']:.0f} ms")
    out += ["", "Bottleneck:", bottleneck(summary), "",
            f"checks: {c['verified']}/{t['clips']} shift clips verified, {c['wiped']} wiped from the cameras, "
            f"{c['left_on_cameras']} left; custody verify: {c['custody']}", "=" * 78]
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docks", type=int, default=2, help="docks of 8 cameras (default 2)")
    p.add_argument("--clips-per-camera", type=int, default=3, help="clips each camera brings back (default 3)")
    p.add_argument("--clip-seconds", type=float, default=8, help="length of each clip (default 8 s)")
    p.add_argument("--bitrate", default="8M", help="video bitrate of the clips (default 8M)")
    p.add_argument("--users", type=int, default=50, help="simulated users (default 50)")
    p.add_argument("--think", type=float, default=1.0, help="mean think time between a user's requests, s")
    p.add_argument("--dock-window", type=float, default=90, help="the cameras dock spread over this many s")
    p.add_argument("--warmup", type=float, default=15, help="users browse this long before the first docking")
    p.add_argument("--timeout", type=float, default=1800, help="give up after this many s")
    p.add_argument("--web-workers", type=int, default=2)
    p.add_argument("--web-threads", type=int, default=8)
    p.add_argument("--dock-concurrency", type=int, default=1, help="Celery concurrency of each dock worker")
    p.add_argument("--media-concurrency", type=int, default=2, help="Celery concurrency of the media worker")
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/temoin_load",
                   help="a database of the bench's own: DROPPED and recreated")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="a Redis database of its own: FLUSHED")
    p.add_argument("--workdir", help="default: a new /tmp/temoin-load-*")
    p.add_argument("--keep-workdir", action="store_true")
    p.add_argument("--json", help="also write every figure (and the per-second series) to this file")
    args = p.parse_args(argv)

    import redis

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="temoin-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    facts = {"cpu_model": cpu_model(), "cpus": os.cpu_count(), "mem_gb": meminfo().get("MemTotal", 0) / 2**30,
             "python": sys.version.split()[0], "kernel": os.uname().release}
    t_begin = time.monotonic()
    n_cameras = args.docks * CAMERAS_PER_DOCK

    # 1. Clips (not timed): the previous shift (one clip per camera) and the shift under test.
    log(f"workdir {workdir}")
    prev = offload_bench.generate(workdir / "previous", cameras=n_cameras, total_bytes=1, clip_seconds=args.clip_seconds,
                                  bitrate=args.bitrate, transcode_codec="mjpeg", transcode_seconds=1)
    shift = offload_bench.generate(workdir / "shift", cameras=n_cameras,
                                   total_bytes=_bytes_for(prev, n_cameras * args.clips_per_camera),
                                   clip_seconds=args.clip_seconds, bitrate=args.bitrate, transcode_codec="mjpeg",
                                   transcode_seconds=1)
    cameras = [{"serial": v["serial"], "matricule": v["matricule"]} for v in shift["volumes"]]

    # 2. The stack.
    recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    stack = Stack(args, workdir)
    users = setup_instance(stack, cameras, args.users)
    stack.start_all()
    db = pg(args.database_url)
    staging = workdir / "staging"
    staging.mkdir(exist_ok=True)
    results, stop_users = Results(), threading.Event()
    sampler = Sampler(stack, ["media"] + [f"dock.{d}" for d in stack.docks])
    threads: list[threading.Thread] = []
    checks, timings = {}, {}
    try:
        log("waiting for /api/health/ to answer 200 (web, broker, store, workers)…")
        deadline = time.monotonic() + 180
        while True:
            stack.check_alive()
            try:
                status, body = stack.http("GET", "/api/health/", token=stack.token, bearer=True, timeout=10)
            except OSError:
                status, body = 0, b""
            if status == 200 and b'"components"' in body:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the stack did not become healthy: {status} {body[:2000]!r}")
            time.sleep(1)

        # 3. The previous shift, docked and processed before the users arrive (not timed).
        since_prev = dt.datetime.now(dt.timezone.utc)
        log(f"previous shift: docking {n_cameras} cameras with one clip each…")
        for vol, dock, slot in placement(prev["volumes"], stack.docks):
            dock_camera(Path(prev["master"]) / vol["slot"], staging, stack.dock_roots[dock] / slot)
        took = wait_processed(stack, db, expected=prev["files"], since=since_prev, timeout=args.timeout,
                              what="the previous shift")
        log(f"previous shift processed in {took:.0f} s; undocking")
        undock_all(stack)
        time.sleep(3)  # dockd notices the undocking (its interval is 1 s)

        # 4. The shift change.
        sampler.start()
        log(f"{len(users)} users browsing; {n_cameras} cameras dock over {args.dock_window:g} s after "
            f"{args.warmup:g} s of warm-up")
        for i, user in enumerate(users):
            th = threading.Thread(target=user_loop, args=(stack.port, user, stop_users, results, 1000 + i, args.think),
                                  daemon=True, name=f"user-{i}")
            th.start()
            threads.append(th)
        t_users = time.time()
        time.sleep(args.warmup)
        since_shift = dt.datetime.now(dt.timezone.utc)
        order = placement(shift["volumes"], stack.docks)
        random.Random(7).shuffle(order)
        docked_at = {}
        t_first = time.time()
        for k, (vol, dock, slot) in enumerate(order):
            target_time = t_first + args.dock_window * k / max(1, len(order) - 1)
            time.sleep(max(0.0, target_time - time.time()))
            docked_at[vol["serial"]] = dock_camera(Path(shift["master"]) / vol["slot"], staging,
                                                   stack.dock_roots[dock] / slot)
        log(f"all {len(order)} cameras docked; waiting for the offloads and the playback copies…")
        wait_processed(stack, db, expected=shift["files"], since=since_shift, timeout=args.timeout,
                       what="the shift's clips")
        t_done = time.time()
        # Let the users run as long as the docking window at least, so that the API figures cover it.
        time.sleep(max(0.0, t_first + args.dock_window - t_done))
        stop_users.set()
        for th in threads:
            th.join(timeout=70)
        t_end = time.time()
        sampler.stop.set()
        sampler.join(timeout=10)

        # 5. Timings from the database (custody events are the ground truth of "verified").
        first = dt.datetime.fromtimestamp(t_first, dt.timezone.utc)
        verified_last = db.execute(
            "SELECT max(e.occurred_at) FROM audit_custodyevent e JOIN evidence_recording r ON r.id = e.recording_id "
            "WHERE e.action = 'recording.verified' AND r.ingested_at >= %s", [since_shift]).fetchone()[0]
        ready_last = db.execute(
            "SELECT max(e.occurred_at) FROM audit_custodyevent e JOIN evidence_recording r ON r.id = e.recording_id "
            "WHERE e.action IN ('recording.playback_ready', 'recording.unplayable') AND r.ingested_at >= %s",
            [since_shift]).fetchone()[0]
        sessions = db.execute(
            "SELECT c.serial, s.finished_at FROM devices_offloadsession s JOIN devices_camera c ON c.id = s.camera_id "
            "WHERE s.started_at >= %s", [since_shift]).fetchall()
        per_docking = [(fin.timestamp() - docked_at[serial]) for serial, fin in sessions if fin and serial in docked_at]
        timings = {
            "cameras": n_cameras, "clips": shift["files"], "bytes": shift["bytes"],
            "offload_s": (verified_last - first).total_seconds(), "processed_s": (ready_last - first).total_seconds(),
            "docking_p50_s": pct(per_docking, 50), "docking_p95_s": pct(per_docking, 95),
            "docking_max_s": max(per_docking, default=float("nan")), "sessions": len(sessions),
            "users_s": t_end - t_users,
        }
        verified = db.execute(
            "SELECT count(*) FROM devices_offloaditem i JOIN devices_offloadsession s ON s.id = i.session_id "
            "WHERE s.started_at >= %s AND i.status = 'verified'", [since_shift]).fetchone()[0]
        wiped = db.execute(
            "SELECT count(*) FROM devices_offloaditem i JOIN devices_offloadsession s ON s.id = i.session_id "
            "WHERE s.started_at >= %s AND i.wiped", [since_shift]).fetchone()[0]
        left = sum(1 for root in stack.dock_roots.values() for _ in root.rglob("*.mp4"))
        custody = stack.manage("custody", "verify", check=False)
        checks = {"verified": verified, "wiped": wiped, "left_on_cameras": left,
                  "custody": (custody.stdout.strip().splitlines() or ["?"])[-1][:200],
                  "custody_ok": custody.returncode == 0}
        shift["device"] = sampler.device
        summary = summarise(args, facts, stack, {k: v for k, v in shift.items() if k in ("files", "bytes", "device")},
                            timings, results, sampler, (t_users, t_end), checks)
    finally:
        stop_users.set()
        sampler.stop.set()
        stack.stop()
        db.close()
        if not args.keep_workdir:
            drop_database(args.database_url)
    text = report(summary)
    print(text)
    log(f"total duration of the bench (generation, set-up, run, checks): {time.monotonic() - t_begin:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    ok = checks.get("custody_ok") and checks.get("verified") == timings.get("clips") and checks.get("left_on_cameras") == 0
    return 0 if ok else 1


def _bytes_for(prev: dict, clips: int) -> int:
    """generate() makes ceil(total / clip size) clips: ask for exactly ``clips`` of the same size."""
    size = prev["bytes"] / max(1, prev["files"])
    return int(size * (clips - 0.5))


if __name__ == "__main__":
    sys.exit(main())
