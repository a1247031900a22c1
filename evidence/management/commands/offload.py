import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from evidence.ingest.services import OffloadRefused, offload_item_pull, offload_session_finish, offload_session_start
from evidence.integrations.store import ChunkPool


def _now(fn, *args) -> Future:
    """Run ``fn`` here and now (the one-worker case; an error is raised at once)."""
    future = Future()
    future.set_result(fn(*args))
    return future


class Command(BaseCommand):
    help = ("Offload docked camera volumes: store every clip write-once, verify it, then wipe it from "
            "the camera. Exits 0 only when every clip is verified in the store. Several volumes (cameras "
            "docked at once) are offloaded concurrently.")

    def add_arguments(self, parser):
        parser.add_argument("volumes", nargs="+", metavar="VOLUME")
        parser.add_argument("--dock", default="", help="dock name (for the custody log)")
        parser.add_argument("--slot", default="", help="slot name (one volume only)")
        parser.add_argument("--keep", action="store_true", help="leave every clip on the camera")
        parser.add_argument("--jobs", type=int, default=min(4, (os.cpu_count() or 1) + 1),
                            help="clips pulled at the same time, from one camera or several "
                                 "(default: cores + 1, at most 4)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, volumes, dock, slot, keep, jobs, no_progress, **options):
        bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024,
                   desc="déchargement", file=sys.stderr, disable=no_progress or None)
        lock = threading.Lock()
        refused = []
        # Inside a caller's transaction (a test, a script) other connections would not see the
        # session being opened: every pull then runs here, one after the other.
        jobs = 1 if connection.in_atomic_block else max(1, jobs)
        # Bounded memory: the clips being pulled share one budget for the bytes kept for the
        # byte-for-byte read-back (a larger clip is read back with a second SHA-256 instead).
        keep_up_to = settings.TEMOIN_READBACK_COMPARE_MAX // jobs
        # Chunk buffers reused from clip to clip (no fresh memory, hence no page faults, per byte).
        pool = ChunkPool(settings.TEMOIN_CHUNK_SIZE, limit=settings.TEMOIN_READBACK_COMPARE_MAX)
        remaining: dict[int, int] = {}  # session → clips not yet settled
        finished: dict[int, object] = {}

        def progress(n: int) -> None:
            with lock:
                bar.update(n)

        def pull(session, item) -> None:
            # The clips of one camera are pulled several at a time (issue 19): one clip's store
            # sync, read-back and database work overlap the next one's reading and hashing. The
            # camera is wiped once every clip of its session is settled (offload_session_finish).
            try:
                offload_item_pull(item=item, progress=progress, keep_up_to=keep_up_to, pool=pool)
                with lock:
                    remaining[session.pk] -= 1
                    last = remaining[session.pk] == 0
                if last:
                    finished[session.pk] = offload_session_finish(session=session)
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connection.close()  # each worker thread has its own database connection

        sessions = []
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="offload") as workers:
            run = workers.submit if jobs > 1 else _now
            futures = []
            for volume in volumes:  # each camera's clips are queued as soon as its volume is read
                try:
                    session = offload_session_start(
                        volume=volume, dock_name=dock, slot_name=slot if len(volumes) == 1 else "", keep=keep)
                except OffloadRefused as exc:
                    refused.append((volume, exc))
                    continue
                items = list(session.items.order_by("path"))
                sessions.append(session)
                with lock:
                    remaining[session.pk] = len(items)
                    bar.total += session.bytes_total
                    bar.refresh()
                    self.stdout.write(f"camera {session.camera.serial}: {len(items)} clip(s), "
                                      f"{session.bytes_total / 1e6:.1f} MB (session {session.pk})")
                if not items:
                    finished[session.pk] = offload_session_finish(session=session)
                futures += [run(pull, session, item) for item in items]
            for future in futures:
                future.result()  # an unexpected error stops the command (the clips stay on the camera)
        sessions = [finished.get(s.pk) or s for s in sessions]
        bar.close()
        if refused and len(volumes) == 1:
            raise CommandError(str(refused[0][1]))
        for volume, exc in refused:
            self.stderr.write(f"{volume}: {exc}")
        failed = total = 0
        for session in sessions:
            for item in session.items.order_by("path"):
                total += 1
                failed += not item.safe_to_wipe
                mark = "ok " if item.safe_to_wipe else "ERR"
                where = "wiped" if item.wiped else "kept on camera"
                rec = f"recording {item.recording_id}" if item.recording_id else "no recording"
                note = f" — {item.message}" if item.message else ""
                prefix = f"{session.camera.serial} " if len(sessions) > 1 else ""
                self.stdout.write(f"{mark} {prefix}{item.path}: {item.get_status_display()}, {rec}, {where}{note}")
            for entry in session.report.get("ignored", []):
                self.stdout.write(f"--  {entry['path']}: {entry['reason']}")
        if failed or len(sessions) < len(volumes):
            refused = len(volumes) - len(sessions)
            raise CommandError(f"{failed} clip(s) not verified in the store, they remain on the camera"
                               + (f"; {refused} volume(s) refused" if refused else ""), returncode=2)
        self.stdout.write(self.style.SUCCESS(f"every clip verified in the store ({total})"))
