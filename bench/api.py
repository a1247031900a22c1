#!/usr/bin/env python
"""API and list-page latency with 1 million recordings in PostgreSQL (issue #4).

What it does:

1. Setup (not timed): a fresh PostgreSQL database next to the one of DATABASE_URL, migrated; one
   commune with 40 officers, 60 cameras and ``--recordings`` recordings (default 1,000,000) spread
   over a year, plus a second commune with 10,000 (isolation is exercised by every query); loaded
   with one INSERT … SELECT generate_series, then ANALYZE.
2. The application is served by gunicorn (``config.wsgi``, DEBUG off, 2 workers × 4 threads on this
   2-core machine), as in compose.yaml.
3. ``--clients`` concurrent clients (default 4: two per core) send, for ``--seconds`` each:
   - GET /api/recordings/ (supervisor token; first pages and filtered pages),
   - GET /api/recordings/{id}/ (random recording of the commune),
   - GET / (the list page, as a signed-in supervisor whose second factor was given).
4. Baseline, same run, same concurrency: the bare ``SELECT … ORDER BY started_at DESC LIMIT 50``
   of the same rows through psycopg (the floor any list endpoint pays).

Prints p50/p95/p99 per endpoint, the ratio to the baseline, and PASS/FAIL for the target
(list p95 under 50 ms).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/temoin .venv/bin/python bench/api.py
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from machine import cpu_model, meminfo  # noqa: E402


def say(msg: str) -> None:
    print(msg, flush=True)


def prepare_database(keep: bool):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/api.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'temoin'}_api_bench"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    # The server and this process sign the same session cookie.
    os.environ["DJANGO_SECRET_KEY"] = "bench-api-not-secret-" + "x" * 40
    data_dir = Path(tempfile.mkdtemp(prefix="temoin-bench-api-"))
    os.environ["TEMOIN_DATA_DIR"] = str(data_dir)
    os.environ["TEMOIN_CUSTODY_KEY"] = str(data_dir / "keys" / "custody.pem")

    def cleanup():
        import shutil

        from django.db import connections

        connections.close_all()
        if keep:
            say(f"kept database {name}")
            return
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)

    return cleanup


def load(n: int) -> dict:
    """Organisations, users, cameras through the services; recordings in bulk SQL (not timed)."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.services import organisation_create, user_create
    from devices.services import camera_register

    call_command("migrate", verbosity=0)
    with transaction.atomic():
        org = organisation_create(slug="chambery", name="Chambéry")
        other = organisation_create(slug="aix", name="Aix-les-Bains")
        officers = [user_create(username=f"agent{i}", organisation=org, role="officer", matricule=f"M{i:03d}")[0]
                    for i in range(40)]
        chef, token = user_create(username="chef", organisation=org, role="supervisor", password="bench-api-2026!")
        cams = [camera_register(serial=f"BWC-{i:04d}", organisation=org, model="Bench") for i in range(60)]
        aix_officer = user_create(username="aix0", organisation=other, role="officer")[0]
        aix_cam = camera_register(serial="AIX-0001", organisation=other, model="Bench")
    t0 = time.perf_counter()
    sql = """
    INSERT INTO evidence_recording (
      uuid, organisation_id, camera_id, wearer_id, wearer_source, source_path, source_size, source_mtime_ns,
      started_at, ended_at, time_source, time_attested, duration, sha256, size, camera_sha256, store_key,
      store_version_id, stream_hashes, sidecar_key, sidecar_sha256, sidecar_errors, media_info, playback_key,
      playback_version_id, playback_method, poster_key, poster_version_id, trigger_reason, trigger_source,
      purpose, subject_notified, notice_omitted_reason, intervention, status, status_message, retain_until,
      retention_basis, ingested_at, verified_at, erasure_rule, review_state, review_note,
      source_camera, source, regime, sidecar_version_id, docked_late)
    SELECT gen_random_uuid(), %(org)s, (%(cams)s)[1 + g %% %(ncams)s], (%(officers)s)[1 + g %% %(nofficers)s],
      'assignment', 'DCIM/100/CLIP' || g || '.MP4', 50000000 + g, 0,
      now() - (g * interval '31 seconds'), now() - (g * interval '31 seconds') + interval '90 seconds',
      'sidecar', true, 90, md5(%(salt)s || g) || md5(g || %(salt)s), 50000000 + g, '',
      'originals/' || %(salt)s || '/' || g || '.mp4', '', '{}', '', '', '[]', '{}', 'playback/' || g || '.mp4',
      '', 'remux', 'posters/' || g || '.jpg', '',
      (ARRAY['incident', 'risk_of_incident', ''])[1 + g %% 3], '', (ARRAY['evidence', '', 'training'])[1 + g %% 3],
      CASE WHEN g %% 7 = 0 THEN NULL ELSE true END, '', 'PM-' || (g / 4), 'ready', '',
      now() - (g * interval '31 seconds') + interval '1 month', 'CSI R241-13', now(), now(), '',
      (ARRAY['unreviewed', 'reviewed', 'flagged'])[1 + g %% 3], '',
      '', 'camera', 'body_worn', '', false
    FROM generate_series(1, %(n)s) AS g
    """
    with connection.cursor() as cur:
        cur.execute(sql, {"org": org.pk, "cams": [c.pk for c in cams], "ncams": len(cams),
                          "officers": [o.pk for o in officers], "nofficers": len(officers), "salt": "chb", "n": n})
        cur.execute(sql, {"org": other.pk, "cams": [aix_cam.pk], "ncams": 1, "officers": [aix_officer.pk],
                          "nofficers": 1, "salt": "aix", "n": min(n, 10_000)})
        cur.execute("ANALYZE")
        cur.execute("SELECT min(id), max(id) FROM evidence_recording WHERE organisation_id = %s", [org.pk])
        lo, hi = cur.fetchone()
    say(f"loaded {n:,} + {min(n, 10_000):,} recordings in {time.perf_counter() - t0:.0f} s")

    # A signed-in supervisor whose second factor was given: the session a browser would hold.
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=chef, name="bench", confirmed=True)
    session = SessionStore()
    session[SESSION_KEY] = str(chef.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = chef.get_session_auth_hash()
    session["otp_device_id"] = device.persistent_id
    session.create()
    return {"token": token, "session": session.session_key, "ids": (lo, hi), "org": org.pk,
            "officers": [o.matricule for o in officers]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, workers: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, DJANGO_DEBUG="false", TEMOIN_BEHIND_TLS="false", TEMOIN_SECURE_COOKIES="false",
               DJANGO_ALLOWED_HOSTS="127.0.0.1")
    # DEBUG off serves the collected, hashed static files (as the image does): collect them first,
    # or every page naming one fails (a stale manifest from an older checkout misses new files).
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
                             "-w", str(workers), "-k", "gthread", "--threads", str(threads), "--log-level", "warning"],
                            cwd=ROOT, env=env)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("gunicorn did not start")


def http_load(port: int, clients: int, seconds: float, make_request) -> tuple[list[float], int, int]:
    """Closed-loop clients with keep-alive; returns latencies (s), requests and errors."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(seed: int):
        rnd = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.perf_counter() < stop:
            path, headers = make_request(rnd)
            t0 = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, len(latencies), errors[0]


def sql_baseline(clients: int, seconds: float, org: int) -> list[float]:
    import psycopg

    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds
    url = os.environ["DATABASE_URL"]

    def client(seed: int):
        rnd = random.Random(seed)
        mine = []
        with psycopg.connect(url) as conn:
            while time.perf_counter() < stop:
                offset = rnd.choice([0, 0, 0, 50, 100, 500])
                t0 = time.perf_counter()
                conn.execute("SELECT * FROM evidence_recording WHERE organisation_id = %s "
                             "ORDER BY started_at DESC, id DESC LIMIT 50 OFFSET %s", [org, offset]).fetchall()
                mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recordings", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=4, help="concurrent clients (default: 2 per core)")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--keep-db", action="store_true")
    args = ap.parse_args()

    cleanup = prepare_database(args.keep_db)
    server = None
    try:
        say(f"machine: {cpu_model()}, {os.cpu_count()} cores, {meminfo().get('MemTotal', 0) / 2**30:.0f} GiB")
        facts = load(args.recordings)
        port = free_port()
        server = serve(port, args.workers, args.threads)
        token = {"Authorization": f"Token {facts['token']}"}
        cookie = {"Cookie": f"sessionid={facts['session']}"}
        lo, hi = facts["ids"]
        filters = ["", "", "", "?page=2", "?page=10", "?trigger_reason=incident",
                   "?status=ready&started_after=2026-06-01T00:00:00Z", f"?officer={facts['officers'][3]}"]
        scenarios = {
            "list API": lambda r: ("/api/recordings/" + r.choice(filters), token),
            "detail API": lambda r: (f"/api/recordings/{r.randint(lo, hi)}/", token),
            "list page": lambda r: ("/" + r.choice(["", "", "?page=3", "?trigger_reason=incident"]), cookie),
        }
        for name, make in scenarios.items():  # warm-up: connections, caches
            http_load(port, 2, 2.0, make)
        results = {}
        for name, make in scenarios.items():
            lat, n, errors = http_load(port, args.clients, args.seconds, make)
            results[name] = (lat, n, errors)
        base = sql_baseline(args.clients, args.seconds, facts["org"])
        base_p50, base_p95 = pct(base, 50) * 1000, pct(base, 95) * 1000
        say(f"\n{args.recordings:,} recordings, {args.clients} concurrent clients, {args.seconds:.0f} s per scenario, "
            f"gunicorn {args.workers} workers × {args.threads} threads")
        say(f"{'scenario':<14} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95 / SQL p95':>14}")
        for name, (lat, n, errors) in results.items():
            p95 = pct(lat, 95) * 1000
            say(f"{name:<14} {n:>9} {errors:>7} {pct(lat, 50) * 1000:>8.1f} {p95:>8.1f} {pct(lat, 99) * 1000:>8.1f} "
                f"{p95 / base_p95:>13.1f}×")
        say(f"{'bare SQL':<14} {len(base):>9} {0:>7} {base_p50:>8.1f} {base_p95:>8.1f} {pct(base, 99) * 1000:>8.1f} "
            f"{1.0:>13.1f}×")
        list_p95 = pct(results["list API"][0], 95) * 1000
        verdict = "PASS" if list_p95 < 50 else "FAIL"
        say(f"\ntarget: list API p95 < 50 ms → {list_p95:.1f} ms → {verdict}")
        say(json.dumps({"list_p95_ms": round(list_p95, 1), "sql_p95_ms": round(base_p95, 1), "verdict": verdict}))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        cleanup()


if __name__ == "__main__":
    main()
