import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from evidence.ingest.services import OffloadRefused, offload_item_pull, offload_session_finish, offload_session_start


class Command(BaseCommand):
    help = ("Offload docked camera volumes: store every clip write-once, verify it, then wipe it from "
            "the camera. Exits 0 only when every clip is verified in the store. Several volumes (cameras "
            "docked at once) are offloaded concurrently.")

    def add_arguments(self, parser):
        parser.add_argument("volumes", nargs="+", metavar="VOLUME")
        parser.add_argument("--dock", default="", help="dock name (for the custody log)")
        parser.add_argument("--slot", default="", help="slot name (one volume only)")
        parser.add_argument("--keep", action="store_true", help="leave every clip on the camera")
        parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1),
                            help="cameras offloaded at the same time (default: cores, at most 4)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, volumes, dock, slot, keep, jobs, no_progress, **options):
        bar = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1024,
                   desc="déchargement", file=sys.stderr, disable=no_progress or None)
        lock = threading.Lock()
        refused = []

        def progress(n: int) -> None:
            with lock:
                bar.update(n)

        def offload(volume):
            try:
                try:
                    session = offload_session_start(
                        volume=volume, dock_name=dock, slot_name=slot if len(volumes) == 1 else "", keep=keep)
                except OffloadRefused as exc:
                    refused.append((volume, exc))
                    return None
                with lock:
                    bar.total += session.bytes_total
                    bar.refresh()
                    self.stdout.write(f"camera {session.camera.serial}: {session.items.count()} clip(s), "
                                      f"{session.bytes_total / 1e6:.1f} MB (session {session.pk})")
                for item in session.items.order_by("path"):
                    offload_item_pull(item=item, progress=progress)
                return offload_session_finish(session=session)
            finally:
                if threading.current_thread() is not threading.main_thread():
                    connection.close()  # each worker thread has its own database connection

        if len(volumes) == 1 or jobs <= 1:
            sessions = [s for s in map(offload, volumes) if s is not None]
        else:
            # Each camera starts as soon as a worker is free: no waiting for the others' scans.
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                sessions = [s for s in pool.map(offload, volumes) if s is not None]
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
