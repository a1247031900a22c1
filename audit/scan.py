"""Reading the custody chain: the rows, the hash scan (Python reader, or the optional C reader
audit/_chainscan.c), naming the first bad entry, and the column-consistency check.

Enforces the chain rules of audit/chain.py over a range of entries (CSI R241-14, LIL art. 101: the
log must be tamper-evident); every hash is recomputed here from what the database returns.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Iterable

from django.db import connection

from .chain import FULL_COLUMNS, Problem, canonical_from_row, custody_event_hash

try:  # the C reader (audit/_chainscan.c): optional, built by setup.py where gcc, libpq-dev, libssl-dev are
    from . import _chainscan
except ImportError:
    _chainscan = None

log = logging.getLogger(__name__)

TABLE = "audit_custodyevent"
BATCH = 20_000
# Below this many entries, the C reader's own connection costs more than it saves (≈ 5 ms).
C_READER_MIN_ENTRIES = 5_000
# After the C reader stops at an entry, the Python path reads this many before handing back.
HANDBACK_BATCH = 1_000


# --- Reading rows -----------------------------------------------------------------------------

def _fast_cursor():
    """A cursor returning (seq, prev_hash, canonical, hash) rows as fast as the driver allows.

    On PostgreSQL the psycopg binary protocol skips the hex encoding of bytea (measured about 1.5×
    faster to fetch than Django's text-protocol cursor); the connection and its transaction are
    Django's own.
    """
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        import psycopg

        # Django's connections use client-side parameter binding, which has no binary results.
        return _BinaryCursor(psycopg.Cursor(connection.connection)), "%s"
    return connection.connection.cursor(), "?"


class _BinaryCursor:
    def __init__(self, cursor):
        self.cursor = cursor

    def execute(self, sql, params):
        return self.cursor.execute(sql, params, binary=True)

    def fetchall(self):
        return self.cursor.fetchall()

    def close(self):
        self.cursor.close()


def iter_batches(lo: int, hi: int, batch: int = BATCH) -> Iterable[list[tuple]]:
    """Rows lo <= seq <= hi in seq order, as lists of (seq, prev_hash, canonical, hash)."""
    cursor, ph = _fast_cursor()
    sql = (f"SELECT seq, prev_hash, canonical, hash FROM {TABLE} WHERE seq > {ph} AND seq <= {ph} "
           f"ORDER BY seq LIMIT {ph}")
    last = lo - 1
    try:
        while last < hi:
            cursor.execute(sql, (last, hi, batch))
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]
    finally:
        cursor.close()


def full_rows(seqs: Iterable[int]) -> dict[int, dict]:
    from .models import CustodyEvent

    rows = CustodyEvent.objects.filter(seq__in=list(seqs)).values(*FULL_COLUMNS)
    return {r["seq"]: _bytes(r) for r in rows}


def _bytes(row: dict) -> dict:
    if row.get("canonical") is not None:
        row["canonical"] = bytes(row["canonical"])
    return row


def row_by_hash(value: str) -> dict | None:
    from .models import CustodyEvent

    row = CustodyEvent.objects.filter(hash=value).values(*FULL_COLUMNS).first()
    return _bytes(row) if row else None


# --- The scan ---------------------------------------------------------------------------------

def _scan_batch(rows: list[tuple], expected_seq: int, prev: str) -> tuple[int, str]:
    """Check rows against the chain rules; return (index of the first row needing a closer look or
    -1, hash of the last good row). The hot loop of verification: keep it minimal."""
    sha = hashlib.sha256
    nl = b"\n"
    prevb = prev.encode()
    i = 0
    for seq, p, c, h in rows:
        if seq != expected_seq or p != prev or c is None:
            return i, prev
        if sha(prevb + nl + c).hexdigest() != h:
            return i, prev
        prev = h
        prevb = h.encode()
        expected_seq += 1
        i += 1
    return -1, prev


@dataclass
class ScanResult:
    events: int = 0
    last_seq: int | None = None
    last_hash: str = ""
    problem: Problem | None = None
    hashes_at: dict = field(default_factory=dict)  # seq -> stored hash, for the seqs asked for
    reader: str = "Python"


def scan(lo: int, hi: int, *, prev: str | None, want_hashes: set[int] = frozenset(), batch: int = BATCH,
         reader: str = "python", snapshot: str | None = None) -> ScanResult:
    """Verify entries lo..hi (inclusive). ``prev`` is the hash entry lo must chain onto, or None to
    start from entry lo's own stored prev_hash (a segment proven by the checkpoint that ends it).

    ``reader``: "python", the reference; "auto", the C reader (audit._chainscan) for the good path when
    it is built, the database is PostgreSQL and the range is long enough, for callers whose
    transaction holds no uncommitted entries (it reads over a connection of its own); "c", the C
    reader or an error. ``snapshot`` (export_snapshot()) makes it read what this transaction reads.
    Wherever the C reader stops, the Python path reads from that entry on and names it (diagnose),
    then hands back."""
    result = ScanResult()
    expected = lo
    c_scan = _c_reader(reader, lo, hi, snapshot)
    while True:
        if c_scan is not None:
            try:
                good, last_hash, _stopped_at, hashes = c_scan(expected, hi, prev, sorted(
                    s for s in want_hashes if expected <= s <= hi))
            except _chainscan.Error as exc:
                if reader == "c":
                    raise
                log.warning("custody verification: C reader failed (%s); the Python reader goes on from #%s",
                            exc, expected)
                c_scan = None
            else:
                result.reader = "C"
                result.hashes_at.update(hashes)
                if good:
                    result.events += good
                    expected += good
                    prev = last_hash
                    result.last_seq, result.last_hash = expected - 1, prev
                if expected > hi:
                    return result
        expected, prev, handed_back = _scan_python(result, expected, hi, prev, want_hashes, batch,
                                                   handback=c_scan is not None)
        if not handed_back:
            return result


def _scan_python(result: ScanResult, expected: int, hi: int, prev: str | None, want_hashes, batch: int, *,
                 handback: bool) -> tuple[int, str | None, bool]:
    """The Python reader, from entry ``expected``. With ``handback`` (the C reader stopped there) it
    returns (expected, prev, True) after the first batch of good entries holding no entry written
    before canonical bytes were stored, so the C reader goes on; else it reads to the end or the
    first problem and returns (…, False)."""
    for rows in iter_batches(expected, hi, min(batch, HANDBACK_BATCH) if handback else batch):
        if prev is None:
            prev = rows[0][1]
        start = 0
        rebuilt = False
        while start < len(rows):
            chunk = rows[start:] if start else rows
            bad, prev_after = _scan_batch(chunk, expected, prev)
            good = len(chunk) if bad < 0 else bad
            _collect_hashes(result, chunk, good, expected, want_hashes)
            result.events += good
            expected += good
            prev = prev_after
            if good:
                result.last_seq, result.last_hash = expected - 1, prev
            if bad < 0:
                break
            row = chunk[bad]
            if row[0] == expected and row[1] == prev and row[2] is None:
                # An entry written before canonical bytes were stored: rebuild them from its columns.
                full = full_rows([row[0]])[row[0]]
                if custody_event_hash(row[1], canonical_from_row(full)) == row[3]:
                    _collect_hashes(result, [row], 1, expected, want_hashes)
                    result.events += 1
                    expected += 1
                    prev = row[3]
                    result.last_seq, result.last_hash = row[0], row[3]
                    start += bad + 1
                    rebuilt = True
                    continue
            nxt = chunk[bad + 1] if bad + 1 < len(chunk) else _next_row(row[0], hi)
            result.problem = diagnose(expected, prev, row, nxt)
            return expected, prev, False
        if handback and not rebuilt and expected <= hi:
            return expected, prev, True
    if expected <= hi and result.problem is None:
        result.problem = Problem("removed", expected, f"entry #{expected} is missing: the log ends at "
                                 f"#{expected - 1}")
    return expected, prev, False


class _ReaderUnavailable(Exception):
    pass


def _c_reader(reader: str, lo: int, hi: int, snapshot: str | None):
    """A function (lo, hi, prev, want) -> audit._chainscan.scan(...) result, or None for the Python path."""
    if reader == "python":
        return None
    if reader not in ("auto", "c"):
        raise ValueError(f"reader must be 'python', 'auto' or 'c', not {reader!r}")
    if reader == "auto" and hi - lo + 1 < C_READER_MIN_ENTRIES:
        return None
    try:
        if _chainscan is None:
            raise _ReaderUnavailable("the audit._chainscan extension is not built (setup.py: gcc, libpq-dev, "
                                     "libssl-dev)")
        if connection.vendor != "postgresql":
            raise _ReaderUnavailable(f"the C reader reads PostgreSQL only, not {connection.vendor}")
        conninfo = _conninfo()
    except _ReaderUnavailable as exc:
        if reader == "c":
            raise RuntimeError(f"C reader unavailable: {exc}") from None
        if _chainscan is not None and connection.vendor == "postgresql":
            log.warning("custody verification: C reader unavailable (%s); using the Python reader", exc)
        return None

    def c_scan(lo: int, hi: int, prev: str | None, want: list[int]):
        return _chainscan.scan(conninfo, lo, hi, prev, want, snapshot)

    return c_scan


# Options a newer libpq (psycopg's own) reports at their default value; the system libpq the C
# reader links may not know them.
_NEWER_LIBPQ_DEFAULTS = {"sslcertmode": "allow", "sslnegotiation": "postgres", "gssdelegation": "0",
                         "load_balance_hosts": "disable"}


def _conninfo() -> str:
    """Django's live connection parameters (host, port, dbname, user, password, sslmode, …) as a libpq
    connection string for the C reader."""
    from psycopg.conninfo import make_conninfo

    connection.ensure_connection()
    info = connection.connection.info
    params = dict(info.get_parameters())
    if info.password:
        params["password"] = info.password
    for key in sorted(set(params) - _chainscan.CONNINFO_KEYWORDS):
        if _NEWER_LIBPQ_DEFAULTS.get(key) != params[key]:
            raise _ReaderUnavailable(f"the system libpq ({_chainscan.LIBPQ_VERSION}) does not know the "
                                     f"connection option {key}={params[key]!r}")
        del params[key]
    return make_conninfo("", **params)


def export_snapshot() -> str | None:
    """This transaction's snapshot (PostgreSQL), for the C reader to read exactly what the Python
    queries read. Call it before any savepoint: PostgreSQL exports none from a subtransaction, and
    the failed statement would abort the transaction."""
    if _chainscan is None or connection.vendor != "postgresql" or not connection.in_atomic_block \
            or any(connection.savepoint_ids):
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


def _collect_hashes(result: ScanResult, rows, good: int, first_seq: int, want: set[int]) -> None:
    if not want or not good:
        return
    last = first_seq + good - 1
    for s in want:
        if first_seq <= s <= last:
            result.hashes_at[s] = rows[s - first_seq][3]


def _next_row(seq: int, hi: int) -> tuple | None:
    for rows in iter_batches(seq + 1, hi, 1):
        return rows[0]
    return None


# --- Naming what is wrong -------------------------------------------------------------------

def _claimed_seq(row: dict) -> int | None:
    """The seq an entry's signed bytes say it was written at."""
    canonical = row.get("canonical")
    if canonical is None:
        return None
    try:
        return int(json.loads(canonical)["seq"])
    except (ValueError, KeyError, TypeError):
        return None


def _self_consistent(row: dict) -> bool:
    canonical = row["canonical"] if row["canonical"] is not None else canonical_from_row(row)
    return custody_event_hash(row["prev_hash"], canonical) == row["hash"]


def diagnose(expected: int, prev: str, fast_row: tuple, next_fast_row: tuple | None) -> Problem:
    """The first row that breaks the chain is ``fast_row``; say which entry is bad and how.

    ``expected`` is the seq the chain expects next, ``prev`` the hash that entry must chain onto.
    """
    seq = fast_row[0]
    if seq > expected:
        missing = f"#{expected}" if seq == expected + 1 else f"#{expected}–#{seq - 1}"
        return Problem("removed", expected, f"entry {missing} is missing: the log jumps from #{expected - 1} "
                                            f"to #{seq}")
    row = full_rows([seq])[seq]
    own_ok = _self_consistent(row)
    link_ok = row["prev_hash"] == prev
    claimed = _claimed_seq(row)

    if own_ok and claimed is not None and claimed != seq:
        if claimed > seq:
            return Problem("reordered", seq, f"the entry at #{seq} was written as #{claimed}: entries were moved "
                                             f"(swapped or renumbered)")
        return Problem("inserted", claimed, f"entries were inserted before #{seq}: the entry now at #{seq} was "
                                            f"written as #{claimed}")
    if next_fast_row is not None and next_fast_row[1] == prev:
        return Problem("inserted", seq, f"entry #{seq} is not part of the chain: #{next_fast_row[0]} chains "
                                        f"directly onto #{seq - 1}")
    if not link_ok:
        before = row_by_hash(row["prev_hash"])
        if before is not None and before["seq"] == seq - 2:
            return Problem("inserted", seq - 1, f"entry #{seq - 1} was inserted: #{seq} chains directly onto "
                                                f"#{seq - 2}")
        if own_ok and before is not None and before["seq"] != seq - 1:
            return Problem("reordered", seq, f"entry #{seq} chains onto #{before['seq']} instead of #{seq - 1}: "
                                             f"entries were moved")
        if own_ok:
            return Problem("altered", seq - 1, f"entry #{seq - 1} was rewritten: its hash is no longer the one "
                                               f"#{seq} was chained to")
        return Problem("altered", seq, f"entry #{seq} was rewritten: neither its content nor its link to "
                                       f"#{seq - 1} matches its hash")
    # Linked to the right predecessor but its own bytes do not hash to its hash.
    if row["canonical"] is not None:
        differing = differing_fields(row)
        if differing:
            return Problem("altered", seq, f"entry #{seq} was altered: {', '.join(differing)} no longer match "
                                           f"its hash")
    return Problem("altered", seq, f"entry #{seq} was altered: its content no longer matches its hash")


def differing_fields(row: dict) -> list[str]:
    """Fields where an entry's columns and its stored canonical bytes disagree."""
    try:
        stored = json.loads(row["canonical"])
    except ValueError:
        return ["canonical bytes (not valid JSON)"]
    rebuilt = json.loads(canonical_from_row(row))
    return sorted(k for k in set(stored) | set(rebuilt) if stored.get(k) != rebuilt.get(k))


# --- Column consistency (the full check) -----------------------------------------------------

def consistency_scan(lo: int, hi: int, chunk_size: int = 5000) -> Problem | None:
    """Rebuild every entry's canonical bytes from its columns and compare them with the stored bytes.

    The hash chain proves the stored bytes; this proves the columns the pages and filters read say
    the same. On PostgreSQL a validated CHECK constraint guarantees it already (audit/guards.py), so
    the fast verification skips this pass unless that guarantee is missing.
    """
    from .models import CustodyEvent

    qs = CustodyEvent.objects.filter(seq__gte=lo, seq__lte=hi).order_by("seq").values_list(*FULL_COLUMNS)
    for values in qs.iterator(chunk_size=chunk_size):
        row = _bytes(dict(zip(FULL_COLUMNS, values)))
        if row["canonical"] is None:
            continue  # rebuilt and hashed by the chain scan itself
        if canonical_from_row(row) != row["canonical"]:
            fields = differing_fields(row)
            return Problem("altered", row["seq"], f"entry #{row['seq']} was altered: column(s) "
                                                  f"{', '.join(fields)} differ from the signed record")
    return None
