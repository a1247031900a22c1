"""Concurrent writers never fork the chain (PostgreSQL: advisory transaction lock; SQLite: IMMEDIATE
transactions). Each writer is a thread with its own database connection, committing for real."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from audit.verification import verify_chain
from audit.models import CustodyEvent
from audit.services import custody_event_append
from tests.conftest import require_service

pytestmark = pytest.mark.django_db(transaction=True)

WRITERS = 8
PER_WRITER = 25


def test_eight_concurrent_writers_produce_one_valid_chain():
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(PER_WRITER):
                # Every round, all writers append at the same moment: they really contend.
                start.wait(timeout=60)
                with transaction.atomic():
                    custody_event_append(action="test.concurrent", subject_type="test.writer", subject_id=str(n),
                                         details={"writer": n, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)

    assert not errors, errors
    rows = list(CustodyEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash", "details"))
    assert [r[0] for r in rows] == list(range(1, WRITERS * PER_WRITER + 1))
    assert len({r[1] for r in rows}) == len(rows)  # no two entries chained onto the same predecessor
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))
    # Every writer's entries are all there, in its own order.
    for n in range(WRITERS):
        assert [r[3]["i"] for r in rows if r[3]["writer"] == n] == list(range(PER_WRITER))
    # They really interleaved: each round's eight entries come from eight different writers.
    for round_start in range(0, len(rows), WRITERS):
        assert len({r[3]["writer"] for r in rows[round_start:round_start + WRITERS]}) == WRITERS
    report = verify_chain()
    assert report.ok, report.summary()
    assert report.events == WRITERS * PER_WRITER, connection.vendor


def test_a_change_logged_while_another_holds_its_recording_waits_instead_of_deadlocking(camera, officer):
    """Issue 17's live probe: an annotation (its custody entry taken under the chain's lock, its
    foreign key checked at COMMIT) against a hold that locked the recording FOR UPDATE and then
    appended its own entry: PostgreSQL found a deadlock and the annotation got a 500."""
    require_service("PostgreSQL", connection.vendor == "postgresql",
                    "row locks and advisory locks are PostgreSQL's: set DATABASE_URL")
    from evidence.models import Recording
    from evidence.review.services import annotation_add

    from .helpers import make_recording

    rec = make_recording(camera=camera, wearer=officer)
    Recording.objects.filter(pk=rec.pk).update(duration=60)
    rec.refresh_from_db()
    holder_locked, errors = threading.Event(), []
    annotator_waiting = threading.Event()

    def holder():  # as hold_place does: the recording FOR UPDATE, then its custody entry
        try:
            with transaction.atomic():
                Recording.objects.select_for_update().get(pk=rec.pk)
                holder_locked.set()
                assert annotator_waiting.wait(timeout=60)
                custody_event_append(action="hold.placed", subject=rec, details={"test": True})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    def annotator():
        try:
            assert holder_locked.wait(timeout=60)
            annotation_add(recording=rec, by=officer, kind="comment", at_seconds=1.0, text="vu")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=holder), threading.Thread(target=annotator)]
    for t in threads:
        t.start()
    # The annotator is blocked on a lock (the recording's row, or the chain's): observed, not slept on.
    with connections["default"].cursor() as cursor:
        for _ in range(6000):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.01)
    annotator_waiting.set()
    for t in threads:
        t.join(timeout=120)

    assert not errors, errors
    assert CustodyEvent.objects.filter(action__in=["hold.placed", "recording.annotated"]).count() == 2
    assert verify_chain().ok
