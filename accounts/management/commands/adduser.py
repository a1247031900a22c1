from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.models import Organisation, Role
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create a user with a role in an organisation; prints the API token on the last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--org", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--matricule", default="")
        parser.add_argument("--password", default=None)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")

    def handle(self, *args, **o):
        org = Organisation.objects.filter(slug=o["org"]).first()
        if org is None:
            raise CommandError(f"no organisation {o['org']!r}; create it with: manage.py addorg")
        try:
            user, token = user_create(
                username=o["username"], organisation=org, role=o["role"], matricule=o["matricule"],
                password=o["password"], first_name=o["first_name"], last_name=o["last_name"],
            )
        except IntegrityError as exc:
            raise CommandError(f"user {o['username']!r} or matricule {o['matricule']!r} already exists") from exc
        self.stdout.write(f"user {user.username} created in {org.slug} as {user.role}")
        self.stdout.write(token)
