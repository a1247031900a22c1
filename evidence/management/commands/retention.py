import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Organisation
from evidence.retention import RetentionRefused
from evidence.retention.policy import organisation_set_retention
from evidence.retention.sweep import recordings_due_for_erasure, retention_sweep
from evidence.models import Recording


class Command(BaseCommand):
    help = ("Retention (CSI L241-2, R241-13): `sweep` erases every recording whose retention ended and "
            "that no hold covers; `upcoming` lists what will be erased soon; `policy` shows or sets an "
            "organisation's retention period.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sweep = sub.add_parser("sweep", help="erase what is due")
        sweep.add_argument("--now", help="ISO 8601 time to sweep at (not later than the real clock)")
        sweep.add_argument("--dry-run", action="store_true", help="list what would be erased, erase nothing")
        upcoming = sub.add_parser("upcoming", help="list what will be erased in the next hours")
        upcoming.add_argument("--hours", type=int, default=72)
        policy = sub.add_parser("policy", help="show or change an organisation's retention period")
        policy.add_argument("org")
        policy.add_argument("--set", dest="period", help="ISO 8601 duration, e.g. P1M (France), P31D, P90D")
        policy.add_argument("--basis", default="", help="legal basis text shown next to retention ends")

    def handle(self, *args, action, **o):
        return getattr(self, f"_{action}")(**o)

    def _parse_now(self, value):
        if not value:
            return timezone.now()
        now = parse_datetime(value)
        if now is None or now.tzinfo is None:
            raise CommandError("--now needs an ISO 8601 time with its offset, e.g. 2026-03-01T00:00:00+01:00")
        if now > timezone.now() + dt.timedelta(minutes=5):
            raise CommandError("--now cannot be in the future: nothing is erased before its retention end")
        return now

    def _line(self, rec: Recording, note: str = "") -> str:
        tags = " [à compléter]" if rec.to_complete else ""
        return (f"  #{rec.pk} {rec.camera.serial} {rec.started_at:%d/%m/%Y %H:%M} "
                f"wearer={getattr(rec.wearer, 'matricule', '') or '—'} until {rec.retain_until:%d/%m/%Y %H:%M}{tags}{note}")

    def _sweep(self, now=None, dry_run=False, **_):
        now = self._parse_now(now)
        report = retention_sweep(now=now, dry_run=dry_run)
        recs = {r.pk: r for r in Recording.objects.filter(pk__in=report.due).select_related("camera", "wearer")}
        verb = "would erase" if dry_run else "erased"
        todo = [pk for pk in report.due if pk not in report.held] if dry_run else report.erased
        self.stdout.write(f"retention sweep at {now.isoformat()}: {verb} {len(todo)}, "
                          f"held {len(report.held)}, refused {len(report.refused)}"
                          + (f", export packages erased {len(report.exports_erased)}" if report.exports_erased else "")
                          + (f", interrupted collections settled {len(report.settled)}" if report.settled else ""))
        for pk in todo:
            self.stdout.write(self._line(recs[pk]))
        for pk in report.held:
            self.stdout.write(self._line(recs[pk], " — conservé pour procédure"))
        for pk, why in report.refused:
            self.stdout.write(f"  #{pk} refused: {why}")

    def _upcoming(self, hours=72, **_):
        now = timezone.now()
        for rec in recordings_due_for_erasure(now=now + dt.timedelta(hours=hours)).select_related(
                "camera", "wearer").order_by("retain_until"):
            self.stdout.write(self._line(rec))

    def _policy(self, org, period=None, basis="", **_):
        organisation = Organisation.objects.filter(slug=org).first()
        if organisation is None:
            raise CommandError(f"no organisation {org!r}")
        if period:
            try:
                moved = organisation_set_retention(organisation=organisation, retention=period, basis=basis)
            except (ValueError, RetentionRefused) as exc:
                raise CommandError(str(exc)) from exc
            organisation.refresh_from_db()
            self.stdout.write(f"retention of {org} set to {period}; {moved} recording(s) kept longer")
        self.stdout.write(f"{organisation.slug}: {organisation.retention} — {organisation.retention_basis}")
