#!/usr/bin/env python3
"""Hostile-input probe of a live Témoin: the real server (gunicorn), PostgreSQL and Redis.

What an attacker with one account in each role would do, from outside the process:

1. an anonymous burst on every public route (30 concurrent clients, a bounded number of requests
   each) while a signed-in user keeps asking for the recordings list: that list must answer within
   1 s throughout (issue 17: 30 anonymous /api/health/ requests used to stall the server);
2. Schemathesis over the OpenAPI schema with each role's token: valid and *negative* data, the
   coverage, fuzzing and stateful phases, until at least ``--requests-per-role`` requests of that
   role have reached the server (counted in gunicorn's access log, not estimated).

Invariants: no response ≥ 500 (an /api/health/ 503 is the health check's own answer and is
counted apart), no request without an answer within ``--timeout`` seconds (a hang).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/temoin_probe \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 .venv/bin/python tools/hostile_probe.py

The database named by DATABASE_URL is dropped and created again (it must be one of the probe's own).
Results go to var/reliability/live.json (rendered by tools/reliability_report.py); the exit code is
1 when an invariant broke.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import math
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
ROLES = ("officer", "supervisor", "legal", "dpo", "mayor", "admin")
LOG_FORMAT = '%(s)s %(m)s "%(U)s" role=%({x-probe-role}i)s %(L)s'
LOG_LINE = re.compile(r'^(\d{3}) (\S+) "([^"]*)" role=(\S*) ([\d.]+)$')
NO_5XX = "no response ≥ 500 (an /api/health/ 503 is the health check's own verdict)"
NO_HANG = "no request without an answer (hang)"


def log(text: str) -> None:
    print(f"[probe {time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- The deployment under test -------------------------------------------------------------------

class Deployment:
    def __init__(self, args):
        self.args = args
        self.data = Path(args.data_dir).resolve()
        self.port = args.port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.access_log = self.data / "access.log"
        self.metrics_token = secrets.token_urlsafe(24)
        self.env = {
            **os.environ,
            "DATABASE_URL": args.database_url, "CELERY_BROKER_URL": args.broker_url,
            "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "TEMOIN_BEHIND_TLS": "false",
            "TEMOIN_SECURE_COOKIES": "false", "TEMOIN_DATA_DIR": str(self.data),
            "TEMOIN_STATIC_ROOT": str(self.data / "static"), "TEMOIN_METRICS_TOKEN": self.metrics_token,
            "TEMOIN_LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "config.settings",
        }
        self.env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        self.server: subprocess.Popen | None = None
        self.tokens: dict[str, str] = {}

    def manage(self, *argv: str, quiet: bool = True) -> str:
        proc = subprocess.run([sys.executable, "manage.py", *argv], cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=900)
        if proc.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def prepare(self) -> None:
        import shutil

        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        parts = urlsplit(self.args.database_url)
        name = parts.path.lstrip("/")
        pg = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", parts.username or "postgres"]
        subprocess.run(["dropdb", *pg, "--if-exists", name], check=True)
        subprocess.run(["createdb", *pg, name], check=True)
        import redis

        redis.Redis.from_url(self.args.broker_url).flushdb()
        log("migrate, collectstatic, demo data (the commune of `make run`), one user per role, a second commune")
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")
        self.manage("demo", "--dock-root", str(self.data / "dock"))
        for role in ROLES:
            out = self.manage("adduser", f"probe.{role}", "--org", "chambery", "--role", role,
                              *(["--matricule", "P-042"] if role == "officer" else []),
                              f"--password={secrets.token_urlsafe(16)}")  # "=": a token may start with "-"
            self.tokens[role] = out.strip().splitlines()[-1].strip()
        self.manage("addorg", "annecy", "Police municipale d'Annecy")
        self.manage("adduser", "agent.annecy", "--org", "annecy", "--role", "officer", "--matricule", "A-001",
                    f"--password={secrets.token_urlsafe(16)}")
        self.manage("addcamera", "ANNECY-1", "--org", "annecy", "--officer", "A-001")

    def start(self) -> None:
        argv = [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                "--worker-class", "gthread", "--workers", str(self.args.web_workers), "--threads", "8",
                "--timeout", "120", "--access-logfile", str(self.access_log), "--access-logformat", LOG_FORMAT,
                "--error-logfile", str(self.data / "gunicorn.log")]
        log(f"gunicorn on {self.base} ({self.args.web_workers} workers × 8 threads), PostgreSQL, Redis broker")
        self.server_output = open(self.data / "server.log", "ab")  # Django's own log lines (4xx, 5xx)
        self.server = subprocess.Popen(argv, cwd=ROOT, env=self.env, start_new_session=True,
                                       stdout=self.server_output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/connexion/", timeout=5).read()
                return
            except (OSError, urllib.error.URLError):
                if self.server.poll() is not None:
                    raise SystemExit("gunicorn exited: see " + str(self.data / "gunicorn.log"))
                time.sleep(0.5)
        raise SystemExit("gunicorn did not answer within 60 s")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)

    def log_lines(self) -> list[tuple[int, str, str, str, float]]:
        rows = []
        try:
            text = self.access_log.read_text(errors="replace")
        except FileNotFoundError:
            return rows
        for line in text.splitlines():
            m = LOG_LINE.match(line.strip())
            if m:
                rows.append((int(m.group(1)), m.group(2), m.group(3), m.group(4), float(m.group(5))))
        return rows


# --- 1. Anonymous burst while a user works -----------------------------------------------------------

def _request(url: str, *, method: str = "GET", headers: dict | None = None, data: bytes | None = None,
             timeout: float) -> tuple[int | None, float]:
    """(status, seconds); status None when no answer came within ``timeout`` (a hang)."""
    t0 = time.perf_counter()
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    except (TimeoutError, socket.timeout):
        status = None
    except urllib.error.URLError as exc:
        status = None if isinstance(exc.reason, (TimeoutError, socket.timeout)) else -1
    return status, time.perf_counter() - t0


def public_requests(base: str) -> list[tuple[str, str, dict, bytes | None]]:
    """Every route an anonymous visitor reaches, each with a hostile or plain request."""
    form = b"username=admin&password=wrong-password-" + secrets.token_hex(4).encode()
    bad_key = {"X-Auth-User": "temoin-x-00000000", "X-Auth-Key": "not-a-key"}
    return [
        ("GET", "/api/health/", {}, None),
        ("GET", "/api/health/", {}, None),
        ("GET", "/api/health/?composant=database&composant=store", {}, None),
        ("GET", "/sante/", {"Accept": "text/html"}, None),
        ("GET", "/connexion/", {}, None),
        ("POST", "/connexion/", {"Content-Type": "application/x-www-form-urlencoded"}, form),
        ("GET", "/axis/auth/v1.0", bad_key, None),
        ("GET", "/journal/cle-publique/", {}, None),
        ("GET", "/journal/cle-publique.pem", {}, None),
        ("GET", "/partage/" + secrets.token_urlsafe(32) + "/", {}, None),
        ("GET", "/partage/" + secrets.token_urlsafe(32) + "/telecharger/", {"Range": "bytes=-100"}, None),
        ("GET", "/media/c/" + "A" * 43 + "/video", {"Range": "bytes=0-"}, None),
        ("GET", "/api/schema/", {}, None),
        ("GET", "/api/docs/", {}, None),
        ("GET", "/metrics", {}, None),
        ("GET", "/api/recordings/", {}, None),
        ("GET", "/nulle-part/" + secrets.token_hex(4), {}, None),
        ("GET", "/static/../../etc/passwd", {}, None),
    ]


def burst(dep: Deployment, args) -> dict:
    list_url = f"{dep.base}/api/recordings/"
    auth = {"Authorization": f"Token {dep.tokens['supervisor']}", "X-Probe-Role": "monitor"}
    stop = threading.Event()
    latencies: list[float] = []
    monitor_hangs = 0

    def monitor():
        nonlocal monitor_hangs
        while not stop.is_set():
            status, seconds = _request(list_url, headers=auth, timeout=args.timeout)
            if status is None:
                monitor_hangs += 1
            latencies.append(seconds)
            time.sleep(0.1)

    routes = public_requests(dep.base)
    results: list[tuple[str, int | None, float]] = []
    lock = threading.Lock()

    def client(n: int):
        for i in range(args.burst_per_client):
            method, path, headers, data = routes[(n + i) % len(routes)]
            status, seconds = _request(dep.base + path, method=method, headers={**headers, "X-Probe-Role": "anonymous"},
                                       data=data, timeout=args.timeout)
            with lock:
                results.append((path, status, seconds))

    # Before the burst: the list's time at rest, for comparison.
    at_rest = [(_request(list_url, headers=auth, timeout=args.timeout)[1]) for _ in range(5)]
    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    # First the finding itself: 30 anonymous /api/health/ at once.
    with concurrent.futures.ThreadPoolExecutor(args.burst_clients) as pool:
        list(pool.map(lambda _: results.append(("/api/health/",) + _request(
            f"{dep.base}/api/health/", headers={"X-Probe-Role": "anonymous"}, timeout=args.timeout)),
            range(args.burst_clients)))
        list(pool.map(client, range(args.burst_clients)))
    burst_seconds = time.perf_counter() - t0
    time.sleep(0.3)
    stop.set()
    watcher.join(timeout=args.timeout + 5)

    server_errors = [(p, s) for p, s, _ in results if s is not None and s >= 500
                     and not (s == 503 and p.startswith(("/api/health/", "/sante/")))]
    hangs = [p for p, s, _ in results if s is None] + ["(list API)"] * monitor_hangs
    refused = [p for p, s, _ in results if s == -1]
    statuses: dict[str, int] = {}
    for _, s, _ in results:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    worst = max(latencies) if latencies else float("inf")
    ok = not server_errors and not hangs and not refused and worst < 1.0 and len(latencies) >= 3
    return {
        "nodeid": "tools/hostile_probe.py::anonymous_burst",
        "title": "Anonymous burst on every public route while a user lists recordings (live server)",
        "how": (f"{args.burst_clients} concurrent anonymous clients: first {args.burst_clients} /api/health/ at "
                f"once, then {args.burst_per_client} requests each over {len(routes)} public routes (health, login "
                f"with a wrong password, Axis auth with a wrong key, share and media tokens forged, schema, metrics, "
                f"404s) against gunicorn + PostgreSQL + Redis; a supervisor asks for /api/recordings/ every 0.1 s"),
        "invariants": [NO_5XX, NO_HANG, "the recordings list answers within 1 s during the burst"],
        "unit": "request", "count": len(results),
        "outcome": "passed" if ok else "failed",
        "reason": "" if ok else (f"server errors {server_errors[:5]}; hangs {hangs[:5]}; refused {len(refused)}; "
                                 f"slowest list {worst:.2f} s")[:400],
        "figures": {"list API slowest during the burst": f"{worst * 1000:.0f} ms",
                    "list API median at rest": f"{sorted(at_rest)[len(at_rest) // 2] * 1000:.0f} ms",
                    "list requests during the burst": len(latencies), "burst seconds": round(burst_seconds, 1),
                    "statuses": dict(sorted(statuses.items()))},
        "findings": [], "seconds": round(burst_seconds, 1),
    }


# --- 2. Schemathesis with each role's token ----------------------------------------------------------

def schemathesis_role(dep: Deployment, role: str, args) -> dict:
    before = len([r for r in dep.log_lines() if r[3] == role])
    runs, exit_codes, seconds = 0, [], 0.0
    report_dir = dep.data / "schemathesis" / role
    outputs = []
    examples, last_count = args.max_examples, 0
    while runs < args.max_runs:
        count = len([r for r in dep.log_lines() if r[3] == role]) - before
        if count >= args.requests_per_role:
            break
        if runs:  # a further run only as large as what is still missing (+20 %): CI time (issue 18)
            per_example = max(1.0, (count - last_count) / examples)
            examples = max(5, min(args.max_examples, math.ceil((args.requests_per_role - count) * 1.2 / per_example)))
        last_count = count
        argv = [str(VENV_BIN / "schemathesis"), "run", f"{dep.base}/api/schema/",
                "-H", f"Authorization: Token {dep.tokens[role]}", "-H", f"X-Probe-Role: {role}",
                "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful",
                "--checks", "not_a_server_error", "--max-examples", str(examples),
                "--seed", str(args.seed + runs), "--request-timeout", str(args.timeout),
                "--workers", str(args.st_workers), "--max-failures", "100", "--continue-on-failure",
                "--suppress-health-check", "all", "--warnings", "off", "--no-shrink",
                "--report", "junit", "--report-dir", str(report_dir / str(runs))]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=dep.data, env={**os.environ, "NO_COLOR": "1"}, text=True, capture_output=True,
                              timeout=3600)
        seconds += time.perf_counter() - t0
        exit_codes.append(proc.returncode)
        outputs.append(proc.stdout[-6000:] + proc.stderr[-2000:])
        runs += 1
    rows = [r for r in dep.log_lines() if r[3] == role][before:]
    server_errors = [f"{m} {u} → {s}" for s, m, u, _, _ in rows if s >= 500]
    statuses: dict[str, int] = {}
    for s, *_ in rows:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    slowest = max((r[4] for r in rows), default=0.0)
    hangs = [o for o in outputs if "Timeout" in o or "timed out" in o.lower()]
    failed_runs = [c for c in exit_codes if c != 0]
    ok = (not server_errors and not hangs and not failed_runs and len(rows) >= args.requests_per_role)
    reason = ""
    if not ok:
        reason = (f"{len(server_errors)} server error(s) {sorted(set(server_errors))[:5]}; {len(hangs)} run(s) "
                  f"with timeouts; exit codes {exit_codes}; {len(rows)} requests")
        (dep.data / f"schemathesis-{role}.txt").write_text("\n\n".join(outputs))
    return {
        "nodeid": f"tools/hostile_probe.py::schemathesis[{role}]",
        "title": f"Schemathesis on the live server as {role}",
        "how": ("Every operation of /api/schema/ over HTTP to gunicorn (PostgreSQL, Redis) with this role's "
                "token: examples, coverage, fuzzing and stateful phases, valid and negative data "
                f"(--mode all, {args.max_examples} examples per operation, {runs} run(s))"),
        "invariants": [NO_5XX, NO_HANG],
        "unit": "request", "count": len(rows),
        "outcome": "passed" if ok else "failed", "reason": reason[:400],
        "figures": {"statuses": dict(sorted(statuses.items())), "slowest": f"{slowest:.2f} s"},
        "findings": sorted(set(server_errors))[:10], "seconds": round(seconds, 1),
    }


# --- Results -----------------------------------------------------------------------------------------

def save(entries: list[dict], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "live.json"
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    doc = {"suite": "live", "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                        "system": platform.platform()},
           "ci": os.environ.get("CI", "").lower() == "true", "updated_at": now,
           "entries": {e["nodeid"]: {**e, "finished_at": now} for e in entries}}
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--broker-url", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--data-dir", default=str(ROOT / "var" / "probe"))
    parser.add_argument("--results", default=os.environ.get("TEMOIN_RELIABILITY_DIR", str(ROOT / "var" / "reliability")))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--requests-per-role", type=int, default=5000)
    parser.add_argument("--max-examples", type=int, default=66,
                        help="per operation in the first Schemathesis run (later runs: what is still missing)")
    parser.add_argument("--max-runs", type=int, default=6, help="Schemathesis runs per role at most")
    # One Schemathesis worker: with two threads, CPython 3.11.7's ast.parse (Hypothesis describing a
    # strategy) can raise "SystemError: AST constructor recursion depth mismatch" (fixed in 3.11.8),
    # failing a run for no fault of the server.
    parser.add_argument("--st-workers", type=int, default=1)
    # Roles probed side by side, each its own Schemathesis process: one client alone leaves a core
    # idle (the client and the server take turns), and the six roles one after the other made CI's
    # probe ~13 min of its 40 (requests are counted per role from the access log, so this is exact).
    parser.add_argument("--role-jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--burst-clients", type=int, default=30)
    parser.add_argument("--burst-per-client", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds without an answer that make a hang")
    parser.add_argument("--skip-schemathesis", action="store_true")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        parser.error("DATABASE_URL (or --database-url) must name a PostgreSQL database the probe may recreate")

    dep = Deployment(args)
    entries: list[dict] = []
    dep.prepare()
    try:
        dep.start()
        entries.append(burst(dep, args))
        log(f"burst: {entries[-1]['outcome']} — {entries[-1]['figures']}")
        if not args.skip_schemathesis:
            roles = [r for r in args.roles.split(",") if r]
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.role_jobs)) as pool:
                futures = {role: pool.submit(schemathesis_role, dep, role, args) for role in roles}
                for role in roles:  # results in the roles' order, whatever order they finish in
                    entry = futures[role].result()
                    entries.append(entry)
                    log(f"schemathesis {role}: {entry['outcome']}, {entry['count']} requests, {entry['figures']}"
                        + (f" — {entry['reason']}" if entry["reason"] else ""))
    finally:
        dep.stop()
    path = save(entries, Path(args.results))
    log(f"results in {path}")
    failed = [e for e in entries if e["outcome"] != "passed"]
    for e in failed:
        log(f"FAILED {e['title']}: {e['reason']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
