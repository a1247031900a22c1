"""The C reader (audit/_chainscan.c) against the Python reader, the reference: same report on a valid
log, same first bad entry and kind for each tampering of issue 3 (raw SQL, guards off, as a database
superuser would). PostgreSQL only; under CI=true a missing database or extension fails.

Transactional tests: the C reader reads over a connection of its own, which sees committed rows only.
"""
from __future__ import annotations

import io
import json
import logging
import struct
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone
from dateutil.relativedelta import relativedelta

from audit import guards
from audit import scan as reader
from audit.chain import GENESIS_HASH, custody_event_hash
from audit.scan import scan
from audit.models import CustodyEvent
from audit.services import custody_checkpoint_create, custody_purge
from audit.verification import verify_chain

from ..conftest import require_service
from .helpers import (
    append, canonical_of, dumps, guards_off, insert_forgery_at, raw, rewrite_with_recomputed_hashes,
    sample_log, verify_cli,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def c_reader(transactional_db, monkeypatch):
    require_service("PostgreSQL", connection.vendor == "postgresql", "DATABASE_URL is not PostgreSQL")
    require_service("the C reader audit._chainscan", reader._chainscan is not None,
                    "not built: pip install -e . needs gcc, libpq-dev and libssl-dev")
    # Hand back to the C reader after two entries read in Python: every stop and resume is exercised.
    monkeypatch.setattr(reader, "HANDBACK_BATCH", 2)
    yield
    _restore_check_constraint()


def _restore_check_constraint() -> None:
    """guards_off(drop_check=True) drops the CHECK constraint for good in a transactional test, and a
    test failing inside guards_off() leaves the triggers off: put both back (on an emptied log, which
    the test's flush would empty anyway) for the tests after this one."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_constraint WHERE conrelid = %s::regclass AND conname = %s",
                       [guards.EVENTS, guards.CONSTRAINT])
        if not cursor.fetchone():
            cursor.execute(f"ALTER TABLE {guards.EVENTS} DISABLE TRIGGER ALL")
            cursor.execute(f"DELETE FROM {guards.EVENTS}")
            cursor.execute(f"ALTER TABLE {guards.EVENTS} ADD CONSTRAINT {guards.CONSTRAINT} CHECK ({guards.PG_CHECK})")
        for table in (guards.EVENTS, guards.CHECKPOINTS):
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")


def _facts(report) -> tuple:
    return (report.ok, report.mode, report.events, report.first_seq, report.last_seq, report.head_hash, report.anchor,
            report.checkpoints_verified, [p.as_dict() for p in report.problems])


def both_readers():
    """verify_chain with each reader: the C one must say exactly what the Python one says."""
    c = verify_chain(reader="c")
    python = verify_chain(reader="python")
    assert (c.reader, python.reader) == ("C", "Python")
    assert _facts(c) == _facts(python)
    return c


def _checkpoint():
    with transaction.atomic():
        return custody_checkpoint_create(force=True)


# --- A valid log ------------------------------------------------------------------------------

def test_on_a_valid_log_both_readers_give_the_same_report():
    events = sample_log(12)
    _checkpoint()  # signs #12, recorded as #13
    append(4)
    _checkpoint()  # signs #17, recorded as #18
    append(3)

    report = both_readers()

    assert report.ok, report.summary()
    assert (report.events, report.last_seq, report.checkpoints_verified) == (21, 21, 2)
    assert report.head_hash == CustodyEvent.objects.get(seq=21).hash
    assert events[4].hash == CustodyEvent.objects.get(seq=5).hash


def test_checkpoint_hashes_come_from_the_c_reader_as_from_the_python_one():
    sample_log(12)
    want = {1, 5, 12, 40}  # 40: past the end
    with transaction.atomic():
        c = scan(1, 12, prev=GENESIS_HASH, want_hashes=want, reader="c", snapshot=reader.export_snapshot())
        python = scan(1, 12, prev=GENESIS_HASH, want_hashes=want, reader="python")

    assert c.reader == "C"
    expected = dict(CustodyEvent.objects.filter(seq__in=want).values_list("seq", "hash"))
    assert c.hashes_at == python.hashes_at == expected
    assert (c.events, c.last_seq, c.last_hash, c.problem) == (python.events, python.last_seq, python.last_hash, None)


def test_a_segment_starts_from_its_own_prev_hash_with_either_reader():
    sample_log(12)
    with transaction.atomic():
        c = scan(5, 9, prev=None, want_hashes={9}, reader="c", snapshot=reader.export_snapshot())
        python = scan(5, 9, prev=None, want_hashes={9}, reader="python")

    assert (c.events, c.last_hash, c.hashes_at, c.problem) == (python.events, python.last_hash, python.hashes_at, None)
    assert c.events == 5


def test_the_guard_check_leaves_no_subtransaction_that_would_forbid_the_snapshot():
    # guards.status() renders the expected CHECK on a scratch table inside a savepoint; released
    # afterwards, the snapshot can still be exported whatever the order of the two.
    sample_log(3)
    with transaction.atomic():
        guards.status()
        assert reader.export_snapshot()


def test_the_c_reader_reads_the_verifiers_snapshot_not_later_appends():
    sample_log(6)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        assert CustodyEvent.objects.count() == 6  # the snapshot is taken here
        snapshot = reader.export_snapshot()
        assert snapshot

        def writer():
            try:
                append(3)  # #7–#9, committed by another connection
            finally:
                connections.close_all()

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive()
        c = scan(1, 9, prev=GENESIS_HASH, reader="c", snapshot=snapshot)
        python = scan(1, 9, prev=GENESIS_HASH, reader="python")

    assert CustodyEvent.objects.count() == 9
    assert c.problem == python.problem and c.problem.kind == "removed" and c.problem.seq == 7
    assert c.events == python.events == 6


def test_entries_written_before_canonical_bytes_are_rebuilt_in_python_and_the_c_reader_resumes(monkeypatch):
    sample_log(12)
    with guards_off():  # the CHECK constraint allows a NULL canonical: such entries predate issue 3
        raw("UPDATE audit_custodyevent SET canonical = NULL WHERE seq IN (1, 3, 4, 9)")
    calls = []
    c_scan = reader._chainscan.scan
    monkeypatch.setattr(reader._chainscan, "scan", lambda *a: calls.append(a[1:3]) or c_scan(*a))

    report = both_readers()

    assert report.ok, report.summary()
    assert report.events == 12
    assert calls == [(1, 12), (7, 12)]  # stopped at #1, rebuilt #1–#6 in Python, resumed, stopped at #9


def test_custody_verify_says_which_reader_ran(monkeypatch):
    monkeypatch.setattr(reader, "C_READER_MIN_ENTRIES", 1)
    sample_log(5)

    code, output = verify_cli()
    out = io.StringIO()
    call_command("custody", "verify", "--json", stdout=out)

    assert code == 0 and "reader: C" in output, output
    assert json.loads(out.getvalue())["reader"] == "C"
    monkeypatch.setattr(reader, "C_READER_MIN_ENTRIES", 1000)
    assert "reader: Python" in verify_cli()[1]


# --- Tampering (issue 3): the same first bad entry and kind ---------------------------------------

def _edit_canonical():
    payload = canonical_of(5) | {"motif": "Aucune consultation"}
    with guards_off():
        raw("UPDATE audit_custodyevent SET motif = %s, canonical = %s WHERE seq = 5",
            ["Aucune consultation", dumps(payload)])


def _edit_canonical_bytes_only():
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET canonical = canonical || '\\x20'::bytea WHERE seq = 5")


def _edit_hash():
    with guards_off():
        raw("UPDATE audit_custodyevent SET hash = %s WHERE seq = 5", ["f" * 64])


def _edit_prev_hash():
    with guards_off():
        raw("UPDATE audit_custodyevent SET prev_hash = %s WHERE seq = 5", ["0" * 64])


def _edit_seq():
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET seq = 50 WHERE seq = 5")


def _delete():
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 5")


def _insert_forged():
    insert_forgery_at(5, motif="consultation antidatée")


def _insert_careless_forgery():
    insert_forgery_at(5, motif="x", careless=True)


def _swap():
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET seq = -1 WHERE seq = 4")
        raw("UPDATE audit_custodyevent SET seq = 4 WHERE seq = 7")
        raw("UPDATE audit_custodyevent SET seq = 7 WHERE seq = -1")


def _legacy_row_altered():
    # Canonical bytes gone (as before issue 3) and a column changed: the rebuilt bytes miss the hash.
    with guards_off():
        raw("UPDATE audit_custodyevent SET canonical = NULL, motif = 'réécrit' WHERE seq = 5")


def _legacy_row_then_deletion():
    with guards_off():
        raw("UPDATE audit_custodyevent SET canonical = NULL WHERE seq = 3")
        raw("DELETE FROM audit_custodyevent WHERE seq = 9")


def _remove_the_last_entries():
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq >= 10")


def _rewrite_with_recomputed_hashes():
    rewrite_with_recomputed_hashes(5, 15)


TAMPERING = {
    "edit canonical and column": (_edit_canonical, 5, "altered"),
    "edit canonical bytes only": (_edit_canonical_bytes_only, 5, "altered"),
    "edit hash": (_edit_hash, 5, "altered"),
    "edit prev_hash": (_edit_prev_hash, 5, "altered"),
    "edit seq": (_edit_seq, 5, "removed"),
    "delete": (_delete, 5, "removed"),
    "insert a forged entry": (_insert_forged, 5, "inserted"),
    "insert a careless forgery": (_insert_careless_forgery, 5, "inserted"),
    "swap two entries": (_swap, 4, "reordered"),
    "NULL canonical, column altered": (_legacy_row_altered, 5, "altered"),
    "NULL canonical, then a deletion": (_legacy_row_then_deletion, 9, "removed"),
    "remove the last entries": (_remove_the_last_entries, 10, "removed"),
    "rewrite with recomputed hashes": (_rewrite_with_recomputed_hashes, 1, "altered"),  # caught by #12
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_each_tampering_is_named_alike_by_both_readers(name):
    tamper, seq, kind = TAMPERING[name]
    sample_log(12)
    _checkpoint()  # signs #12, recorded as #13
    append(2)  # #14, #15
    tamper()

    report = both_readers()

    assert not report.ok
    first = report.first_problem
    assert (first.seq, first.kind) == (seq, kind), report.summary()


# --- The COPY binary parser, on data made here ------------------------------------------------------

def _copy_data(rows, *, signature=b"PGCOPY\n\xff\r\n\x00", flags=0, extension=b"", trailer=True) -> bytes:
    out = [signature, struct.pack("!ii", flags, len(extension)), extension]
    for row in rows:
        out.append(struct.pack("!h", len(row)))
        for value in row:
            if value is None:
                out.append(struct.pack("!i", -1))
            elif isinstance(value, int):
                out.append(struct.pack("!iq", 8, value))
            else:
                value = value.encode() if isinstance(value, str) else value
                out.append(struct.pack("!i", len(value)) + value)
    if trailer:
        out.append(struct.pack("!h", -1))
    return b"".join(out)


def _chained(n: int, first: int = 1, prev: str = GENESIS_HASH) -> list[list]:
    rows = []
    for seq in range(first, first + n):
        canonical = json.dumps({"seq": seq, "motif": "Procédure « test »"}, ensure_ascii=False).encode()
        h = custody_event_hash(prev, canonical)
        rows.append([seq, prev, canonical, h])
        prev = h
    return rows


@pytest.mark.parametrize("chunk", [0, 1, 2, 7, 19, 100])
def test_the_parser_reads_rows_split_anyhow_across_messages(chunk):
    rows = _chained(3)
    data = _copy_data(rows, extension=b"\x01\x02\x03")

    result = reader._chainscan.check_copy_data(data, 1, 3, GENESIS_HASH, [2, 9], chunk)

    assert result == (3, rows[2][3], None, {2: rows[1][3]})
    # Stops at the first row that breaks a rule, whatever the chunking.
    broken = [row[:] for row in rows]
    broken[1][2] += b" "
    assert reader._chainscan.check_copy_data(_copy_data(broken), 1, 3, GENESIS_HASH, [2], chunk) == \
        (1, rows[0][3], 2, {})


@pytest.mark.parametrize("change, good, stopped_at", [
    (lambda rows: rows[1].__setitem__(2, None), 1, 2),  # no canonical bytes: the Python reader rebuilds them
    (lambda rows: rows[1].__setitem__(1, None), 1, 2),  # NULL prev_hash
    (lambda rows: rows[1].__setitem__(3, None), 1, 2),  # NULL hash
    (lambda rows: rows[1].__setitem__(3, rows[1][3].upper()), 1, 2),  # lowercase hex only, as in Python
    (lambda rows: rows[1].__setitem__(0, 5), 1, 5),  # a gap
    (lambda rows: rows[0].__setitem__(1, "1" * 64), 0, 1),  # does not chain onto the anchor
])
def test_the_parser_stops_where_the_python_reader_looks_closer(change, good, stopped_at):
    rows = _chained(3)
    change(rows)

    result = reader._chainscan.check_copy_data(_copy_data(rows), 1, 3, GENESIS_HASH, [])

    assert result[0] == good and result[2] == stopped_at


def _int4_seq_row() -> bytes:
    seq, prev, canonical, h = _chained(1)[0]
    return (_copy_data([])[:19] + struct.pack("!hii", 4, 4, seq)
            + b"".join(struct.pack("!i", len(v)) + v for v in (prev.encode(), canonical, h.encode()))
            + struct.pack("!h", -1))


@pytest.mark.parametrize("data, why", [
    (_copy_data(_chained(1), signature=b"PGCOPY\n\xff\r\n\x01"), "signature"),
    (_copy_data(_chained(1), flags=1 << 16), "critical flags"),
    (_copy_data([_chained(1)[0][:3]]), "4 fields"),
    (_copy_data(_chained(1))[:-30], "ended early"),
    (_copy_data(_chained(1), trailer=False), "ended early"),
    (_copy_data(_chained(1)) + b"\x00", "after the binary COPY trailer"),
    (_copy_data(_chained(1))[:19] + struct.pack("!hi", 4, -2), "negative field length"),
    (_int4_seq_row(), "8-byte bigint"),
    (b"", "ended early"),
])
def test_unexpected_copy_data_is_an_error_not_a_crash(data, why):
    for chunk in (0, 3):
        with pytest.raises(reader._chainscan.Error, match=f"unexpected COPY data: .*{why}"):
            reader._chainscan.check_copy_data(data, 1, 1, GENESIS_HASH, [], chunk)


# --- Errors ------------------------------------------------------------------------------------

def test_a_connection_error_is_a_clear_exception():
    with pytest.raises(reader._chainscan.Error, match="cannot connect to PostgreSQL: .*(refused|failed)"):
        reader._chainscan.scan("host=127.0.0.1 port=1 dbname=temoin connect_timeout=5", 1, 10, None, [])
    with pytest.raises(reader._chainscan.Error, match='invalid connection option "nonsense"'):
        reader._chainscan.scan("nonsense=1", 1, 10, None, [])
    with pytest.raises(ValueError):
        reader._chainscan.scan("", 10, 1, None, [])
    with pytest.raises(ValueError, match="sorted"):
        reader._chainscan.scan("", 1, 10, None, [5, 3])


def test_when_the_c_reader_cannot_connect_verification_goes_on_in_python(monkeypatch, caplog):
    sample_log(8)
    monkeypatch.setattr(reader, "C_READER_MIN_ENTRIES", 1)
    monkeypatch.setattr(reader, "_conninfo", lambda: "host=127.0.0.1 port=1 connect_timeout=5")

    with caplog.at_level(logging.WARNING, logger="audit.scan"):
        report = verify_chain()

    assert report.ok and report.events == 8 and report.reader == "Python", report.summary()
    assert "C reader failed (cannot connect to PostgreSQL" in caplog.text
    with pytest.raises(reader._chainscan.Error, match="cannot connect"):
        verify_chain(reader="c")


def test_a_connection_option_the_system_libpq_does_not_know_keeps_the_python_reader(monkeypatch, caplog):
    sample_log(3)
    monkeypatch.setattr(reader, "C_READER_MIN_ENTRIES", 1)
    monkeypatch.setattr(reader._chainscan, "CONNINFO_KEYWORDS", reader._chainscan.CONNINFO_KEYWORDS - {"user"})

    with caplog.at_level(logging.WARNING, logger="audit.scan"):
        report = verify_chain()

    assert report.ok and report.reader == "Python"
    assert "does not know the connection option user=" in caplog.text


def test_inside_an_outer_transaction_the_python_reader_runs(monkeypatch):
    monkeypatch.setattr(reader, "C_READER_MIN_ENTRIES", 1)
    sample_log(3)
    with transaction.atomic():
        append(1)  # not committed: a second connection would not see it
        report = verify_chain()
        with pytest.raises(ValueError, match="uncommitted"):
            verify_chain(reader="c")

    assert report.ok and report.events == 4 and report.reader == "Python"


def test_purged_history_anchors_both_readers_on_the_signed_checkpoint():
    now = timezone.now()
    for i in range(5):
        append(1, now=now - relativedelta(years=4) + relativedelta(minutes=i))
    append(3, now=now)
    with transaction.atomic():
        result = custody_purge(now=now)
    assert result.through_seq == 5

    report = both_readers()

    assert report.ok and "purge through #5" in report.anchor, report.summary()
