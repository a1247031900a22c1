#!/usr/bin/env python
"""Export benchmark (issue 6): building a verifiable export package vs zip / cp of the same files.

What it does (see docs/disclosure.md):

1. Setup (not timed): a temporary TEMOIN_DATA_DIR (SQLite, local write-once store, its own signing
   key), the project's migrations, one commune, a legal-staff user, a camera; one real H.264/AAC clip
   encoded with ``evidence.integrations.ffmpeg.synthesize_clip``; N clips made from it, each with a
   different trailing MP4 ``free`` box so that every file has its own SHA-256; offloaded with
   ``manage.py offload`` (media work queued, not run: exports read the originals).
2. Baselines (timed), on the stored originals: ``zip -0`` (stored, no compression, like the
   package) then ``sync`` of the archive; ``cp`` to a directory then ``sync`` of the copies.
3. Ours (timed): ``services.export_create`` + ``services.export_build``: custody events, a signed
   checkpoint, each original streamed from the store into the ZIP while hashed, one PDF custody
   report per recording, manifest + signature, and the ZIP stored write-once (fsync, hashed).
   The page cache is dropped before each timed phase when run as root; the order alternates.

Prints MB/s of each and the ratios ours / zip and ours / cp.

Run from the repository root:  .venv/bin/python bench/export.py [--clips 4 --clip-seconds 20 --repeat 3]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import PageCache  # noqa: E402  (bench/machine.py)



def log(msg: str = "") -> None:
    print(msg, flush=True)


PAGE_CACHE = PageCache(warn=lambda msg: log(msg))


def drop_caches() -> bool:
    return PAGE_CACHE.drop()


def with_free_box(src: Path, dst: Path, tag: str) -> None:
    """A copy of ``src`` with an MP4 ``free`` box appended: still a valid file, its own SHA-256."""
    payload = tag.encode()
    shutil.copyfile(src, dst)
    with open(dst, "ab") as fh:
        fh.write(struct.pack(">I4s", 8 + len(payload), b"free") + payload)


def setup(args, work: Path):
    os.environ["TEMOIN_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    for name in ("DATABASE_URL", "S3_ENDPOINT_URL", "TEMOIN_STORE", "CELERY_TASK_ALWAYS_EAGER"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from accounts.services import organisation_create, user_create
    from devices.services import camera_register
    from evidence.integrations import ffmpeg

    call_command("migrate", verbosity=0)
    with transaction.atomic():
        org = organisation_create(slug="bench-export", name="Bench export")
        officer, _ = user_create(username="agent.bench", organisation=org, role="officer", matricule="M001")
        legal, _ = user_create(username="juriste.bench", organisation=org, role="legal")
        camera_register(serial="BWC-BENCH", organisation=org)

    log(f"encoding one {args.clip_seconds} s {args.height}p clip at {args.bitrate}…")
    base = ffmpeg.synthesize_clip(work / "base.mp4", seconds=args.clip_seconds, width=args.width,
                                  height=args.height, bitrate=args.bitrate, preset="ultrafast")
    volume = work / "volume"
    (volume / "DCIM").mkdir(parents=True)
    (volume / "DEVICE.json").write_text(json.dumps({"serial": "BWC-BENCH", "model": "bench", "firmware": "1"}))
    start = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=6)).replace(microsecond=0)
    for i in range(args.clips):
        with_free_box(base, volume / "DCIM" / f"clip{i:03d}.mp4", f"temoin-bench-export clip {i}")
        began = start + dt.timedelta(minutes=i)
        (volume / "DCIM" / f"clip{i:03d}.json").write_text(json.dumps({
            "started_at": began.isoformat(), "ended_at": (began + dt.timedelta(seconds=args.clip_seconds)).isoformat(),
            "officer": "M001", "trigger_reason": "incident", "subject_notified": True}))
    call_command("offload", str(volume), "--no-progress", stdout=open(os.devnull, "w"))
    return legal


def timed(fn) -> float:
    drop_caches()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--clip-seconds", type=float, default=20)
    parser.add_argument("--bitrate", default="20M")
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", default="", help="where to build (default: a temporary directory)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="temoin-bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        legal = setup(args, work)
        from evidence.disclosure import services
        from evidence.integrations.store import get_store
        from evidence.models import Recording

        store = get_store()
        recordings = list(Recording.objects.filter(status=Recording.Status.STORED).order_by("pk"))
        assert len(recordings) == args.clips, f"{len(recordings)} recordings stored, {args.clips} expected"
        files = []
        for r in recordings:
            with store.local_path(r.store_key) as p:
                files.append(str(p))
        total = sum(r.size for r in recordings)
        log(f"{len(files)} stored originals, {total / 1e6:.1f} MB in all")

        def run_zip():
            out = work / "baseline.zip"
            out.unlink(missing_ok=True)
            subprocess.run(["zip", "-0", "-q", "-j", str(out), *files], check=True)
            subprocess.run(["sync", str(out)], check=True)

        def run_cp():
            dest = work / "cp"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            subprocess.run(["cp", *files, str(dest)], check=True)
            subprocess.run(["sync", *[str(dest / Path(f).name) for f in files]], check=True)

        results = {"zip": [], "cp": [], "ours": []}
        package_sizes = []

        def run_ours():
            # Not patched: export_create queues the build on commit; with no worker it only stays
            # queued in the filesystem broker, and the build is run here, timed.
            export = services.export_create(recordings=recordings, by=legal, purpose="judicial",
                                            recipient="Tribunal judiciaire (bench)", motif="bench/export.py")
            export = services.export_build(export=export)
            assert export.status == "ready", export.status_message
            package_sizes.append(export.size)

        for i in range(args.repeat):
            order = [("zip", run_zip), ("cp", run_cp), ("ours", run_ours)]
            if i % 2:
                order.reverse()
            for name, fn in order:
                seconds = timed(fn)
                results[name].append(seconds)
                log(f"  run {i + 1} {name:5s} {seconds:7.3f} s  {total / 1e6 / seconds:8.1f} MB/s")

        med = {k: statistics.median(v) for k, v in results.items()}
        log()
        log(f"clips: {args.clips} × {args.clip_seconds:g} s {args.height}p at {args.bitrate} = {total / 1e6:.1f} MB;"
            f" package {package_sizes[-1] / 1e6:.1f} MB; page cache dropped: {bool(PAGE_CACHE.all_dropped)}")
        log("| method | median s | MB/s |")
        log("|---|---|---|")
        for k in ("cp", "zip", "ours"):
            log(f"| {k} | {med[k]:.3f} | {total / 1e6 / med[k]:.1f} |")
        log()
        log(f"ratio ours / zip = {med['ours'] / med['zip']:.2f}×   ours / cp = {med['ours'] / med['cp']:.2f}×")
        return 0
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
