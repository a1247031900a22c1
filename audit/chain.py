"""The custody chain's format: canonical bytes, hashes, and the words for what is wrong.

Every hash is recomputed from what the database returns (hashlib, or OpenSSL in the optional C
reader audit/_chainscan.c): reading in audit/scan.py, the whole-log verification and the proofs in
audit/verification.py; nothing asks the database to compute or compare a hash. The same rules
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
from dataclasses import dataclass, field

GENESIS_HASH = "0" * 64

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
