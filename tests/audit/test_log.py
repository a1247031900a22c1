"""The custody log: what an entry records, how it chains, and that the database keeps it append-only."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import IntegrityError, connection, transaction

from audit.chain import (
    GENESIS_HASH,
    custody_event_canonical,
    custody_event_hash,
)
from audit.models import CustodyEvent
from audit.services import custody_event_append
from audit.verification import verify_chain

from ..conftest import require_service

from .helpers import (
    append,
    guards_off,
    insert_raw,
    make_recording,
    raw,
    sample_log,
    verify_cli,
)

pytestmark = pytest.mark.django_db


def test_an_entry_records_author_date_time_motif_recipients_and_details(make_user, camera, officer):
    # CSI R241-14: consultations and communications record author, date, time, motif and recipients.
    lawyer = make_user("juriste", role="legal")
    recording = make_recording(camera=camera, wearer=officer)
    at = dt.datetime(2026, 11, 21, 9, 15, 30, 123456, tzinfo=dt.timezone.utc)

    with transaction.atomic():
        event = custody_event_append(action="recording.extracted", subject=recording, actor=lawyer,
                                     motif="Réquisition PV 2026/77", recipients=["OPJ Durand, commissariat"],
                                     details={"purpose": "judicial"}, now=at)

    event = CustodyEvent.objects.get(seq=event.seq)
    assert (event.actor, event.actor_label, event.occurred_at) == (lawyer, "user:juriste", at)
    assert (event.organisation, event.recording, event.subject_type, event.subject_id) == (
        recording.organisation, recording, "evidence.recording", str(recording.pk))
    assert (event.motif, event.recipients, event.details) == ("Réquisition PV 2026/77", ["OPJ Durand, commissariat"],
                                                               {"purpose": "judicial"})
    assert event.action_label == "extraction" and event.register_kind == "extraction"


def test_each_entry_hashes_its_predecessor_and_its_canonical_bytes(db):
    first, second = append(2)

    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    for e in (first, second):
        canonical = custody_event_canonical(
            seq=e.seq, occurred_at=e.occurred_at, organisation_id=None, actor_id=None, actor_label=e.actor_label,
            action=e.action, subject_type=e.subject_type, subject_id=e.subject_id, recording_id=None, motif="",
            recipients=[], details={})
        assert bytes(CustodyEvent.objects.get(seq=e.seq).canonical) == canonical
        assert e.hash == custody_event_hash(e.prev_hash, canonical)
    assert json.loads(canonical)["occurred_at"].endswith("Z")


@pytest.mark.django_db(transaction=True)
def test_an_entry_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        custody_event_append(action="test.event", subject_type="t", subject_id="1")


def test_a_fresh_log_verifies_from_the_genesis(org):
    sample_log(6)

    code, output = verify_cli()

    assert code == 0, output
    assert "custody log intact: 7 entries (#1–#7)" in output and "anchored on genesis" in output


def test_entries_written_before_canonical_bytes_were_stored_still_verify(db):
    # Entries from before issue 3 have no stored canonical bytes: rebuilt from their columns.
    append(2)
    last = CustodyEvent.objects.order_by("-seq").first()
    at = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)
    canonical = custody_event_canonical(seq=3, occurred_at=at, organisation_id=None, actor_id=None,
                                        actor_label="system:cli", action="camera.registered", subject_type="devices.camera",
                                        subject_id="7", recording_id=None, motif="", recipients=[],
                                        details={"serial": "BWC-0001"})
    insert_raw({"seq": 3, "occurred_at": at, "actor_label": "system:cli", "action": "camera.registered",
                "subject_type": "devices.camera", "subject_id": "7", "motif": "", "recipients": "[]",
                "details": json.dumps({"serial": "BWC-0001"}), "prev_hash": last.hash,
                "hash": custody_event_hash(last.hash, canonical)})
    append(1)

    report = verify_chain(full=True)

    assert report.ok, report.summary()
    assert report.events == 4


# --- The database refuses changes ---------------------------------------------------------------

def test_the_database_refuses_to_update_an_entry(db):
    event, = append(1)

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        CustodyEvent.objects.filter(seq=event.seq).update(motif="réécrit")

    assert CustodyEvent.objects.get(seq=event.seq).motif == ""


def test_the_database_refuses_to_delete_an_entry(db):
    event, = append(1)

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        raw("DELETE FROM audit_custodyevent WHERE seq = %s", [event.seq])

    assert CustodyEvent.objects.filter(seq=event.seq).exists()


def test_the_database_refuses_to_truncate_the_log(db):
    append(1)
    statement = "TRUNCATE audit_custodyevent CASCADE" if connection.vendor == "postgresql" else \
        "DELETE FROM audit_custodyevent"
    if connection.vendor == "postgresql":
        raw("SET CONSTRAINTS ALL IMMEDIATE")  # the pending foreign-key checks of the append

    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        raw(statement)

    assert CustodyEvent.objects.count() == 1


def test_the_database_refuses_to_change_a_checkpoint(db):
    from audit.services import custody_checkpoint_create

    append(1)
    checkpoint = custody_checkpoint_create()

    for statement in ("UPDATE audit_checkpoint SET head_hash = 'x' WHERE id = %s",
                      "DELETE FROM audit_checkpoint WHERE id = %s"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            raw(statement, [checkpoint.pk])


def test_with_triggers_disabled_postgresql_still_ties_the_columns_to_the_signed_bytes(db):
    # The CHECK constraint exists on PostgreSQL only; SQLite relies on the full verification.
    require_service("PostgreSQL", connection.vendor == "postgresql", "DATABASE_URL is not PostgreSQL")
    event, = append(1)

    with guards_off(), pytest.raises(IntegrityError, match="audit_custodyevent_matches_record"), transaction.atomic():
        raw("UPDATE audit_custodyevent SET motif = 'réécrit' WHERE seq = %s", [event.seq])


def test_an_unprotected_log_fails_verification_even_when_intact(db):
    append(2)

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_custodyevent DISABLE TRIGGER audit_custodyevent_append_only")
        else:
            cursor.execute("DROP TRIGGER audit_custodyevent_no_delete")
    code, output = verify_cli()

    assert code == 1
    assert "unprotected" in output and ("disabled" in output or "missing" in output)


def test_django_flush_needs_a_database_superuser_on_postgresql(db):
    """The production application role cannot empty the log through ``manage.py flush``."""
    # SQLite has no roles: flushing it is like deleting its file.
    require_service("PostgreSQL", connection.vendor == "postgresql", "DATABASE_URL is not PostgreSQL")
    from audit import guards

    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE temoin_flush_test NOLOGIN")
        cursor.execute("SET LOCAL ROLE temoin_flush_test")
        with pytest.raises(PermissionError, match="superuser"), transaction.atomic():
            with guards.flush_permitted(connection):
                pass
        cursor.execute("RESET ROLE")


def test_stored_json_is_read_back_as_written(db):
    # Floats, nested lists, None, accents: the columns rebuild the signed bytes exactly.
    sample_log(4)

    assert verify_chain(full=True).ok


@pytest.mark.django_db(transaction=True)
def test_events_appended_in_bulk_chain_exactly_like_single_appends(org):
    from django.db import transaction

    from audit.services import custody_event_append, custody_events_append_many, verify_chain

    with transaction.atomic():
        custody_event_append(action="organisation.note", subject=org, organisation=org, details={"n": 0})
        many = custody_events_append_many([
            {"action": "organisation.note", "subject": org, "organisation": org, "details": {"n": n}}
            for n in range(1, 6)
        ])
        custody_event_append(action="organisation.note", subject=org, organisation=org, details={"n": 6})

    assert [e.seq for e in many] == list(range(many[0].seq, many[0].seq + 5))
    assert verify_chain(full=True).ok
