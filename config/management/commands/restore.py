"""manage.py restore SRC: into a fresh instance, then verify the custody chain and every recording's hash."""
from django.core.management.base import BaseCommand, CommandError

from config.ops.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = ("Restore a backup made by `manage.py backup` into this instance (DATABASE_URL, TEMOIN_DATA_DIR, "
            "store settings), which must be fresh: empty database, empty store. Checks every file against the "
            "manifest first; ends by verifying the custody chain and the SHA-256 of every recording. "
            "Exit 0 only when both hold. See docs/operations.md.")

    def add_arguments(self, parser):
        parser.add_argument("src", help="backup directory (holds manifest.json)")
        parser.add_argument("--force", action="store_true",
                            help="restore over a database that is not empty (its content is replaced)")
        parser.add_argument("--signing-key", metavar="FILE",
                            help="the private signing key kept apart from the backup (keys volume)")
        parser.add_argument("--database-restored", action="store_true",
                            help="the database was restored already (pg_restore in the database container): "
                                 "restore the key and the store, then verify")

    def handle(self, *args, src, force, signing_key, database_restored, **options):
        try:
            result = backup_restore(src=src, force=force, signing_key=signing_key, database_restored=database_restored,
                                    progress=lambda msg: self.stdout.write(msg))
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        m = result.manifest
        self.stdout.write(f"restored the backup of {m['created_at']}: {result.files_restored} store files, "
                          f"{result.recordings_checked} recordings checked")
        self.stdout.write(result.custody_summary)
        if result.pending_migrations:
            self.stdout.write(f"{result.pending_migrations} migration(s) to apply: run manage.py migrate")
        if result.overdue:
            # CSI R241-13: a backup may hold recordings whose erasure date has passed since.
            self.stdout.write(f"{result.overdue} recording(s) are past their erasure date: the retention sweep "
                              f"erases them at its next run (or now: manage.py retention sweep)")
        if not result.ok:
            for line in result.recordings_bad[:20]:
                self.stderr.write(line)
            raise CommandError("restore finished but the instance does NOT verify: "
                               + ("custody chain broken; " if not result.custody_ok else "")
                               + (f"{len(result.recordings_bad)} recording(s) do not match their SHA-256"
                                  if result.recordings_bad else ""))
        self.stdout.write("restore verified: custody chain intact, every recording matches its SHA-256")
