"""Verifying the custody log: signed checkpoints, the whole-log verification, and the proof that
given entries (one recording's) are unaltered parts of the signed chain.

Enforces CSI R241-14 and LIL art. 101 (the log is tamper-evident, its checkpoints signed and
time-stamped, and shown to the CNIL); the chain format is audit/chain.py, the reading audit/scan.py.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Max, Min

from .chain import GENESIS_HASH, ChainReport, Problem, canonical_from_row
from .scan import (
    BATCH,
    ScanResult,
    consistency_scan,
    differing_fields,
    export_snapshot,
    full_rows,
    scan,
)


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
                                                                   f"{', '.join(differing_fields(row))} differ from "
                                                                   f"the signed record"))
        latest_seq = valid[-1].statement["seq"] if valid else 0
        unsealed = min((s for s in seqs if s > latest_seq), default=None)
    return SegmentProof(not problems, [(lo, hi) for lo, hi, _ in ranges], used, unsealed, head, problems)
