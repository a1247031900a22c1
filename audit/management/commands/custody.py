"""manage.py custody verify | checkpoint | purge | export-key (ARCHITECTURE.md §6)."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from audit import services
from audit.integrations import signing


class Command(BaseCommand):
    help = "Journal de traçabilité: verify the hash chain, sign a checkpoint, purge entries older than " \
           "the retention period (CSI R241-14), print the public key."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{verify,checkpoint,purge,export-key}")
        verify = sub.add_parser("verify", help="recompute the chain; exit 0 if intact, 1 naming the first bad entry")
        verify.add_argument("--full", action="store_true",
                            help="also rebuild every entry from its columns (slower; the default relies on the "
                                 "database's CHECK constraint on PostgreSQL when it is intact)")
        verify.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.add_parser("checkpoint", help="sign the head of the log now (skipped if nothing new)").add_argument(
            "--force", action="store_true", help="sign even if nothing was appended since the last checkpoint")
        purge = sub.add_parser("purge", help="delete entries older than the retention period, after a signed checkpoint")
        purge.add_argument("--now", help="ISO 8601 date-time to compute the cutoff from (default: now)")
        purge.add_argument("--dry-run", action="store_true", help="say what would be purged, change nothing")
        sub.add_parser("export-key", help="print the public key that verifies the signed checkpoints (PEM)")
        export = sub.add_parser("export-log", help="write the log and its signed checkpoints as JSON Lines, for an "
                                                   "independent verifier (docs/custody.md)")
        export.add_argument("file", help="output file ('-' for standard output)")

    def handle(self, *args, **options):
        action = options["action"]
        if action == "verify":
            return self._verify(full=options["full"], as_json=options["json"])
        if action == "checkpoint":
            cp = services.custody_checkpoint_create(reason="manual", force=options["force"])
            if cp is None:
                self.stdout.write("nothing appended since the last checkpoint: none signed")
            else:
                stamp = f", timestamped {cp.tsa_time:%Y-%m-%dT%H:%M:%SZ} by {cp.tsa_url}" if cp.tsa_time else ""
                self.stdout.write(f"checkpoint #{cp.seq} signed (hash {cp.head_hash}, {cp.count} entries, key "
                                  f"{cp.key_id[:16]}…{stamp}); stored as {cp.store_key}")
            return
        if action == "purge":
            now = None
            if options["now"]:
                now = parse_datetime(options["now"])
                if now is None or now.tzinfo is None:
                    raise CommandError("--now expects an ISO 8601 date-time with an offset, e.g. 2029-12-01T00:00:00Z")
            try:
                result = services.custody_purge(now=now, dry_run=options["dry_run"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if result.through_seq is None:
                self.stdout.write(f"nothing older than {result.cutoff:%Y-%m-%d %H:%M} UTC to purge")
            elif result.dry_run:
                self.stdout.write(f"would purge {result.removed} entries up to #{result.through_seq} (older than "
                                  f"{result.cutoff:%Y-%m-%d %H:%M} UTC), after a signed checkpoint")
            else:
                self.stdout.write(f"purged {result.removed} entries up to #{result.through_seq} (older than "
                                  f"{result.cutoff:%Y-%m-%d %H:%M} UTC); the chain now starts from checkpoint "
                                  f"#{result.checkpoint.seq} ({result.checkpoint.store_key})")
            return
        if action == "export-log":
            return self._export(options["file"])
        if action == "export-key":
            key = signing.private_key(create=True).public_key()
            self.stdout.write(signing.public_key_pem(key).rstrip())
            self.stdout.write(f"# Ed25519, SHA-256 fingerprint of the raw key: {signing.key_id(key)}")
            return

    def _export(self, path: str):
        import base64
        import sys

        from django.db import transaction

        from audit.models import Checkpoint, CustodyEvent
        from audit.services import checkpoint_document

        out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")
        n = 0
        try:
            with transaction.atomic():
                key = signing.public_key()
                out.write(json.dumps({"format": "temoin-custody-export/1",
                                      "public_key_pem": signing.public_key_pem(key) if key else None}) + "\n")
                for cp in Checkpoint.objects.order_by("seq", "id"):
                    out.write(json.dumps({"type": "checkpoint", **checkpoint_document(cp)}, ensure_ascii=False) + "\n")
                rows = CustodyEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash", "canonical")
                for seq, prev_hash, hash_, canonical in rows.iterator(chunk_size=5000):
                    line = {"type": "entry", "seq": seq, "prev_hash": prev_hash, "hash": hash_}
                    if canonical is None:
                        line["canonical"] = None  # entry from before issue 3: verify it with `custody verify`
                    else:
                        line["canonical_b64"] = base64.b64encode(bytes(canonical)).decode()
                    out.write(json.dumps(line) + "\n")
                    n += 1
        finally:
            if out is not sys.stdout:
                out.close()
        if path != "-":
            self.stdout.write(f"exported {n} entries to {path}")

    def _verify(self, *, full: bool, as_json: bool):
        report, _ = services.custody_verify(full=True if full else None, triggered_by="cli")
        if as_json:
            self.stdout.write(json.dumps({
                "ok": report.ok, "mode": report.mode, "reader": report.reader, "entries": report.events,
                "first_seq": report.first_seq, "last_seq": report.last_seq, "head_hash": report.head_hash,
                "anchor": report.anchor, "checkpoints_verified": report.checkpoints_verified,
                "problems": [p.as_dict() for p in report.problems],
            }, indent=2))
        else:
            self.stdout.write(report.summary())
            for problem in report.problems[1:]:
                self.stdout.write(f"  also: {problem}")
        if not report.ok:
            first = report.first_problem
            where = f"#{first.seq}" if first.seq is not None else "-"
            raise CommandError(f"first bad entry {where}: {first.kind}: {first.message}", returncode=1)
