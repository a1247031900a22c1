from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.services import organisation_create


class Command(BaseCommand):
    help = "Create an organisation (a police service, the data controller's perimeter)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--retention", default="P1M", help="ISO 8601 duration; CSI R241-13: P1M")

    def handle(self, *args, slug, name, retention, **options):
        try:
            org = organisation_create(slug=slug, name=name, retention=retention)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(f"organisation {slug!r} already exists") from exc
        self.stdout.write(f"organisation {org.slug} created (retention {org.retention})")
