"""LEGAL.md rule 6 (CSI R241-13): a training package is an anonymous copy; it lives under its own
retention rule (TEMOIN_TRAINING_RETENTION), apart from the recordings it came from, and the sweep
erases it, logged, when that rule ends. The compliance audit holds both ways."""
from __future__ import annotations

import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from audit.compliance.services import compliance_check
from audit.models import CustodyEvent
from evidence.disclosure import services
from evidence.disclosure.models import Export
from evidence.models import Recording
from evidence.retention.sweep import retention_sweep

from .helpers import approved_copy, redaction_ready

pytestmark = pytest.mark.django_db(transaction=True)


def _violations(now, export):
    found, _ctx = compliance_check(now=now)
    return [v for v in found if v.subject == f"export {export.pk}"]


def test_a_training_package_outlives_its_recording_then_goes_at_its_own_end(recordings, users, local_store,
                                                                          settings, time_machine):
    if not redaction_ready():
        pytest.fail("evidence.redaction.services is missing: training packages cannot be made")
    settings.TEMOIN_TRAINING_RETENTION = "P2Y"
    rec = recordings[0]
    approved_copy(rec, "all", users["legal"])
    made_at = timezone.now()
    training = services.export_create(recordings=[rec], by=users["legal"], purpose="training", redaction="all",
                                      recipient="Centre de formation", motif="Module gestes professionnels")
    judicial = services.export_create(recordings=[rec], by=users["legal"], purpose="judicial",
                                      recipient="Parquet de Chambéry", motif="Réquisition PV 31")
    training.refresh_from_db()
    judicial.refresh_from_db()
    assert (training.status, judicial.status) == (Export.Status.READY, Export.Status.READY)
    assert made_at + relativedelta(years=2) <= training.retain_until <= timezone.now() + relativedelta(years=2)
    assert judicial.retain_until <= rec.retain_until < training.retain_until

    # The recording's month ends: it goes, and the judicial package with it; the training one stays.
    time_machine.move_to(rec.retain_until + dt.timedelta(minutes=1))
    report = retention_sweep()
    training.refresh_from_db()
    judicial.refresh_from_db()
    assert rec.pk in report.erased and report.exports_erased == [judicial.pk]
    assert Recording.objects.get(pk=rec.pk).status == Recording.Status.ERASED
    assert judicial.status == Export.Status.ERASED and not local_store.exists(judicial.store_key)
    assert training.status == Export.Status.READY and local_store.exists(training.store_key)
    assert _violations(timezone.now(), training) == []  # kept lawfully, and its object is owned

    # Past its own end without a sweep, the audit says so; the sweep erases it, logged.
    later = training.retain_until + dt.timedelta(days=2)
    assert [v.rule for v in _violations(later, training)] == ["retention.not_overdue"]
    time_machine.move_to(training.retain_until + dt.timedelta(minutes=1))
    report = retention_sweep()
    training.refresh_from_db()
    assert report.exports_erased == [training.pk]
    assert training.status == Export.Status.ERASED and not local_store.exists(training.store_key)
    erased = CustodyEvent.objects.get(action="export.erased", subject_type="disclosure.export",
                                      subject_id=str(training.pk))
    assert erased.details["reason"] == "training_retention_ended"
    assert _violations(later, training) == []
