"""CSI R241-14: the log is kept three years. The purge signs a checkpoint first, removes only older
entries, and the chain still verifies from that checkpoint."""
from __future__ import annotations

import io

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import guards
from audit.models import Checkpoint, CustodyEvent
from audit.services import custody_checkpoint_create, custody_purge

from .helpers import append, guards_off, raw, verify_cli

pytestmark = pytest.mark.django_db


@pytest.fixture
def aged_log():
    """6 entries older than three years, 2 two years old, 3 of today: #1–#11."""
    now = timezone.now()
    for i in range(5):
        append(1, now=now - relativedelta(years=4) + relativedelta(minutes=i))
    append(1, now=now - relativedelta(years=3, days=1))
    append(2, now=now - relativedelta(years=2))
    append(3, now=now)
    return now


def test_the_purge_removes_only_entries_older_than_three_years_and_the_chain_still_verifies(aged_log):
    result = custody_purge(now=aged_log)

    assert (result.through_seq, result.removed) == (6, 6)
    assert sorted(CustodyEvent.objects.values_list("seq", flat=True)) == list(range(7, 14))
    checkpoint = result.checkpoint
    assert (checkpoint.reason, checkpoint.seq, checkpoint.purge_through_seq) == ("purge", 11, 6)
    assert CustodyEvent.objects.filter(action="custody.purged", details__removed=6).exists()
    code, output = verify_cli()
    assert code == 0, output
    assert "anchored on checkpoint #11 (purge through #6)" in output


def test_the_purge_command_says_what_it_would_remove_then_removes_it(aged_log):
    dry, real = io.StringIO(), io.StringIO()

    call_command("custody", "purge", "--dry-run", stdout=dry)
    assert CustodyEvent.objects.count() == 11 and not Checkpoint.objects.exists()
    call_command("custody", "purge", stdout=real)

    assert "would purge 6 entries up to #6" in dry.getvalue()
    assert "purged 6 entries up to #6" in real.getvalue()


def test_nothing_younger_than_three_years_is_purged(db):
    now = timezone.now()
    append(3, now=now - relativedelta(years=2, months=11))

    result = custody_purge(now=now)

    assert result.through_seq is None and result.removed == 0
    assert CustodyEvent.objects.count() == 3 and not Checkpoint.objects.exists()


def test_a_purge_cannot_be_run_with_a_future_date(aged_log):
    with pytest.raises(ValueError, match="future"):
        custody_purge(now=aged_log + relativedelta(years=5))
    with pytest.raises(CommandError, match="future"):
        call_command("custody", "purge", "--now", "2099-01-01T00:00:00Z", stdout=io.StringIO())

    assert custody_purge(now=aged_log + relativedelta(years=5), dry_run=True).removed == 11
    assert CustodyEvent.objects.count() == 11


def test_the_database_refuses_to_purge_without_a_signed_purge_checkpoint(aged_log):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        guards.purge_through(6)

    assert CustodyEvent.objects.count() == 11


def test_the_database_refuses_to_purge_entries_younger_than_three_years(aged_log):
    # Even with a purge checkpoint covering them (what a compromised application could write).
    custody_checkpoint_create(reason="purge", purge_through_seq=9, force=True)

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        guards.purge_through(9)

    assert CustodyEvent.objects.filter(seq__lte=9).count() == 9


def test_purged_history_without_its_checkpoint_fails_verification(aged_log):
    custody_purge(now=aged_log)
    with guards_off():
        raw("DELETE FROM audit_checkpoint")

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #6: removed" in output and "no signed checkpoint attests their purge" in output


def test_a_second_purge_later_anchors_on_its_own_checkpoint(aged_log):
    custody_purge(now=aged_log)
    later = custody_purge(now=aged_log)  # nothing more is old enough

    assert later.through_seq is None
    assert verify_cli()[0] == 0
