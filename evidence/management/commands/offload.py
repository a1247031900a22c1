import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evidence import services


class Command(BaseCommand):
    help = ("Offload one docked camera volume: store every clip write-once, verify it, then wipe it "
            "from the camera. Exits 0 only when every clip is verified in the store.")

    def add_arguments(self, parser):
        parser.add_argument("volume")
        parser.add_argument("--dock", default="", help="dock name (for the custody log)")
        parser.add_argument("--slot", default="")
        parser.add_argument("--keep", action="store_true", help="leave every clip on the camera")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, volume, dock, slot, keep, no_progress, **options):
        try:
            session = services.offload_session_start(volume=volume, dock_name=dock, slot_name=slot, keep=keep)
        except services.OffloadRefused as exc:
            raise CommandError(str(exc)) from exc
        items = list(session.items.order_by("path"))
        self.stdout.write(f"camera {session.camera.serial}: {len(items)} clip(s), "
                          f"{session.bytes_total / 1e6:.1f} MB (session {session.pk})")
        bar = tqdm(total=session.bytes_total, unit="B", unit_scale=True, unit_divisor=1024,
                   desc="déchargement", file=sys.stderr, disable=no_progress or None)
        for item in items:
            bar.set_postfix_str(item.path[-40:], refresh=False)
            services.offload_item_pull(item=item, progress=bar.update)
        bar.close()
        session = services.offload_session_finish(session=session)
        failed = 0
        for item in session.items.order_by("path"):
            mark = "ok " if item.safe_to_wipe else "ERR"
            failed += not item.safe_to_wipe
            where = "wiped" if item.wiped else "kept on camera"
            rec = f"recording {item.recording_id}" if item.recording_id else "no recording"
            note = f" — {item.message}" if item.message else ""
            self.stdout.write(f"{mark} {item.path}: {item.get_status_display()}, {rec}, {where}{note}")
        for entry in session.report.get("ignored", []):
            self.stdout.write(f"--  {entry['path']}: {entry['reason']}")
        if failed:
            raise CommandError(f"{failed} clip(s) not verified in the store; they remain on the camera", returncode=2)
        self.stdout.write(self.style.SUCCESS(f"every clip verified in the store ({len(items)})"))
