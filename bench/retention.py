#!/usr/bin/env python
"""Benchmark of the retention sweep (issue 5): erase N expired recordings on the local store.

Baseline, measured in the same run: the bare filesystem deletion (os.unlink) of the same number
of files laid out the same way (each recording's original, playback copy and poster, plus the
store's retention metadata for each). Ours: `evidence.retention.sweep.retention_sweep`, which for each
recording locks the row, re-checks holds, lets the store check every object's retention and legal
hold before unlinking it, writes the tombstone and the custody event.

    .venv/bin/python bench/retention.py                    # 100,000 recordings, SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_retention .venv/bin/python bench/retention.py

Generation is not timed: rows are bulk-inserted and the store's files written directly in its
layout (the offload path would take hours for 100,000 recordings).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from machine import cpu_model  # noqa: E402  (bench/machine.py)


def log(msg: str) -> None:
    print(msg, flush=True)


def drop_caches() -> bool:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def write_tree(root: Path, keys: list[str], retain_until: str, payload: bytes) -> int:
    """The local store's layout: objects/<key> (read-only) and meta/<key>.json."""
    files = 0
    made = set()
    meta_json = json.dumps({"retain_until": retain_until, "legal_hold": False, "size": len(payload)})
    for key in keys:
        obj, meta = root / "objects" / key, root / "meta" / f"{key}.json"
        for d in (obj.parent, meta.parent):
            if d not in made:
                d.mkdir(parents=True, exist_ok=True)
                made.add(d)
        obj.write_bytes(payload)
        os.chmod(obj, 0o440)
        meta.write_text(meta_json)
        files += 2
    return files


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=100_000)
    ap.add_argument("--object-bytes", type=int, default=4096, help="size of each stored object")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="temoin-bench-retention-", dir="/tmp"))
    os.environ["TEMOIN_DATA_DIR"] = str(workdir / "data")
    os.environ["TEMOIN_STORE_ROOT"] = str(workdir / "store")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["TEMOIN_LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.services import organisation_create, user_create
    from audit.models import CustodyEvent
    from devices.services import camera_register
    from evidence.retention.sweep import retention_sweep
    from evidence.integrations.store import reset_store
    from evidence.models import Recording

    if connection.vendor == "postgresql":
        # A dedicated database: start from an empty schema.
        with connection.cursor() as c:
            c.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)
    reset_store()
    n = args.recordings
    log(f"workdir {workdir}; database {connection.vendor}; {n} recordings × 3 objects")

    # --- Generation (not timed) ---------------------------------------------------------------
    t0 = time.perf_counter()
    with transaction.atomic():
        org = organisation_create(slug="bench", name="Bench")
        officer, _ = user_create(username="officer", organisation=org, role="officer", matricule="B1")
        camera = camera_register(serial="BENCH-1", organisation=org)
    recorded = dt.datetime(2025, 1, 10, 10, 0, tzinfo=dt.timezone.utc)
    retain_until = dt.datetime(2025, 2, 11, 0, 0, tzinfo=dt.timezone.utc)
    rows, keys = [], []
    for i in range(n):
        base = f"bench/BENCH-1/{i:08d}"
        k = (f"originals/{base}.mp4", f"playback/{base}.mp4", f"posters/{base}.jpg")
        keys.extend(k)
        rows.append(Recording(
            organisation=org, camera=camera, wearer=officer, source_path=f"DCIM/{i:08d}.MP4", source_size=4096,
            source_mtime_ns=i, started_at=recorded, ended_at=recorded + dt.timedelta(seconds=30), duration=30.0,
            sha256=f"{i:064x}", size=args.object_bytes, store_key=k[0], playback_key=k[1], poster_key=k[2],
            status=Recording.Status.READY, retain_until=retain_until, ingested_at=recorded, verified_at=recorded,
            trigger_reason="incident", subject_notified=True, location=[45.56, 5.91],
        ))
    for i in range(0, n, 5000):
        Recording.objects.bulk_create(rows[i:i + 5000])
    payload = os.urandom(args.object_bytes)
    files_ours = write_tree(workdir / "store", keys, retain_until.isoformat(), payload)
    files_bare = write_tree(workdir / "bare", keys, retain_until.isoformat(), payload)
    bare_paths = [p for key in keys for p in (workdir / "bare" / "objects" / key, workdir / "bare" / "meta" / f"{key}.json")]
    log(f"generated in {time.perf_counter() - t0:.0f} s: {files_ours} files for ours, {files_bare} for the baseline")

    # --- Baseline: bare deletion of the same files --------------------------------------------
    cache = drop_caches()
    t0 = time.perf_counter()
    for p in bare_paths:
        os.unlink(p)
    bare_s = time.perf_counter() - t0

    # --- Ours: the sweep ----------------------------------------------------------------------
    drop_caches()
    events_before = CustodyEvent.objects.count()
    t0 = time.perf_counter()
    report = retention_sweep(now=dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc), batch_size=args.batch_size)
    ours_s = time.perf_counter() - t0

    erased = Recording.objects.filter(status=Recording.Status.ERASED).count()
    events = CustodyEvent.objects.count() - events_before
    left = sum(1 for _ in (workdir / "store" / "objects").rglob("*") if _.is_file())
    ok = erased == n == len(report.erased) == events and left == 0
    bare_rate, ours_rate = n / bare_s, n / ours_s
    ratio = ours_rate / bare_rate
    cpu = cpu_model()
    log("")
    log("## Retention sweep (issue 5)")
    log("")
    log(f"    {' '.join([Path(sys.executable).name, *sys.argv])}")
    log("")
    log(f"- machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, database {connection.vendor}, "
        f"page cache dropped before each phase: {'yes' if cache else 'no'}")
    log(f"- {n} expired recordings, 3 objects each ({args.object_bytes} B) + retention metadata: "
        f"{files_bare} files; batch size {args.batch_size}")
    log("")
    log("| | seconds | recordings/s |")
    log("|---|---|---|")
    log(f"| baseline: os.unlink of the same {files_bare} files | {bare_s:.1f} | {bare_rate:,.0f} |")
    log(f"| ours: retention_sweep (locks, hold checks, store checks, tombstones, custody events) | {ours_s:.1f} | {ours_rate:,.0f} |")
    log("")
    log(f"**ours / bare deletion speed: {ratio:.2f}× → {'PASS' if ratio >= 0.5 else 'FAIL'} (target ≥ 0.5×)**; "
        f"check: {erased} erased, {events} erasure events, {left} files left → {'OK' if ok else 'MISMATCH'}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
