"""manage.py compliance audit [--json] | report SLUG (ARCHITECTURE.md §6, docs/compliance.md)."""
from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError


class Command(BaseCommand):
    help = ("Check every legal invariant on this deployment (database, object store, custody log): exit 0 when "
            "all hold, 1 naming each violation, 2 when the audit could not look.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{audit,report}")
        audit = sub.add_parser("audit", help="check every invariant now")
        audit.add_argument("--json", action="store_true", help="print the result as JSON")
        audit.add_argument("--no-record", action="store_true",
                           help="do not record the run nor raise alerts (a read-only look)")
        report = sub.add_parser("report", help="write the signed report of the latest audit for one organisation")
        report.add_argument("org", help="organisation slug")
        report.add_argument("--json", dest="json_file", help="write the signed JSON report to this file")
        report.add_argument("--pdf", dest="pdf_file", help="write the PDF report to this file")

    def handle(self, *args, **options):
        if options["action"] == "report":
            return self._report(options["org"], options["json_file"], options["pdf_file"])
        from audit.compliance.invariants import INVARIANTS
        from audit.compliance.services import compliance_audit_run

        try:
            audit = compliance_audit_run(triggered_by="cli", record=not options["no_record"])
        except DatabaseError as exc:
            self.stderr.write(f"compliance audit: could not look: the database: {exc}")
            sys.exit(2)
        if options["json"]:
            rules = {v["rule"] for v in audit.violations}
            self.stdout.write(json.dumps({
                "ok": audit.ok, "checked_at": audit.checked_at.isoformat(), "could_not_look": audit.could_not_look
                or None, "violation_count": audit.violation_count, "violations": audit.violations,
                "rules": [{"id": i.id, "title": i.title, "articles": i.articles,
                           "holds": i.id not in rules and not audit.could_not_look} for i in INVARIANTS],
            }, indent=2, ensure_ascii=False))
        else:
            self._print(audit, INVARIANTS)
        if audit.could_not_look:
            sys.exit(2)
        if not audit.ok:
            raise CommandError(f"{audit.violation_count} violation(s)", returncode=1)

    def _print(self, audit, invariants):
        if audit.could_not_look:
            self.stderr.write(f"compliance audit: could not look: {audit.could_not_look}")
            return
        self.stdout.write(f"compliance audit at {audit.checked_at.isoformat()}: {len(invariants)} rules, "
                          f"{audit.violation_count} violation(s)")
        by_rule: dict[str, list] = {}
        for v in audit.violations:
            by_rule.setdefault(v["rule"], []).append(v)
        for inv in invariants:
            found = by_rule.get(inv.id, [])
            self.stdout.write(f"  {'FAIL' if found else 'ok  '} {inv.id} ({inv.articles})")
            for v in found[:50]:
                org = f" [{v['organisation']}]" if v["organisation"] else ""
                since = f" (depuis {v['since']})" if v["since"] else ""
                self.stdout.write(f"       - {v['subject']}{org}: {v['message']}{since}")
            if len(found) > 50:
                self.stdout.write(f"       … and {len(found) - 50} more")

    def _report(self, slug, json_file, pdf_file):
        from accounts.models import Organisation
        from audit.compliance.pdf import compliance_report_pdf
        from audit.compliance.services import compliance_report
        from audit.models import ComplianceAudit

        org = Organisation.objects.filter(slug=slug).first()
        if org is None:
            raise CommandError(f"no organisation {slug!r}")
        audit = ComplianceAudit.objects.order_by("-started_at", "-id").first()
        if audit is None:
            raise CommandError("no compliance audit yet: run `manage.py compliance audit` first")
        document = compliance_report(audit=audit, organisation=org)
        if json_file:
            with open(json_file, "w", encoding="utf-8") as fh:
                json.dump(document, fh, indent=2, ensure_ascii=False)
            self.stdout.write(f"signed report written to {json_file} (key {document['key_id'][:16]}…)")
        if pdf_file:
            with open(pdf_file, "wb") as fh:
                fh.write(compliance_report_pdf(document))
            self.stdout.write(f"PDF report written to {pdf_file}")
        if not json_file and not pdf_file:
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
