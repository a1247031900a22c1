#!/usr/bin/env python
"""Axis content destination benchmark (issue 7): 8 docks uploading at once, against a bare receiver.

What it does (see docs/benchmarks.md, section "Axis content destination"):

1. Generation (not timed): ``docks × recordings × clips`` files of random bytes (each its own
   SHA-256), under ``<workdir>/clips``; read once so that both phases send them from memory.
2. Setup (not timed): a fresh data dir (``TEMOIN_DATA_DIR`` only: SQLite, local write-once
   store, filesystem broker; media tasks are queued, not run), ``migrate``, ``addorg``, one officer
   per dock (``adduser --matricule``), ``axis_connection_file`` for the credentials; then Témoin
   is started with gunicorn (``--workers W --threads T``, gthread) on a free port, and every dock
   registers its user and device over the API.
3. Bare (timed): a minimal receiver (``http.server.ThreadingHTTPServer`` in its own process) that
   writes each PUT body to a file, SHA-256 while writing, fsync, and answers 201 with the hash.
4. Témoin (timed): the same bytes as the body worn system sends them: per dock, one
   authentication, then per recording ``PUT`` container with metadata, ``PUT`` each clip with its
   metadata, ``POST`` ``Status: Complete``.
5. Check: every clip of the Témoin phase is a ``stored`` Recording whose SHA-256 is the file's,
   every bare upload answered the file's SHA-256.

Each dock is a thread with its own keep-alive ``http.client`` connection that sends the files in
1 MiB blocks; the client is the same for both phases. The phases alternate with ``--repeat``.

Before its timed window each phase waits ``--settle`` seconds (5) with its server up and idle.
On the reference VM the guest kernel hands memory that stayed free for a moment back to the host
(virtio-balloon free page reporting; Linux works through freed memory about 2 s after it is
freed); touching such memory again costs a fault on the host, which shows as a slow page-cache
copy in the guest. Without the wait the bare phase, which starts within half a
second of the previous phase deleting its files, wrote into memory still backed while Témoin,
started and registered for 2–3 s, wrote into memory handed back: a systematic bias, measured
(docs/benchmarks.md). With it, both phases find the memory in the same state.

Run from the repository root:  .venv/bin/python bench/axis.py   (about 2 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model, free_page_reporting, meminfo, read_text  # noqa: E402  (bench/machine.py)
from urllib.parse import quote, urlsplit

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
MANAGE = str(REPO / "manage.py")
ORG = "bench"
TARGET = 0.8
BLOCK = 1024 * 1024
PROJECT_ENV_PREFIXES = ("TEMOIN_", "DATABASE_URL", "S3_", "CELERY_", "DJANGO_", "REDIS_")


def log(msg: str = "") -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DATABASE = {"url": ""}  # --database-url: PostgreSQL server; each run gets its own database


def database_url(name: str) -> str:
    parts = urlsplit(DATABASE["url"])
    return parts._replace(path="/" + name).geturl()


def admin_sql(*statements: str) -> None:
    import psycopg

    with psycopg.connect(DATABASE["url"], autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def project_env(data_dir: Path, database: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV_PREFIXES)}
    env["TEMOIN_DATA_DIR"] = str(data_dir)
    if database:
        env["DATABASE_URL"] = database_url(database)
    env["DJANGO_DEBUG"] = "false"
    env["DJANGO_SECRET_KEY"] = "bench-" + uuid.uuid4().hex
    env["TEMOIN_LOG_LEVEL"] = "WARNING"
    return env


def manage(data_dir: Path, *args: str, database: str = "") -> str:
    proc = subprocess.run([PY, MANAGE, *args], env=project_env(data_dir, database), cwd=REPO, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def wait_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a process and its descendants, from /proc."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        fields = read_text(f"/proc/{p}/stat").rsplit(")", 1)[-1].split()
        if len(fields) > 13:
            total += (int(fields[11]) + int(fields[12])) / tick
        for task in Path(f"/proc/{p}/task").glob("*"):
            todo += [int(c) for c in read_text(str(task / "children")).split()]
    return total


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (0 without any), from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").glob("[0-9]*"):
        if read_text(str(d / "comm")).strip() == "postgres":
            fields = read_text(str(d / "stat")).rsplit(")", 1)[-1].split()
            if len(fields) > 13:
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def machine_facts(workdir: Path) -> dict:
    cpu, mem = cpu_model(), meminfo()
    fs = subprocess.run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", str(workdir)],
                        capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(), "cpu": cpu, "mem_total_gib": round(mem.get("MemTotal", 0) / 2**30, 1),
        "mem_available_gib": round(mem.get("MemAvailable", 0) / 2**30, 1), "python": platform.python_version(),
        "kernel": platform.release(), "workdir": str(workdir), "workdir_fs": fs,
        "disk_free_gb": round(shutil.disk_usage(workdir).free / 1e9, 1),
        "commit": commit + (" (with uncommitted changes)" if dirty.strip() else ""),
        "loadavg": read_text("/proc/loadavg").split()[:3], "free_page_reporting": free_page_reporting(),
    }


# --- Generation -----------------------------------------------------------------------------------

def generate(workdir: Path, *, docks: int, recordings: int, clips: int, clip_mb: float) -> list[list[list[dict]]]:
    """plan[dock][recording] = [{"path", "size", "sha256"}, ...]; random bytes, one file per clip."""
    root = workdir / "clips"
    root.mkdir(parents=True, exist_ok=True)
    size = int(clip_mb * 1e6)
    plan = []
    for d in range(docks):
        dock = []
        for r in range(recordings):
            rec = []
            for c in range(clips):
                path = root / f"d{d}_r{r}_c{c}.mp4"
                sha = hashlib.sha256()
                with open(path, "wb") as out:
                    remaining = size
                    while remaining:
                        block = os.urandom(min(BLOCK * 8, remaining))
                        sha.update(block)
                        out.write(block)
                        remaining -= len(block)
                rec.append({"path": str(path), "size": size, "sha256": sha.hexdigest()})
            dock.append(rec)
        plan.append(dock)
    return plan


def warm(plan) -> None:
    for dock in plan:
        for rec in dock:
            for clip in rec:
                with open(clip["path"], "rb") as fh:
                    while fh.read(BLOCK * 8):
                        pass


# --- The bare receiver --------------------------------------------------------------------------------

BARE_RECEIVER = r'''
import hashlib, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = sys.argv[2]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_PUT(self):
        length = int(self.headers["Content-Length"])
        path = os.path.join(ROOT, self.path.strip("/").replace("/", "_"))
        sha = hashlib.sha256()
        with open(path, "wb") as out:
            remaining = length
            while remaining:
                data = self.rfile.read(min(1 << 20, remaining))
                if not data:
                    break
                sha.update(data)
                out.write(data)
                remaining -= len(data)
            out.flush()
            os.fsync(out.fileno())
        body = sha.hexdigest().encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


# --- The docks -----------------------------------------------------------------------------------------

class Dock:
    """One simulated dock (system controller) with one keep-alive connection."""

    def __init__(self, base: str):
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600, blocksize=BLOCK)

    def request(self, method: str, path: str, *, headers: dict | None = None, body=None,
                length: int | None = None) -> tuple[int, dict, bytes]:
        headers = dict(headers or {})
        if length is not None:
            headers["Content-Length"] = str(length)
        elif body is None:
            headers["Content-Length"] = "0"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data

    def put_file(self, path: str, clip: dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
        with open(clip["path"], "rb") as fh:
            return self.request("PUT", path, headers=headers, body=fh, length=clip["size"])

    def close(self) -> None:
        self.conn.close()


def meta(kind: str, values: dict) -> dict:
    return {f"X-{kind}-Meta-" + k.capitalize(): quote(str(v), safe="") for k, v in values.items()}


SETTLE = {"seconds": 5.0}


def run_docks(plan, work, server_pid: int) -> tuple[float, list[str], dict]:
    """Each dock's ``work(dock_index, recordings)`` in its own thread; wall time, errors, CPU seconds.

    Both phases first wait ``SETTLE["seconds"]`` with their server up and idle, so that each timed
    window starts from the same state of memory (see ``--settle``).
    """
    import resource

    time.sleep(SETTLE["seconds"])

    errors: list[str] = []
    barrier = threading.Barrier(len(plan) + 1)

    def target(i):
        barrier.wait()
        try:
            work(i, plan[i])
        except Exception as exc:  # noqa: BLE001 - reported
            errors.append(f"dock {i}: {exc!r}")

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(plan))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    server_cpu, db_cpu = tree_cpu(server_pid), postgres_cpu()
    client = resource.getrusage(resource.RUSAGE_SELF)
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    client_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {"server": tree_cpu(server_pid) - server_cpu, "database": postgres_cpu() - db_cpu,
           "client": (client_after.ru_utime + client_after.ru_stime) - (client.ru_utime + client.ru_stime)}
    return seconds, errors, cpu


def bare_phase(plan, workdir: Path, run: int) -> dict:
    root = workdir / f"bare-{run + 1}"
    root.mkdir()
    port = free_port()
    proc = subprocess.Popen([PY, "-c", BARE_RECEIVER, str(port), str(root)])
    try:
        wait_port(port, proc)

        def work(i, recordings):
            dock = Dock(f"http://127.0.0.1:{port}")
            try:
                for r, rec in enumerate(recordings):
                    for c, clip in enumerate(rec):
                        status, _h, body = dock.put_file(f"/d{i}/r{r}/c{c}", clip)
                        if status != 201 or body.decode() != clip["sha256"]:
                            raise RuntimeError(f"bare upload answered {status} {body[:80]!r}")
            finally:
                dock.close()

        seconds, errors, cpu = run_docks(plan, work, proc.pid)
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)
    return {"seconds": seconds, "errors": errors, "cpu": cpu}


def temoin_phase(plan, workdir: Path, template: Path, run: int, args) -> dict:
    data_dir = workdir / f"data-{run}"
    shutil.copytree(template, data_dir)
    connection = json.loads((data_dir / "connection.json").read_text())
    port = free_port()
    database = ""
    if DATABASE["url"]:
        database = f"{TEMPLATE_DB}_run{run + 1 if run >= 0 else 'x'}"
        admin_sql(f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database} TEMPLATE {TEMPLATE_DB}")
    env = project_env(data_dir, database)
    server_log = open(workdir / f"gunicorn-{run}.log", "w")
    if args.server == "gunicorn":
        command = [PY, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-k", "gthread",
                   "--workers", str(args.workers), "--threads", str(args.threads), "--timeout", "600",
                   "--log-level", "warning"]
    else:  # Django's threaded development server, one process
        command = [PY, MANAGE, "runserver", "--noreload", "--nothreading" if args.threads == 0 else "--skip-checks",
                   f"127.0.0.1:{port}"]
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=server_log, stderr=server_log)
    try:
        wait_port(port, proc)
        auth_path = urlsplit(connection["AuthenticationTokenURI"][0]).path
        users = [str(uuid.UUID(int=i + 1)) for i in range(len(plan))]
        serials = [f"B8A44FBE{i:04d}" for i in range(len(plan))]

        def session(dock: Dock) -> tuple[str, str]:
            status, headers, _ = dock.request("GET", auth_path, headers={
                "X-Auth-User": connection["BlobAPIUserName"], "X-Auth-Key": connection["BlobAPIKey"]})
            if status != 200:
                raise RuntimeError(f"authentication answered {status}")
            return headers["X-Auth-Token"], urlsplit(headers["X-Storage-Url"]).path

        # Not timed: the administrator registers users and devices in the manager.
        dock = Dock(f"http://127.0.0.1:{port}")
        token, storage = session(dock)
        for i in range(len(plan)):
            for path, values in ((f"{storage}/Users/{users[i]}", {"Name": f"Agent {i}", "UserID": f"B{i:03d}"}),
                                 (f"{storage}/Devices/{serials[i]}", {"Name": f"Caméra {i}", "Model": "W110"})):
                status, _h, body = dock.request("PUT", path, headers={"X-Auth-Token": token, **meta("Object", values)})
                if status != 201:
                    raise SystemExit(f"registration answered {status}: {body!r}")
        dock.close()

        base_time = 1795210200  # 2026-11-20T21:30:00Z

        def work(i, recordings):
            dock = Dock(f"http://127.0.0.1:{port}")
            try:
                token, storage = session(dock)
                auth = {"X-Auth-Token": token}
                for r, rec in enumerate(recordings):
                    on = base_time + 3600 * r
                    name = f"{users[i]}_{serials[i]}_{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(on))}"
                    status, _h, body = dock.request("PUT", f"{storage}/{name}", headers={**auth, **meta("Container", {
                        "BWCSerialNumber": serials[i], "UserID": users[i], "TriggerOn": "Button",
                        "TriggerOnTime": on, "StartTime": on, "FirmwareVersion": "11.2.5", "BWCModel": "W110",
                        "SCUSerialNumber": "ACCC8E000001", "TimeZone": "Europe/Paris", "Status": "Transferring"})})
                    if status != 201:
                        raise RuntimeError(f"container answered {status}: {body[:200]!r}")
                    for c, clip in enumerate(rec):
                        start = on + 60 * c
                        clip_name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(start))}_{c}.mp4"
                        status, _h, body = dock.put_file(f"{storage}/{name}/{clip_name}", clip, headers={
                            **auth, **meta("Object", {"StartTime": start, "StopTime": start + 59,
                                                      "ContainerType": "mp4"})})
                        if status != 201:
                            raise RuntimeError(f"clip answered {status}: {body[:200]!r}")
                    status, _h, body = dock.request("POST", f"{storage}/{name}", headers={
                        **auth, **meta("Container", {"Status": "Complete"})})
                    if status != 204:
                        raise RuntimeError(f"completion answered {status}: {body[:200]!r}")
            finally:
                dock.close()

        seconds, errors, cpu = run_docks(plan, work, proc.pid)
    finally:
        stop(proc)
        server_log.close()
    check = check_temoin(data_dir, plan, database)
    if not args.keep_workdir:
        shutil.rmtree(data_dir, ignore_errors=True)
    if database and not args.keep_workdir:
        admin_sql(f"DROP DATABASE IF EXISTS {database}")
    return {"seconds": seconds, "errors": errors + check, "cpu": cpu}


def check_temoin(data_dir: Path, plan, database: str = "") -> list[str]:
    query = "SELECT sha256, status FROM evidence_recording"
    if database:
        import psycopg

        with psycopg.connect(database_url(database)) as db:
            rows = db.execute(query).fetchall()
    else:
        import sqlite3

        db = sqlite3.connect(data_dir / "temoin.sqlite3")
        rows = db.execute(query).fetchall()
        db.close()
    expected = {clip["sha256"] for dock in plan for rec in dock for clip in rec}
    stored = {sha for sha, status in rows if status == "stored"}
    problems = []
    if stored != expected or len(rows) != len(expected):
        problems.append(f"{len(expected)} clips sent, {len(stored & expected)} stored with their SHA-256, "
                        f"{len(rows)} recordings in the database")
    return problems


TEMPLATE_DB = "temoin_axis_bench"


def setup_template(workdir: Path, docks: int) -> Path:
    template = workdir / "data-template"
    template.mkdir()
    database = ""
    if DATABASE["url"]:  # a template database, copied for each run (CREATE DATABASE … TEMPLATE)
        database = TEMPLATE_DB
        admin_sql(f"DROP DATABASE IF EXISTS {database}", f"CREATE DATABASE {database}")
    manage(template, "migrate", "--no-input", database=database)
    manage(template, "addorg", ORG, "Bench", database=database)
    for i in range(docks):
        manage(template, "adduser", f"agent{i}", "--org", ORG, "--role", "officer", "--matricule", f"B{i:03d}",
               database=database)
    text = manage(template, "axis_connection_file", "--org", ORG, "--url", "http://127.0.0.1:1", database=database)
    (template / "connection.json").write_text(text)
    # The store and broker directories are recreated by each run's copy.
    return template


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docks", type=int, default=8)
    parser.add_argument("--recordings", type=int, default=2, help="recordings per dock")
    parser.add_argument("--clips", type=int, default=4, help="clips per recording")
    parser.add_argument("--clip-mb", type=float, default=32.0, help="size of each clip (10^6 bytes)")
    parser.add_argument("--server", choices=["gunicorn", "runserver"], default="gunicorn",
                        help="gunicorn gthread (as in compose.yaml) or manage.py runserver --noreload")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--repeat", type=int, default=3, help="bare/Témoin pairs; the order alternates")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip the untimed bare pass before the timed runs")
    parser.add_argument("--no-diagnostics", dest="diagnostics", action="store_false",
                        help="skip the fixed-cost run (tiny clips: per-clip time and CPU)")
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL server (e.g. postgres://postgres@127.0.0.1:5432/postgres) instead of the "
                             "embedded SQLite: each run gets a fresh database copied from a migrated template")
    parser.add_argument("--workdir", default="")
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument("--json", default="")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds each phase waits, server up and idle, before its timed window: longer than "
                             "the guest kernel's free page reporting delay (about 2 s), so that both phases find the "
                             "memory freed by the previous one handed back to the host (0: no wait)")
    args = parser.parse_args()
    DATABASE["url"] = args.database_url
    SETTLE["seconds"] = args.settle

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="temoin-axis-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(workdir)
    log("machine: " + json.dumps(facts, ensure_ascii=False))
    log(f"command: {' '.join(sys.argv)}")
    t0 = time.perf_counter()
    plan = generate(workdir, docks=args.docks, recordings=args.recordings, clips=args.clips, clip_mb=args.clip_mb)
    total = sum(c["size"] for dock in plan for rec in dock for c in rec)
    nclips = sum(len(rec) for dock in plan for rec in dock)
    log(f"generated {nclips} clips, {total / 1e9:.2f} GB, in {time.perf_counter() - t0:.1f} s")
    template = setup_template(workdir, args.docks)
    server = (f"gunicorn gthread, {args.workers} workers × {args.threads} threads" if args.server == "gunicorn"
              else "manage.py runserver --noreload (threaded)")
    log(f"server: {server}; database: "
        + (f"PostgreSQL ({urlsplit(DATABASE['url']).netloc})" if DATABASE["url"] else "embedded SQLite") + "; "
        f"{args.docks} docks × {args.recordings} recordings × {args.clips} clips of {args.clip_mb:g} MB")

    results = {"bare": [], "temoin": []}
    failed = False
    if args.warmup:
        # Untimed: the first large write burst after generation was consistently slower on the
        # reference machine (page-cache state), whichever phase came first.
        warm(plan)
        r = bare_phase(plan, workdir, -1)
        log(f"warm-up bare {total / 1e6 / r['seconds']:8.1f} MB/s (not counted)")
    for run in range(args.repeat):
        order = ["bare", "temoin"] if run % 2 == 0 else ["temoin", "bare"]
        for phase in order:
            warm(plan)
            subprocess.run(["sync"])
            if phase == "bare":
                r = bare_phase(plan, workdir, run)
            else:
                r = temoin_phase(plan, workdir, template, run, args)
            r["mb_s"] = total / 1e6 / r["seconds"]
            results[phase].append(r)
            status = "ok" if not r["errors"] else "ERRORS: " + "; ".join(r["errors"][:5])
            failed |= bool(r["errors"])
            gb = total / 1e9
            log(f"run {run + 1} {phase:7s} {r['seconds']:7.2f} s  {r['mb_s']:8.1f} MB/s  "
                f"CPU s/GB server {r['cpu']['server'] / gb:5.2f} client {r['cpu']['client'] / gb:5.2f}"
                + (f" database {r['cpu']['database'] / gb:5.2f}" if DATABASE["url"] else "") + f"  {status}")

    bare = statistics.median(r["mb_s"] for r in results["bare"])
    ours = statistics.median(r["mb_s"] for r in results["temoin"])
    ratio = ours / bare
    log("")
    log("| phase | runs (MB/s) | median MB/s |")
    log("|---|---|---|")
    for phase, label in (("bare", "bare receiver (write + SHA-256 + fsync)"), ("temoin", "Témoin /axis/ (full protocol)")):
        runs = ", ".join(f"{r['mb_s']:.1f}" for r in results[phase])
        log(f"| {label} | {runs} | {statistics.median(r['mb_s'] for r in results[phase]):.1f} |")
    log("")
    log(f"Témoin / bare = {ratio:.2f} (target ≥ {TARGET}): {'PASS' if ratio >= TARGET else 'FAIL'}")
    gb = total / 1e9
    for phase in ("bare", "temoin"):
        server = statistics.median(r["cpu"]["server"] / gb for r in results[phase])
        client = statistics.median(r["cpu"]["client"] / gb for r in results[phase])
        database = statistics.median(r["cpu"]["database"] / gb for r in results[phase])
        log(f"CPU per GB ({phase}): server {server:.2f} s, client {client:.2f} s"
            + (f", PostgreSQL {database:.2f} s" if DATABASE["url"] else "") + " (medians)")
    diagnostics = {}
    if args.diagnostics:
        # Fixed cost per clip (authentication, container, custody events, database, store calls):
        # the same protocol with clips of 100 kB.
        tiny = generate(workdir / "tiny", docks=args.docks, recordings=1, clips=16, clip_mb=0.1)
        warm(tiny)
        r = temoin_phase(tiny, workdir, template, 99, args)
        n = sum(len(rec) for dock in tiny for rec in dock)
        diagnostics = {"clips": n, "seconds": r["seconds"], "cpu": r["cpu"], "errors": r["errors"]}
        log(f"fixed cost: {n} clips of 100 kB from {args.docks} docks in {r['seconds']:.2f} s: "
            f"{r['cpu']['server'] / n * 1000:.1f} ms server CPU per clip (with its share of container, "
            f"authentication and completion), {n / r['seconds']:.0f} clips/s"
            + ("" if not r["errors"] else "  ERRORS: " + "; ".join(r["errors"][:3])))
    log(f"load average at the end: {' '.join(read_text('/proc/loadavg').split()[:3])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": facts, "args": vars(args), "bytes": total, "clips": nclips,
                                               "results": results, "ratio": ratio, "diagnostics": diagnostics},
                                              indent=2, default=str))
    if not args.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
