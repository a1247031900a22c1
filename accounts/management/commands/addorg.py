from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.services import organisation_create


class Command(BaseCommand):
    help = "Create an organisation (a police service, the data controller's perimeter)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("name")
        parser.add_argument("--retention", default="P1M", help="ISO 8601 duration; CSI R241-13: P1M")
        parser.add_argument("--jurisdiction", choices=["fr", "custom"], default="",
                            help="fr: French law, one month (the default with P1M); custom: another legal "
                                 "framework, the default with any other period")
        parser.add_argument("--basis", default="", help="the legal text the period rests on (custom jurisdiction)")

    def handle(self, *args, slug, name, retention, jurisdiction, basis, **options):
        from evidence.retention import RetentionRefused

        try:
            org = organisation_create(slug=slug, name=name, retention=retention, jurisdiction=jurisdiction,
                                      basis=basis)
        except (ValueError, RetentionRefused) as exc:
            raise CommandError(str(exc)) from exc
        except IntegrityError as exc:
            raise CommandError(f"organisation {slug!r} already exists") from exc
        law = "French law" if org.jurisdiction == "fr" else f"declared: {org.retention_basis}"
        self.stdout.write(f"organisation {org.slug} created (retention {org.retention}, {law})")
