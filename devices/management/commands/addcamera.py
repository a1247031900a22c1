from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.models import Organisation, User
from devices.services import camera_assign, camera_register


class Command(BaseCommand):
    help = "Register a camera to an organisation, optionally issuing it to an officer."

    def add_arguments(self, parser):
        parser.add_argument("serial")
        parser.add_argument("--org", required=True)
        parser.add_argument("--officer", default="", help="matricule of the officer it is issued to")
        parser.add_argument("--model", default="")
        parser.add_argument("--firmware", default="")

    def handle(self, *args, serial, org, officer, model, firmware="", **options):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None:
            raise CommandError(f"no organisation {org!r}")
        wearer = None
        if officer:
            wearer = User.objects.filter(organisation=organisation, matricule=officer).first()
            if wearer is None:
                raise CommandError(f"no officer with matricule {officer!r} in {org}")
        try:
            camera = camera_register(serial=serial, organisation=organisation, model=model, firmware=firmware)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(f"camera {serial!r} is already registered in {org}") from exc
        if wearer:
            camera_assign(camera=camera, officer=wearer)
        self.stdout.write(f"camera {camera.serial} registered in {org}" + (f", issued to {officer}" if wearer else ""))
