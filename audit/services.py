"""Writes to the custody log. Call from inside the transaction that makes the change."""
import datetime as dt
import hashlib
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from .models import CustodyEvent

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the chain's advisory lock in PostgreSQL.
_CHAIN_LOCK_KEY = 0x7E301


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


def _lock_chain() -> None:
    # Concurrent writers must never fork the chain: serialise appends until the transaction ends.
    # SQLite transactions are already serialised (IMMEDIATE mode in settings).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def custody_event_append(
    *,
    action: str,
    subject: Any = None,
    subject_type: str = "",
    subject_id: str = "",
    organisation=None,
    actor=None,
    actor_label: str = "",
    recording=None,
    motif: str = "",
    recipients: list | None = None,
    details: dict | None = None,
    now=None,
) -> CustodyEvent:
    """Append one event to the custody chain (CSI R241-14: author, date, time, motif, recipients)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("custody events are written inside the transaction of the change")
    if subject is not None:
        subject_type = subject_type or subject._meta.label_lower
        subject_id = subject_id or str(subject.pk)
    if recording is None and subject is not None and subject._meta.label_lower == "evidence.recording":
        recording = subject
    if organisation is None and recording is not None:
        organisation = recording.organisation
    if not actor_label:
        actor_label = f"user:{actor.username}" if actor is not None else "system"
    recipients = list(recipients or [])
    details = json.loads(json.dumps(details or {}, default=str))
    occurred_at = now or timezone.now()

    _lock_chain()
    last = CustodyEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    canonical = custody_event_canonical(
        seq=seq,
        occurred_at=occurred_at,
        organisation_id=organisation.pk if organisation else None,
        actor_id=actor.pk if actor else None,
        actor_label=actor_label,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        recording_id=recording.pk if recording else None,
        motif=motif,
        recipients=recipients,
        details=details,
    )
    return CustodyEvent.objects.create(
        seq=seq,
        occurred_at=occurred_at,
        organisation=organisation,
        actor=actor,
        actor_label=actor_label,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        recording=recording,
        motif=motif,
        recipients=recipients,
        details=details,
        prev_hash=prev_hash,
        hash=custody_event_hash(prev_hash, canonical),
    )
