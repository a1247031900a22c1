#!/usr/bin/env python
"""Custody log benchmark (issue 3): append throughput under concurrency, and verification speed of a
1,000,000-entry log against the raw SHA-256 speed of the same bytes, measured in the same run.

What it does, in order (see bench/README.md and docs/benchmarks.md):

1. Setup (not timed): a fresh database — on the PostgreSQL server of DATABASE_URL when it points to
   one (a new database ``<name>_custody_bench``, dropped at the end unless --keep-db), else a SQLite
   file in a temporary TEMOIN_DATA_DIR — migrated with the project's migrations (guards included).
2. Generation (not timed): N valid chained entries computed in Python with the project's own
   canonical serialisation and hash (audit.chain), loaded with COPY (PostgreSQL) or executemany
   (SQLite); realistic content (offload, consultation, extraction entries with details, motifs,
   recipients, accents). VACUUM ANALYZE afterwards.
3. Baseline (timed): hashlib.sha256(m).hexdigest() for every entry's hashed bytes m (previous hash,
   newline, canonical bytes), from a list in memory, in one Python thread: the least any verifier
   written in Python does per entry. Also reported, for reference: SHA-256 of all the bytes as one
   stream (what `sha256sum` of an export would cost).
4. Ours (timed): audit.verification.verify_chain() — what `manage.py custody verify` and the hourly beat
   task run: guards checked in the catalog, every entry re-hashed from the rows read from the
   database (on PostgreSQL by the C reader audit._chainscan when it is built: COPY binary over its
   own libpq connection, OpenSSL SHA-256), checkpoints checked. Then, for reference, the same with
   the Python reader (psycopg + hashlib), with --full (every entry also rebuilt from its columns),
   and the bare reading of the rows through psycopg without hashing (the Python driver's floor).
   Baseline and ours alternate (--repeat); medians are compared. Target: ours >= 0.5 x baseline.
5. Appends (timed): W writer threads, each with its own database connection, each appending M
   entries with custody_event_append in its own transaction, onto the big log; events/s and latency.
   Baseline: the same threads inserting the same rows into a plain table without lock or hash.

Run from the repository root:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/temoin .venv/bin/python bench/custody.py
    .venv/bin/python bench/custody.py --events 20000 --writers 1,4 --appends 50   # smoke test, SQLite
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TARGET = 0.5


def say(msg: str) -> None:
    print(msg, flush=True)


# --- Setup -------------------------------------------------------------------------------------

def prepare_database(args) -> tuple[str, callable]:
    """Point DATABASE_URL at a fresh benchmark database; return (vendor, cleanup)."""
    url = os.environ.get("DATABASE_URL", "")
    data_dir = Path(tempfile.mkdtemp(prefix="temoin-bench-custody-"))
    os.environ["TEMOIN_DATA_DIR"] = str(data_dir)
    os.environ["TEMOIN_CUSTODY_KEY"] = str(data_dir / "keys" / "custody.pem")
    for name in ("TEMOIN_TSA_URL", "CELERY_TASK_ALWAYS_EAGER", "S3_ENDPOINT_URL"):
        os.environ.pop(name, None)
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urlsplit(url)
        bench_name = f"{parts.path.lstrip('/') or 'temoin'}_custody_bench"
        admin_url = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}"')
            conn.execute(f'CREATE DATABASE "{bench_name}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{bench_name}"))

        def cleanup():
            import shutil

            from django.db import connections

            connections.close_all()
            if not args.keep_db:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                say(f"kept database {bench_name} and {data_dir}")
        return "postgresql", cleanup
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"

    def cleanup():
        import shutil

        if not args.keep_db:
            shutil.rmtree(data_dir, ignore_errors=True)
    return "sqlite", cleanup


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- Generation --------------------------------------------------------------------------------

ACTIONS = [
    ("recording.collected", "system:offload@dock1", "", []),
    ("recording.stored", "system:offload@dock1", "", []),
    ("recording.verified", "system:offload@dock1", "", []),
    ("recording.playback_ready", "system:media", "", []),
    ("recording.consulted", "user:chef.bernard", "Contrôle hiérarchique de l'intervention", []),
    ("recording.extracted", "user:juriste", "Réquisition judiciaire PV 2026/77", ["Tribunal judiciaire de Chambéry"]),
    ("hold.placed", "user:juriste", "Procédure disciplinaire CD-3", []),
    ("recording.erased", "system:retention", "", []),
]


def generate(n: int):
    """Yield (row tuple for the table, hashed message bytes) for n valid chained entries."""
    from audit.chain import GENESIS_HASH, custody_event_canonical

    prev = GENESIS_HASH
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    sha = hashlib.sha256
    for seq in range(1, n + 1):
        action, actor_label, motif, recipients = ACTIONS[seq % len(ACTIONS)]
        occurred_at = t0 + dt.timedelta(seconds=seq * 3, microseconds=seq % 997)
        recording = seq // 8 + 1
        details = {"source_path": f"DCIM/100BWC/CLIP{recording:06d}.MP4", "size": 94_000_000 + seq,
                   "session": seq // 400 + 1, "camera": f"BWC-{seq % 40:04d}", "time_source": "sidecar",
                   "time_attested": True, "wearer": f"M{seq % 97:03d}", "retain_until": "2024-02-01T00:00:00+00:00"}
        canonical = custody_event_canonical(
            seq=seq, occurred_at=occurred_at, organisation_id=1, actor_id=None, actor_label=actor_label,
            action=action, subject_type="evidence.recording", subject_id=str(recording), recording_id=recording,
            motif=motif, recipients=recipients, details=details)
        message = prev.encode() + b"\n" + canonical
        h = sha(message).hexdigest()
        row = (seq, occurred_at, 1, None, actor_label, action, "evidence.recording", str(recording), recording, motif,
               json.dumps(recipients, ensure_ascii=False), json.dumps(details, ensure_ascii=False), prev, h, canonical)
        prev = h
        yield row, message


COLUMNS = ("seq", "occurred_at", "organisation_id", "actor_id", "actor_label", "action", "subject_type", "subject_id",
           "recording_id", "motif", "recipients", "details", "prev_hash", "hash", "canonical")


def load(n: int, vendor: str) -> list[bytes]:
    from django.db import connection, transaction

    from accounts.models import Organisation

    Organisation.objects.create(id=1, slug="bench", name="Police municipale de Banc-d'Essai")
    messages: list[bytes] = []
    t = time.perf_counter()
    if vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with transaction.atomic():
            cur = psycopg.Cursor(connection.connection)
            with cur.copy(f"COPY audit_custodyevent ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row, message in generate(n):
                    copy.write_row(row)
                    messages.append(message)
        with connection.cursor() as c:
            c.execute("VACUUM ANALYZE audit_custodyevent")
    else:
        batch = []
        sql = f"INSERT INTO audit_custodyevent ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        with transaction.atomic(), connection.cursor() as c:
            for row, message in generate(n):
                row = list(row)
                row[1] = row[1].astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
                batch.append(row)
                messages.append(message)
                if len(batch) == 10_000:
                    c.executemany(sql, batch)
                    batch.clear()
            if batch:
                c.executemany(sql, batch)
        with connection.cursor() as c:
            c.execute("ANALYZE")
    say(f"generated and loaded {n} chained entries in {time.perf_counter() - t:.1f} s (not timed)")
    return messages


# --- Timed phases -----------------------------------------------------------------------------------

def baseline(messages: list[bytes]) -> float:
    sha = hashlib.sha256
    t = time.perf_counter()
    for m in messages:
        sha(m).hexdigest()
    return time.perf_counter() - t


def stream_baseline(messages: list[bytes]) -> tuple[float, int]:
    blob = b"".join(messages)
    t = time.perf_counter()
    hashlib.sha256(blob).hexdigest()
    return time.perf_counter() - t, len(blob)


def ours(full: bool | None = None, reader: str = "auto"):
    from audit.verification import verify_chain

    t = time.perf_counter()
    report = verify_chain(full=full, reader=reader)
    elapsed = time.perf_counter() - t
    if not report.ok:
        raise SystemExit(f"verification failed on a valid log: {report.summary()}")
    return elapsed, report


def read_floor(n: int) -> float:
    from django.db import transaction

    from audit.scan import iter_batches

    t = time.perf_counter()
    rows = 0
    with transaction.atomic():
        for batch in iter_batches(1, n):
            rows += len(batch)
    assert rows == n, rows
    return time.perf_counter() - t


def appends(writers: int, per_writer: int, plain: bool) -> tuple[float, list[float]]:
    from django.db import connection, connections, transaction

    from audit.services import custody_event_append

    if plain:
        with connection.cursor() as c:
            c.execute("CREATE TABLE IF NOT EXISTS bench_plain_insert (id integer PRIMARY KEY "
                      + ("GENERATED BY DEFAULT AS IDENTITY" if connection.vendor == "postgresql" else "AUTOINCREMENT")
                      + ", occurred_at timestamp, action varchar(64), details text, hash varchar(64))")
    barrier = threading.Barrier(writers + 1)
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(w: int):
        mine = []
        try:
            barrier.wait()
            for i in range(per_writer):
                t = time.perf_counter()
                details = {"writer": w, "i": i, "motif": "Contrôle hiérarchique de l'intervention"}
                with transaction.atomic():
                    if plain:
                        with connection.cursor() as c:
                            c.execute("INSERT INTO bench_plain_insert (occurred_at, action, details, hash) "
                                      "VALUES (%s, %s, %s, %s)",
                                      [dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), "recording.consulted",
                                       json.dumps(details), "0" * 64])
                    else:
                        custody_event_append(action="recording.consulted", subject_type="evidence.recording",
                                             subject_id=str(i), actor_label=f"user:bench{w}",
                                             motif="Contrôle hiérarchique de l'intervention", details=details)
                mine.append(time.perf_counter() - t)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            with lock:
                latencies.extend(mine)
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"append phase failed: {errors[0]!r}")
    return elapsed, latencies


# --- Report ---------------------------------------------------------------------------------------

def machine_facts(vendor: str) -> dict:
    from django.db import connection

    facts = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
             "load_average_at_start": os.getloadavg()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        facts["memory_gb"] = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    with connection.cursor() as c:
        if vendor == "postgresql":
            c.execute("SHOW server_version")
            facts["database"] = f"PostgreSQL {c.fetchone()[0]}"
            c.execute("SHOW shared_buffers")
            facts["shared_buffers"] = c.fetchone()[0]
            import psycopg

            facts["driver"] = f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__})"
        else:
            import sqlite3

            facts["database"] = f"SQLite {sqlite3.sqlite_version}"
    return facts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the generated log (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="baseline/ours pairs, alternating order (default 3)")
    parser.add_argument("--writers", default="1,2,4,8", help="writer thread counts for the append phase")
    parser.add_argument("--appends", type=int, default=250, help="entries appended by each writer (default 250)")
    parser.add_argument("--no-full", action="store_true", help="skip the --full verification (reference only)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", help="also write every number to this file")
    args = parser.parse_args()

    vendor, cleanup = prepare_database(args)
    try:
        django_setup()
        facts = machine_facts(vendor)
        say("machine: " + json.dumps(facts, ensure_ascii=False))
        messages = load(args.events, vendor)
        n = args.events
        size = sum(len(m) for m in messages)
        say(f"{n} entries, {size / n:.0f} bytes hashed per entry on average\n")

        results = {"facts": facts, "events": n, "bytes_per_entry": size / n, "baseline_s": [], "ours_s": [],
                   "mode": None, "reader": None}
        ours(None)  # warm-up (not counted): caches, the catalog check's temporary table
        for r in range(args.repeat):
            order = ("baseline", "ours") if r % 2 == 0 else ("ours", "baseline")
            for which in order:
                if which == "baseline":
                    results["baseline_s"].append(baseline(messages))
                else:
                    elapsed, report = ours(None)
                    results["ours_s"].append(elapsed)
                    results["mode"], results["reader"] = report.mode, report.reader
        stream_s, stream_bytes = stream_baseline(messages)
        python_reader_s = ours(None, reader="python")[0] if results["reader"] != "Python" else None
        floor_s = read_floor(n)
        full_s = None if args.no_full or results["mode"] == "full" else ours(True)[0]
        del messages

        b = statistics.median(results["baseline_s"])
        o = statistics.median(results["ours_s"])
        ratio = b / o
        results.update(baseline_median_s=b, ours_median_s=o, ratio=ratio, stream_s=stream_s,
                       read_floor_s=floor_s, full_s=full_s, python_reader_s=python_reader_s)
        say("Verification of the whole log")
        say(f"  {'':44} {'time (s)':>10} {'entries/s':>12} {'× baseline':>11}")
        say(f"  {'baseline: hashlib per entry, in memory':44} {b:10.3f} {n / b:12,.0f} {1.0:11.2f}")
        say(f"  {'custody verify (' + results['mode'] + ')':44} {o:10.3f} {n / o:12,.0f} {ratio:11.2f}"
            f"   (reader: {results['reader']})")
        if python_reader_s:
            say(f"  {'custody verify, Python reader (reference)':44} {python_reader_s:10.3f} "
                f"{n / python_reader_s:12,.0f} {b / python_reader_s:11.2f}")
        if full_s:
            say(f"  {'custody verify --full (reference)':44} {full_s:10.3f} {n / full_s:12,.0f} {b / full_s:11.2f}")
        say(f"  {'reading the rows only, no hashing (floor)':44} {floor_s:10.3f} {n / floor_s:12,.0f} "
            f"{b / floor_s:11.2f}")
        say(f"  {'sha256 of all bytes as one stream (ref.)':44} {stream_s:10.3f} {n / stream_s:12,.0f} "
            f"{b / stream_s:11.2f}   ({stream_bytes / stream_s / 1e6:,.0f} MB/s)")
        say(f"  runs: baseline {', '.join(f'{x:.3f}' for x in results['baseline_s'])}; "
            f"ours {', '.join(f'{x:.3f}' for x in results['ours_s'])}")
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        say(f"  target: verification >= {TARGET} x baseline -> {verdict} ({ratio:.2f})\n")

        say(f"Appends onto the {n}-entry log ({args.appends} per writer, each in its own transaction)")
        say(f"  {'writers':>7} {'entries/s':>10} {'mean ms':>8} {'p95 ms':>7} {'plain INSERT/s':>15} {'ours/plain':>10}")
        results["appends"] = []
        for w in [int(x) for x in args.writers.split(",") if x]:
            plain_s, _ = appends(w, args.appends, plain=True)
            ours_s, lat = appends(w, args.appends, plain=False)
            total = w * args.appends
            lat.sort()
            row = {"writers": w, "entries_per_s": total / ours_s, "mean_ms": statistics.mean(lat) * 1000,
                   "p95_ms": lat[int(len(lat) * 0.95) - 1] * 1000, "plain_per_s": total / plain_s}
            results["appends"].append(row)
            say(f"  {w:7d} {row['entries_per_s']:10,.0f} {row['mean_ms']:8.2f} {row['p95_ms']:7.2f} "
                f"{row['plain_per_s']:15,.0f} {row['entries_per_s'] / row['plain_per_s']:10.2f}")
        elapsed, report = ours(None)
        say(f"\nlog after the append phase: {report.summary()}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        return 0 if verdict == "PASS" else 1
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
