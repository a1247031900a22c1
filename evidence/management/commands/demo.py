"""Demo data for the embedded default: one commune, its users, cameras and a simulated dock."""
import base64
import datetime as dt
import json
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Organisation, User
from accounts.second_factor import SECOND_FACTOR_ROLES
from accounts.services import organisation_create, user_create
from devices.models import Camera
from devices.services import camera_assign, camera_register
from evidence.ingest.services import offload_item_pull, offload_session_finish, offload_session_start
from evidence.integrations import ffmpeg
from evidence.models import Recording

DEMO_PASSWORD = "demo-temoin-2026"
USERS = [
    # username, role, matricule, first name, last name
    ("agent.martin", "officer", "M042", "Julie", "Martin"),
    ("agent.durand", "officer", "M043", "Karim", "Durand"),
    ("chef.bernard", "supervisor", "S001", "Anne", "Bernard"),
    ("juriste.petit", "legal", "", "Paul", "Petit"),
    ("dpo.moreau", "dpo", "", "Claire", "Moreau"),
    ("maire", "mayor", "", "Michel", "Dantin"),
    ("admin", "admin", "", "Admin", "Technique"),
]
# The demo's TOTP key is public (documented in the README) so that anyone can try the second factor;
# a real deployment enrols each person's own authenticator on first login.
DEMO_TOTP_KEY = b"temoin-demo-2fa-2026"  # 20 bytes: a base32 key without padding
CAMERAS = [("BWC-0042", "M042"), ("BWC-0043", "M043"), ("BWC-0044", "M042")]


class Command(BaseCommand):
    help = "Create the demo commune, users and cameras, offload one camera and dock two more (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--dock-root", default=str(settings.DATA_DIR / "dock"))
        parser.add_argument("--code", action="store_true",
                            help="print the current second-factor code of the demo accounts (public demo key) and exit")

    def handle(self, *args, dock_root, code=False, **options):
        if code:
            from django_otp.oath import totp

            self.stdout.write(str(totp(DEMO_TOTP_KEY, step=30, t0=0, digits=6)).zfill(6))
            return
        org = Organisation.objects.filter(slug="chambery").first()
        if org is not None and Recording.objects.filter(organisation=org).exists():
            self.stdout.write("demo data already present")
            self._print_logins()
            return
        now = timezone.now()
        with transaction.atomic():
            org = org or organisation_create(slug="chambery", name="Police municipale de Chambéry")
            users = {}
            for username, role, matricule, first, last in USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    user, _ = user_create(username=username, organisation=org, role=role, matricule=matricule,
                                          password=DEMO_PASSWORD, first_name=first, last_name=last)
                users[matricule or username] = user
                if role in SECOND_FACTOR_ROLES and not TOTPDevice.objects.filter(user=user).exists():
                    TOTPDevice.objects.create(user=user, name="Démo", key=DEMO_TOTP_KEY.hex(), confirmed=True)
            for serial, matricule in CAMERAS:
                if not Camera.objects.filter(serial=serial).exists():
                    cam = camera_register(serial=serial, organisation=org, model="Caméra-piéton démo")
                    camera_assign(camera=cam, officer=users[matricule], starts_at=now - dt.timedelta(days=60))

        clips = self._clips(settings.DATA_DIR / "demo-clips")
        staging = settings.DATA_DIR / "demo-volumes"
        shutil.rmtree(staging, ignore_errors=True)
        base = now - dt.timedelta(hours=20)
        plans = {
            "BWC-0042": [("incident", True, "PM-2026-0311"), ("risk_of_incident", False, ""), (None, None, "")],
            "BWC-0043": [("incident", True, "PM-2026-0312"), ("risk_of_incident", True, "")],
            "BWC-0044": [(None, None, ""), ("incident", False, "PM-2026-0313")],
        }
        volumes = {}
        for i, (serial, plan) in enumerate(plans.items()):
            vol = staging / serial
            (vol / "DCIM" / "100BWC").mkdir(parents=True)
            (vol / "DEVICE.json").write_text(json.dumps({"serial": serial, "model": "Caméra-piéton démo", "firmware": "2.4.1"}))
            for j, (reason, notified, intervention) in enumerate(plan):
                start = base + dt.timedelta(hours=i * 3 + j, minutes=7 * j)
                stem = vol / "DCIM" / "100BWC" / f"VID_{start:%Y%m%d_%H%M%S}"
                kind = "mjpeg" if (serial, j) == ("BWC-0042", 2) else "h264"
                shutil.copyfile(clips[f"{kind}-{i}-{j}"], stem.with_suffix(".AVI" if kind == "mjpeg" else ".MP4"))
                sidecar = {"started_at": start.isoformat(), "trigger_source": "bouton",
                           "location": [45.5646 + 0.003 * j, 5.9178 - 0.002 * i]}
                if reason:
                    sidecar.update(trigger_reason=reason, subject_notified=notified, purpose="evidence")
                if notified is False:
                    sidecar["notice_omitted_reason"] = "personne en fuite" if j % 2 else ""
                if intervention:
                    sidecar["intervention"] = intervention
                stem.with_suffix(".json").write_text(json.dumps(sidecar))
            volumes[serial] = vol

        # The first camera was docked earlier: offload it now so that the first page shows recordings.
        session = offload_session_start(volume=volumes["BWC-0042"], dock_name="demo", slot_name="slot-0")
        for item in session.items.all():
            offload_item_pull(item=item)
        offload_session_finish(session=session)
        self.stdout.write(f"offloaded {session.items.count()} clip(s) from BWC-0042")
        # The two others are docked now: dockd (started by `make run`) offloads them.
        dock = Path(dock_root)
        dock.mkdir(parents=True, exist_ok=True)
        for n, serial in enumerate(["BWC-0043", "BWC-0044"], start=1):
            target = dock / f"slot-{n}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(str(volumes[serial]), target)
        shutil.rmtree(staging, ignore_errors=True)
        self.stdout.write(f"docked BWC-0043 and BWC-0044 in {dock}")
        self._print_logins()

    def _clips(self, cache: Path) -> dict[str, Path]:
        """Distinct clips (a camera never records the same bytes twice), cached between runs."""
        cache.mkdir(parents=True, exist_ok=True)
        made = {}
        for i in range(3):
            for j in range(3):
                for kind in ("h264", "mjpeg") if (i, j) == (0, 2) else ("h264",):
                    path = cache / f"{kind}-{i}-{j}.{'avi' if kind == 'mjpeg' else 'mp4'}"
                    if not path.exists():
                        self.stdout.write(f"generating demo clip {path.name} with ffmpeg…")
                        ffmpeg.synthesize_clip(path, seconds=6 + 2 * j + i, width=854 if kind == "h264" else 640,
                                               height=480 if kind == "h264" else 360, codec=kind)
                    made[f"{kind}-{i}-{j}"] = path
        return made

    def _print_logins(self):
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for username, role, matricule, *_ in USERS:
            self.stdout.write(f"  {username:<15} {role}")
        secret = base64.b32encode(DEMO_TOTP_KEY).decode()
        self.stdout.write(f"Second factor (supervisor, legal, dpo, mayor, admin): TOTP key {secret}, "
                          "or `python manage.py demo --code` prints the current code.")
