import logging
import os
import signal
import time
from pathlib import Path

from django.core.management.base import BaseCommand

from devices.models import OffloadItem
from devices.sources.mass_storage import DEVICE_FILE
from evidence.dispatch import offload_items_enqueue
from evidence.ingest.docking import docking_decide
from evidence.ingest.services import OffloadRefused, offload_session_finish, offload_session_start

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
        decision = docking_decide(dock=dock, slot=slot, identity=identity, again=again)
        if decision.verdict == "wait":
            return False
        if decision.verdict == "done":
            return True
        docking = decision.name
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
        offload_items_enqueue(item_ids=items, dock=dock)
        return True
