"""The custody chain: canonical bytes, hashes, and verification.

Every hash is recomputed here from what the database returns (hashlib, or OpenSSL in the optional C
reader audit/_chainscan.c); nothing asks the database to compute or compare a hash. The same rules
are written out for an independent verifier in docs/custody.md (CSI R241-14, LIL art. 101: the log
must be tamper-evident and shown to the CNIL).

Rules, for entries ordered by ``seq``:

- ``hash = sha256(prev_hash + "\\n" + canonical)`` in lowercase hex, where ``canonical`` is the JSON
  of the entry with sorted keys, no whitespace, UTF-8, times in UTC with microseconds;
- ``prev_hash`` of an entry is the ``hash`` of the entry before it, ``"0" * 64`` for entry 1;
- sequence numbers have no gaps; history purged after three years starts from a signed checkpoint
  attesting the hash of the last purged entry;
- every signed checkpoint attests the hash of the entry at its ``seq``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable

from django.db import connection, transaction
from django.db.models import Max, Min

try:  # the C reader (audit/_chainscan.c): optional, built by setup.py where gcc, libpq-dev, libssl-dev are
    from . import _chainscan
except ImportError:
    _chainscan = None

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
TABLE = "audit_custodyevent"
BATCH = 20_000
# Below this many entries, the C reader's own connection costs more than it saves (≈ 5 ms).
C_READER_MIN_ENTRIES = 5_000
# After the C reader stops at an entry, the Python path reads this many before handing back.
HANDBACK_BATCH = 1_000

# What is wrong with an entry, in the words the command line and the pages use.
KIND_LABELS = {
    "altered": "entrée modifiée",
    "removed": "entrée supprimée",
    "inserted": "entrée insérée",
    "reordered": "entrées permutées",
    "signature": "signature de point de contrôle invalide",
    "checkpoint": "point de contrôle incohérent",
    "unprotected": "protection de la base désactivée",
}


def custody_event_canonical(*, seq: int, occurred_at, organisation_id, actor_id, actor_label: str,
                            action: str, subject_type: str, subject_id: str, recording_id,
                            motif: str, recipients: list, details: dict) -> bytes:
    """The exact bytes an entry's hash covers (sorted keys, no whitespace, UTC microseconds)."""
    payload = {
        "seq": seq,
        "occurred_at": occurred_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "organisation": organisation_id,
        "actor": actor_id,
        "actor_label": actor_label,
        "action": action,
        "subject_type": subject_type,
        "subject_id": str(subject_id),
        "recording": recording_id,
        "motif": motif,
        "recipients": recipients,
        "details": details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def custody_event_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


# Columns needed to rebuild an entry's canonical bytes, in custody_event_canonical's order.
FULL_COLUMNS = ("seq", "occurred_at", "organisation_id", "actor_id", "actor_label", "action", "subject_type",
                "subject_id", "recording_id", "motif", "recipients", "details", "prev_hash", "hash", "canonical")


def canonical_from_row(row: dict) -> bytes:
    return custody_event_canonical(
        seq=row["seq"], occurred_at=row["occurred_at"], organisation_id=row["organisation_id"],
        actor_id=row["actor_id"], actor_label=row["actor_label"], action=row["action"],
        subject_type=row["subject_type"], subject_id=row["subject_id"], recording_id=row["recording_id"],
        motif=row["motif"], recipients=row["recipients"], details=row["details"],
    )


# --- Results --------------------------------------------------------------------------------

@dataclass
class Problem:
    kind: str  # a key of KIND_LABELS
    seq: int | None  # the entry named (the first bad one), or the checkpoint's seq
    message: str

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "seq": self.seq, "message": self.message}

    def __str__(self) -> str:
        where = f"#{self.seq}" if self.seq is not None else "-"
        return f"{where} {self.kind}: {self.message}"


@dataclass
class ChainReport:
    ok: bool = True
    mode: str = "fast"
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head_hash: str = ""
    anchor: str = ""
    anchor_checkpoint: object = None
    checkpoints_verified: int = 0
    latest_checkpoint: object = None
    problems: list[Problem] = field(default_factory=list)
    started_at: dt.datetime | None = None
    duration: float = 0.0
    reader: str = "Python"  # which reader ran the hot loop: "C" (audit._chainscan) or "Python"

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def fail(self, problem: Problem) -> None:
        self.ok = False
        self.problems.append(problem)

    def summary(self) -> str:
        if self.ok:
            span = f"#{self.first_seq}–#{self.last_seq}" if self.events else "empty"
            latest = ""
            if self.latest_checkpoint is not None:
                cp = self.latest_checkpoint
                latest = f", latest #{cp.seq} signed {cp.created_at:%Y-%m-%dT%H:%M:%SZ}"
            return (f"custody log intact: {self.events} entries ({span}), head {self.head_hash[:16] or '-'}…, "
                    f"anchored on {self.anchor or 'genesis'}; {self.checkpoints_verified} signed checkpoints "
                    f"verified{latest} [{self.mode}, reader: {self.reader}, {self.duration:.2f} s]")
        p = self.problems[0]
        return f"custody log NOT intact: first bad entry {p}"


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
        differing = _differing_fields(row)
        if differing:
            return Problem("altered", seq, f"entry #{seq} was altered: {', '.join(differing)} no longer match "
                                           f"its hash")
    return Problem("altered", seq, f"entry #{seq} was altered: its content no longer matches its hash")


def _differing_fields(row: dict) -> list[str]:
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
            fields = _differing_fields(row)
            return Problem("altered", row["seq"], f"entry #{row['seq']} was altered: column(s) "
                                                  f"{', '.join(fields)} differ from the signed record")
    return None


# --- Checkpoints -------------------------------------------------------------------------------

@dataclass
class CheckedCheckpoint:
    checkpoint: object
    statement: dict
    valid: bool
    problem: Problem | None = None


def check_checkpoints(checkpoints, public_key) -> list[CheckedCheckpoint]:
    """Verify each checkpoint's Ed25519 signature over its payload, and that its columns repeat it."""
    from .integrations import signing

    checked = []
    for cp in checkpoints:
        try:
            statement = json.loads(cp.payload)
        except ValueError:
            statement = {}
        if public_key is None:
            checked.append(CheckedCheckpoint(cp, statement, False, Problem(
                "signature", cp.seq, f"checkpoint #{cp.seq} cannot be checked: the deployment has no signing key")))
            continue
        if not signing.verify(public_key, cp.payload.encode(), cp.signature):
            checked.append(CheckedCheckpoint(cp, statement, False, Problem(
                "signature", cp.seq, f"checkpoint #{cp.seq} of {cp.created_at:%Y-%m-%d %H:%M} UTC: signature "
                                     f"invalid for the deployment's public key {signing.key_id(public_key)[:16]}…")))
            continue
        mismatch = [name for name, column in (("seq", cp.seq), ("hash", cp.head_hash), ("count", cp.count),
                                              ("first_seq", cp.first_seq))
                    if statement.get(name) != column]
        purge = statement.get("purge") or {}
        if (purge.get("through_seq"), purge.get("through_hash") or "") != (cp.purge_through_seq,
                                                                            cp.purge_through_hash or ""):
            mismatch.append("purge")
        problem = None
        if mismatch:
            problem = Problem("checkpoint", cp.seq, f"checkpoint #{cp.seq}: column(s) {', '.join(mismatch)} differ "
                                                    f"from its signed statement")
        elif statement.get("count") != statement.get("seq", 0) - statement.get("first_seq", 0) + 1:
            problem = Problem("checkpoint", cp.seq, f"checkpoint #{cp.seq}: its signed count does not match "
                                                    f"its range")
        checked.append(CheckedCheckpoint(cp, statement, problem is None, problem))
    return checked


# --- Whole-log verification -------------------------------------------------------------------

def verify_chain(*, full: bool | None = None, batch: int = BATCH, reader: str = "auto") -> ChainReport:
    """Recompute the whole chain from the genesis, or from the signed checkpoint that precedes purged
    history, and check every signed checkpoint against it. ``full`` also rebuilds every entry from
    its columns; by default it does so only where the database cannot guarantee the columns match
    (SQLite, or a PostgreSQL guard that is missing). ``reader``: see scan(); inside an outer
    transaction, which may hold entries not committed yet, "auto" is the Python reader."""
    from django.utils import timezone

    from . import guards
    from .integrations import signing
    from .models import Checkpoint, CustodyEvent

    report = ChainReport(started_at=timezone.now())
    t0 = time.perf_counter()
    outer = connection.in_atomic_block
    if outer and reader != "python":
        if reader == "c":
            raise ValueError("the C reader cannot see the uncommitted entries of an outer transaction")
        reader = "python"
    # One snapshot for every query of the run, while appends go on (PostgreSQL: REPEATABLE READ).
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # First, before any savepoint: PostgreSQL exports no snapshot from a subtransaction.
        snapshot = export_snapshot() if reader != "python" else None
        guard_problems, columns_guaranteed = guards.status()
        if full is None:
            full = not columns_guaranteed
        report.mode = "full" if full else "fast"

        bounds = CustodyEvent.objects.aggregate(first=Min("seq"), last=Max("seq"))
        first, last = bounds["first"], bounds["last"]
        checked = check_checkpoints(list(Checkpoint.objects.order_by("seq", "id")), signing.public_key())
        valid = [c for c in checked if c.valid]
        report.checkpoints_verified = len(valid)
        report.latest_checkpoint = valid[-1].checkpoint if valid else None
        checkpoint_problems = [c.problem for c in checked if c.problem is not None]

        if first is None:
            report.anchor = "genesis"
            for c in valid:
                if c.statement.get("seq", 0) >= 1:
                    report.fail(Problem("removed", 1, f"the log is empty but checkpoint #{c.checkpoint.seq} of "
                                                      f"{c.checkpoint.created_at:%Y-%m-%d} attests "
                                                      f"{c.statement.get('count')} entries"))
                    break
        else:
            prev = _anchor(first, valid, report)
            if prev is not None:
                want = {c.statement["seq"] for c in valid if first <= c.statement.get("seq", 0) <= last}
                result = scan(first, last, prev=prev, want_hashes=want, batch=batch, reader=reader,
                              snapshot=snapshot)
                report.reader = result.reader
                report.events = result.events
                report.first_seq, report.last_seq, report.head_hash = first, result.last_seq, result.last_hash
                if result.problem is not None:
                    report.fail(result.problem)
                else:
                    _check_attested_hashes(valid, result, first, last, report)
                    if full or not columns_guaranteed:
                        problem = consistency_scan(first, last)
                        if problem is not None:
                            report.fail(problem)
        for problem in checkpoint_problems:
            report.fail(problem)
        _check_timestamps([report.anchor_checkpoint, report.latest_checkpoint], report)
        if first is not None:
            _check_checkpoint_events(checked, report)
        for message in guard_problems:
            report.fail(Problem("unprotected", None, message))
    report.duration = time.perf_counter() - t0
    return report


def _anchor(first: int, valid: list[CheckedCheckpoint], report: ChainReport) -> str | None:
    """The hash entry ``first`` must chain onto: the genesis, or a signed checkpoint's attestation."""
    if first == 1:
        report.anchor = "genesis"
        return GENESIS_HASH
    for c in reversed(valid):
        s = c.statement
        purge = s.get("purge") or {}
        if purge.get("through_seq") == first - 1 and purge.get("through_hash"):
            report.anchor = f"checkpoint #{c.checkpoint.seq} (purge through #{first - 1})"
            report.anchor_checkpoint = c.checkpoint
            return purge["through_hash"]
        if s.get("seq") == first - 1:
            report.anchor = f"checkpoint #{c.checkpoint.seq}"
            report.anchor_checkpoint = c.checkpoint
            return s["hash"]
    missing = "#1" if first == 2 else f"#1–#{first - 1}"
    report.fail(Problem("removed", first - 1, f"entries {missing} are missing and no signed checkpoint attests "
                                              f"their purge"))
    return None


def _check_attested_hashes(valid, result: ScanResult, first: int, last: int, report: ChainReport) -> None:
    previous_ok = first - 1
    for c in sorted(valid, key=lambda c: c.statement["seq"]):
        s = c.statement["seq"]
        if s < first:
            continue
        if s > last:
            report.fail(Problem("removed", last + 1, f"the log ends at #{last} but checkpoint #{s} of "
                                                     f"{c.checkpoint.created_at:%Y-%m-%d %H:%M} UTC attests entries "
                                                     f"up to #{s}: entries #{last + 1}–#{s} were removed"))
            return
        if result.hashes_at.get(s) != c.statement["hash"]:
            report.fail(Problem("altered", previous_ok + 1,
                                f"entry #{s} differs from signed checkpoint #{s} of "
                                f"{c.checkpoint.created_at:%Y-%m-%d %H:%M} UTC: an entry between #{previous_ok + 1} "
                                f"and #{s} was rewritten and the hashes after it recomputed"))
            return
        previous_ok = s


def _check_timestamps(checkpoints, report: ChainReport) -> None:
    """RFC 3161 tokens of the checkpoints the result relies on (anchor, latest), when a CA is known."""
    from .integrations import tsa

    seen = set()
    for cp in checkpoints:
        if cp is None or cp.pk in seen or not cp.tsa_token:
            continue
        seen.add(cp.pk)
        ok, why = tsa.verify(bytes(cp.tsa_token), cp.payload.encode())
        if ok is False:
            report.fail(Problem("checkpoint", cp.seq, f"checkpoint #{cp.seq}: its RFC 3161 timestamp does not verify "
                                                      f"({why})"))


def _check_checkpoint_events(checked, report: ChainReport) -> None:
    """Each custody.checkpointed entry names a checkpoint; its row must still be there."""
    from .models import CustodyEvent

    known = {(c.checkpoint.seq, c.checkpoint.signature) for c in checked}
    recorded = CustodyEvent.objects.filter(action="custody.checkpointed").values_list("seq", "details")
    for seq, details in recorded.iterator(chunk_size=2000):
        if (details.get("seq"), details.get("signature")) not in known:
            report.fail(Problem("checkpoint", details.get("seq"), f"checkpoint #{details.get('seq')} recorded by "
                                                                  f"entry #{seq} is missing or invalid"))
            return


# --- Segments (custody report of one recording) -----------------------------------------------

@dataclass
class SegmentProof:
    ok: bool
    ranges: list[tuple[int, int]]
    checkpoints: list  # the signed checkpoints the proof ends on
    unsealed_from: int | None  # entries after the latest checkpoint: verified up to the head, not signed yet
    head_seq: int | None
    problems: list[Problem]


def prove_entries(seqs: list[int]) -> SegmentProof:
    """Prove the given entries are unaltered parts of the signed chain.

    Each entry is verified from its own stored bytes up to the first signed checkpoint at or after it
    (at most one checkpoint period of entries), whose signature fixes the hash reached. Entries after
    the latest checkpoint are verified up to the head of the log: intact, but not yet signed.
    """
    from .integrations import signing
    from .models import Checkpoint, CustodyEvent

    problems: list[Problem] = []
    if not seqs:
        return SegmentProof(True, [], [], None, None, [])
    outer = connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader = "python" if outer else "auto"
        snapshot = export_snapshot() if reader != "python" else None
        head = CustodyEvent.objects.aggregate(m=Max("seq"))["m"]
        checked = check_checkpoints(list(Checkpoint.objects.order_by("seq", "id")), signing.public_key())
        problems.extend(c.problem for c in checked if c.problem is not None)
        valid = sorted((c for c in checked if c.valid), key=lambda c: c.statement["seq"])
        ends = []
        for s in sorted(set(seqs)):
            end = next((c for c in valid if c.statement["seq"] >= s), None)
            ends.append((s, end))
        ranges: list[list] = []
        for s, end in ends:
            hi = end.statement["seq"] if end else head
            if ranges and s <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], hi)
                if end and end not in ranges[-1][2]:
                    ranges[-1][2].append(end)
            else:
                ranges.append([s, hi, [end] if end else []])
        used = []
        for lo, hi, cps in ranges:
            want = {c.statement["seq"] for c in cps}
            result = scan(lo, hi, prev=None, want_hashes=want, reader=reader, snapshot=snapshot)
            if result.problem is not None:
                problems.append(result.problem)
                continue
            for c in cps:
                if result.hashes_at.get(c.statement["seq"]) != c.statement["hash"]:
                    problems.append(Problem("altered", lo, f"entries #{lo}–#{c.statement['seq']} differ from signed "
                                                           f"checkpoint #{c.statement['seq']}"))
                else:
                    used.append(c.checkpoint)
            # The entries shown on the report are read from their columns: prove those too.
            for row in full_rows([s for s in seqs if lo <= s <= hi]).values():
                if row["canonical"] is not None and canonical_from_row(row) != row["canonical"]:
                    problems.append(Problem("altered", row["seq"], f"entry #{row['seq']}: column(s) "
                                                                   f"{', '.join(_differing_fields(row))} differ from "
                                                                   f"the signed record"))
        latest_seq = valid[-1].statement["seq"] if valid else 0
        unsealed = min((s for s in seqs if s > latest_seq), default=None)
    return SegmentProof(not problems, [(lo, hi) for lo, hi, _ in ranges], used, unsealed, head, problems)
