import logging
import os
import signal
import time
from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from devices.models import OffloadItem, OffloadSession
from devices.sources.mass_storage import DEVICE_FILE
from evidence.ingest.services import OffloadRefused, offload_session_finish, offload_session_start
from evidence.ingest.tasks import pull_clip

log = logging.getLogger("temoin.dockd")


class Command(BaseCommand):
    help = ("Watch ROOT/<slot>/ and offload each docked camera once per docking. Clip pulls are queued "
            "on this dock's own Celery queue (dock.<name>); run a worker with -Q dock.<name> on this host.")

    def add_arguments(self, parser):
        parser.add_argument("root")
        parser.add_argument("--dock", default=os.environ.get("TEMOIN_DOCK_NAME", "local"))
        parser.add_argument("--interval", type=float, default=2.0)
        parser.add_argument("--once", action="store_true", help="scan once and exit")

    def handle(self, *args, root, dock, interval, once, **options):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        docked: dict[str, tuple] = {}  # slot → identity of the docked camera (serial file inode, mtime)
        undocked: set[str] = set()  # slots seen empty since dockd started: a camera there is docked again
        stop = False

        def _stop(*_):
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        self.stdout.write(f"dockd watching {root.resolve()} as dock {dock} (queue dock.{dock})")
        while not stop:
            present = {}
            for slot in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
                try:
                    st = os.lstat(slot / DEVICE_FILE)
                except FileNotFoundError:
                    continue
                present[slot.name] = (st.st_ino, st.st_mtime_ns)
            for name in list(docked):
                if name not in present:
                    self.stdout.write(f"slot {name}: camera undocked")
                    del docked[name]
                    undocked.add(name)
            for name, identity in present.items():
                if docked.get(name) == identity:
                    continue
                docked[name] = identity
                if not self._offload(root / name, dock, name, identity, again=name in undocked):
                    del docked[name]  # its previous session is still running: look again at the next scan
                else:
                    undocked.discard(name)
            if once:
                break
            time.sleep(interval)

    def _offload(self, volume: Path, dock: str, slot: str, identity: tuple, again: bool = False) -> bool:
        """Start the offload of a docked camera; False when it must wait for its previous session."""
        from django.utils import timezone

        docking = f"{dock}/{slot}/{identity[0]}/{identity[1]}"
        from django.db.models import Q

        previous = OffloadSession.objects.filter(Q(docking=docking) | Q(docking__startswith=f"{docking}@"))
        if again:
            # Unplugged and docked again (a camera's files keep their inode and time): a new docking,
            # so that the clips it still holds are offloaded — once its previous session settled.
            if previous.filter(status=OffloadSession.Status.RUNNING).exists():
                return False
            docking = f"{docking}@{timezone.now():%Y%m%dT%H%M%S.%f}"
        elif previous.exists():
            return True  # already offloaded (dockd restarted while the camera stayed docked)
        try:
            session = offload_session_start(volume=volume, dock_name=dock, slot_name=slot, docking=docking)
        except OffloadRefused as exc:
            self.stderr.write(f"slot {slot}: {exc}")
            return True
        items = list(session.items.filter(status=OffloadItem.Status.PENDING).values_list("pk", flat=True))
        self.stdout.write(f"slot {slot}: camera {session.camera.serial} docked, {len(items)} clip(s) queued "
                          f"(session {session.pk})")
        if not items:
            offload_session_finish(session=session)
            return True
        queue = f"dock.{dock}"

        def _queue():
            for pk in items:
                pull_clip.apply_async(args=[pk], queue=queue)

        transaction.on_commit(_queue)
        return True
