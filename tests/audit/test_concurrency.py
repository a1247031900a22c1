"""Concurrent writers never fork the chain (PostgreSQL: advisory transaction lock; SQLite: IMMEDIATE
transactions). Each writer is a thread with its own database connection, committing for real."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from audit.chain import verify_chain
from audit.models import CustodyEvent
from audit.services import custody_event_append

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
