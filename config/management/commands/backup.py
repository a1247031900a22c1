"""manage.py backup DEST: database, write-once store (or its object list on S3), public key, manifest."""
from django.core.management.base import BaseCommand, CommandError

from config.ops.backup import BackupError, backup_create


class Command(BaseCommand):
    help = ("Back up the database (pg_dump / SQLite online backup), the local write-once store (on S3: the list "
            "of object versions with their SHA-256; the bytes are copied by bucket replication) and the public "
            "signing key into the new directory DEST, with a manifest holding the SHA-256 of every file. "
            "See docs/operations.md.")

    def add_arguments(self, parser):
        parser.add_argument("dest", help="directory to create (must not exist, or be empty)")
        parser.add_argument("--with-private-key", action="store_true",
                            help="also copy the private signing key (a secret: keep such a backup encrypted)")
        parser.add_argument("--database-dump", metavar="FILE",
                            help="PostgreSQL: take this pg_dump --format=custom file (made just before, e.g. in the "
                                 "database container) instead of running pg_dump here")

    def handle(self, *args, dest, with_private_key, database_dump, **options):
        try:
            result = backup_create(dest=dest, include_private_key=with_private_key, database_dump=database_dump,
                                   progress=lambda msg: self.stdout.write(msg))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        m = result.manifest
        self.stdout.write(
            f"backup written to {result.path}: {result.files} files, {result.bytes / 1e6:.1f} MB, "
            f"{m['recordings']} recordings, custody log up to entry {m['custody_head']['seq']}"
            + (f", signing key {m['signing_key_id'][:16]}…" if m["signing_key_id"] else "")
            + ("" if m["private_key_included"] or not m["signing_key_id"]
               else " (private key NOT included: back up the keys volume separately)")
        )
