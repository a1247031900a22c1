"""Writes on the custody log: appends, signed checkpoints, the three-year purge, verification runs
and their alerts. ``custody_event_append`` is called from inside the transaction that makes the change.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from . import guards
from .chain import (  # noqa: F401  (re-exported: callers import them from here)
    GENESIS_HASH,
    ChainReport,
    custody_event_canonical,
    custody_event_hash,
)
from .integrations import signing, tsa
from .models import Alert, Checkpoint, CustodyEvent, Verification
from .verification import verify_chain  # noqa: F401  (re-exported, as above)

log = logging.getLogger(__name__)

# Arbitrary constant naming the chain's advisory lock in PostgreSQL.
_CHAIN_LOCK_KEY = 0x7E301
CHECKPOINT_FORMAT = "temoin-custody-checkpoint/1"


def _lock_referenced_rows(events: list[dict]) -> None:
    """Take the row locks the new entries' foreign keys need *before* the chain's lock.

    PostgreSQL checks a foreign key by locking the referenced row FOR KEY SHARE, at the latest at
    COMMIT (Django's constraints are deferred). A writer holding the chain's lock and waiting there
    for a recording that another transaction locked FOR UPDATE — which then waits for the chain's
    lock — is a deadlock: the live probe of issue 17 met it (an annotation against a hold, a 500).
    Taken here, before the chain's lock, such a wait holds nothing the other one needs. The change's
    own rows (an annotation of that recording) reference the same rows and are covered as well."""
    if connection.vendor != "postgresql":
        return
    targets: dict[str, set[int]] = {}
    for e in events:
        subject, recording = e.get("subject"), e.get("recording")
        if recording is None and subject is not None and subject._meta.label_lower == "evidence.recording":
            recording = subject
        organisation = e.get("organisation") or (recording.organisation if recording is not None else None)
        for obj in (recording, organisation, e.get("actor")):
            if obj is not None and obj.pk is not None:
                targets.setdefault(obj._meta.db_table, set()).add(obj.pk)
    with connection.cursor() as cursor:
        for table in sorted(targets):
            cursor.execute(f'SELECT 1 FROM "{table}" WHERE "id" = ANY(%s) ORDER BY "id" FOR KEY SHARE',
                           [sorted(targets[table])])


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
    return custody_events_append_many([dict(
        action=action, subject=subject, subject_type=subject_type, subject_id=subject_id,
        organisation=organisation, actor=actor, actor_label=actor_label, recording=recording,
        motif=motif, recipients=recipients, details=details,
    )], now=now)[0]


def custody_events_append_many(events: list[dict], *, now=None) -> list[CustodyEvent]:
    """Append events (keyword arguments of ``custody_event_append``) in order, with one INSERT.

    The chain is computed under one lock, exactly as if each event had been appended alone; the
    retention sweep uses it to log a whole batch of erasures.
    """
    if not events:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("custody events are written inside the transaction of the change")
    _lock_referenced_rows(events)
    _lock_chain()
    # Taken under the lock, so that entry times never go backwards along the chain (the purge
    # removes a prefix of the chain by age).
    occurred_at = now or timezone.now()
    last = CustodyEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (last[0], last[1]) if last else (0, GENESIS_HASH)
    rows = []
    for e in events:
        subject, recording = e.get("subject"), e.get("recording")
        subject_type = e.get("subject_type") or (subject._meta.label_lower if subject is not None else "")
        subject_id = e.get("subject_id") or (str(subject.pk) if subject is not None else "")
        if recording is None and subject is not None and subject._meta.label_lower == "evidence.recording":
            recording = subject
        organisation = e.get("organisation") or (recording.organisation if recording is not None else None)
        actor = e.get("actor")
        actor_label = e.get("actor_label") or (f"user:{actor.username}" if actor is not None else "system")
        recipients = json.loads(json.dumps(list(e.get("recipients") or []), default=str))
        details = json.loads(json.dumps(e.get("details") or {}, default=str))
        motif = e.get("motif") or ""
        seq += 1
        canonical = custody_event_canonical(
            seq=seq, occurred_at=occurred_at, organisation_id=organisation.pk if organisation else None,
            actor_id=actor.pk if actor else None, actor_label=actor_label, action=e["action"],
            subject_type=subject_type, subject_id=subject_id, recording_id=recording.pk if recording else None,
            motif=motif, recipients=recipients, details=details,
        )
        digest = custody_event_hash(prev_hash, canonical)
        rows.append(CustodyEvent(
            seq=seq, occurred_at=occurred_at, organisation=organisation, actor=actor, actor_label=actor_label,
            action=e["action"], subject_type=subject_type, subject_id=str(subject_id), recording=recording,
            motif=motif, recipients=recipients, details=details, prev_hash=prev_hash, hash=digest,
            canonical=canonical,
        ))
        prev_hash = digest
    return CustodyEvent.objects.bulk_create(rows)


# --- Signed checkpoints ------------------------------------------------------------------------

def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _statement_bytes(statement: dict) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checkpoint_document(cp: Checkpoint) -> dict:
    """The signed document as stored in the write-once store and handed to verifiers."""
    doc = {"format": CHECKPOINT_FORMAT, "payload": cp.payload, "signature": cp.signature,
           "algorithm": "Ed25519", "key_id": cp.key_id}
    key = signing.public_key()
    if key is not None and signing.key_id(key) == cp.key_id:
        doc["public_key_pem"] = signing.public_key_pem(key)
    if cp.tsa_token:
        import base64

        doc["timestamp"] = {"rfc3161_token": base64.b64encode(bytes(cp.tsa_token)).decode(),
                            "tsa_url": cp.tsa_url, "time": _utc(cp.tsa_time) if cp.tsa_time else None}
    return doc


def custody_checkpoint_create(*, reason: str = Checkpoint.Reason.SCHEDULED, now: dt.datetime | None = None,
                              purge_through_seq: int | None = None, purge_before: dt.datetime | None = None,
                              force: bool = False) -> Checkpoint | None:
    """Sign the head of the log (seq, hash, count) with the deployment key, optionally timestamp it
    (RFC 3161), store the signed document write-once, and record it in the chain.

    Returns None when nothing was appended since the last checkpoint (unless ``force``).
    """
    import base64

    from evidence.integrations.store import ObjectExists, get_store

    now = now or timezone.now()
    # A consistent head: under the chain lock, every earlier append has committed and none starts.
    with transaction.atomic():
        _lock_chain()
        head = CustodyEvent.objects.order_by("-seq").values_list("seq", "hash").first()
        bounds = CustodyEvent.objects.aggregate(first=Min("seq"))
        count = CustodyEvent.objects.count()
        latest = Checkpoint.objects.order_by("-seq", "-id").first()
        purge_hash = ""
        if purge_through_seq is not None:
            purge_hash = CustodyEvent.objects.values_list("hash", flat=True).get(seq=purge_through_seq)
    if head is None:
        return None
    if not force and latest is not None and latest.event_seq == head[0]:
        return None  # only the previous checkpoint's own entry since: nothing new to attest
    statement = {
        "format": CHECKPOINT_FORMAT,
        "seq": head[0],
        "hash": head[1],
        "first_seq": bounds["first"],
        "count": count,
        "created_at": _utc(now),
        "reason": str(reason),
        "retention_years": settings.CUSTODY_RETENTION_YEARS,
        "purge": ({"through_seq": purge_through_seq, "through_hash": purge_hash,
                   "before": _utc(purge_before) if purge_before else None}
                  if purge_through_seq is not None else None),
    }
    payload = _statement_bytes(statement)
    signature, public = signing.sign(payload)
    statement_key_id = signing.key_id(public)

    stamp = None
    if settings.CUSTODY_TSA_URL:
        try:
            stamp = tsa.timestamp(payload)
        except tsa.TimestampError as exc:
            # The checkpoint stands on its signature; a missing timestamp is reported, not fatal.
            log.error("custody checkpoint #%s not timestamped: %s", head[0], exc)
            alert_raise(kind=Alert.Kind.CHECKPOINT_FAILED, seq=head[0], problem_kind="",
                         message=f"Point de contrôle n° {head[0]} non horodaté : {exc}", now=now)

    cp = Checkpoint(
        seq=head[0], head_hash=head[1], first_seq=bounds["first"], count=count, created_at=now, reason=reason,
        purge_through_seq=purge_through_seq, purge_through_hash=purge_hash, purge_before=purge_before,
        payload=payload.decode(), signature=signature, key_id=statement_key_id,
        tsa_url=stamp.url if stamp else "", tsa_token=stamp.token if stamp else None,
        tsa_time=stamp.time if stamp else None,
    )
    # Write-once copy, kept a year longer than the entries it attests (CSI R241-14: three years).
    store = get_store()
    retain_until = now + relativedelta(years=settings.CUSTODY_RETENTION_YEARS + 1)
    body = json.dumps(checkpoint_document(cp), sort_keys=True, indent=2, ensure_ascii=False).encode()
    key = f"custody/checkpoints/{head[0]}.json"
    for attempt in range(1, 100):
        try:
            stored = store.put(key, io.BytesIO(body), retain_until=retain_until, content_type="application/json")
            break
        except ObjectExists:
            # Same head signed twice (a forced or purge checkpoint): keep both documents.
            key = f"custody/checkpoints/{head[0]}.{attempt}.json"
    cp.store_key, cp.store_version_id = stored.key, stored.version_id

    with transaction.atomic():
        event = custody_event_append(
            action="custody.checkpointed", subject_type="audit.checkpoint", subject_id=str(head[0]),
            actor_label="system:custody", now=now,
            details={"seq": head[0], "hash": head[1], "count": count, "first_seq": bounds["first"],
                     "reason": str(reason), "key_id": statement_key_id, "signature": signature,
                     "store_key": stored.key, "purge_through_seq": purge_through_seq,
                     "timestamp": _utc(stamp.time) if stamp else None,
                     "payload_b64": base64.b64encode(payload).decode()},
        )
        cp.event_seq = event.seq
        cp.save(force_insert=True)
    return cp


# --- The three-year purge ----------------------------------------------------------------------

@dataclass
class PurgeResult:
    cutoff: dt.datetime
    through_seq: int | None
    removed: int
    checkpoint: Checkpoint | None
    dry_run: bool


def custody_purge(*, now: dt.datetime | None = None, dry_run: bool = False) -> PurgeResult:
    """CSI R241-14: the log is kept three years. Sign a checkpoint of the whole log first, then
    delete the oldest entries, a prefix of the chain all older than the retention period, so that
    the chain still verifies from that checkpoint.

    The database checks each deletion again against its own clock (audit/guards.py): a ``now`` in
    the future cannot purge early.
    """
    now = now or timezone.now()
    if not dry_run and now > timezone.now() + dt.timedelta(minutes=5):
        raise ValueError("a purge cannot run with a future date: the database checks each entry's age against "
                         "its own clock (use --dry-run to see what a later purge would remove)")
    cutoff = now - relativedelta(years=settings.CUSTODY_RETENTION_YEARS)
    first_kept = CustodyEvent.objects.filter(occurred_at__gte=cutoff).aggregate(m=Min("seq"))["m"]
    # Entries before the first one to keep; when every entry is old, all of them (the checkpoint's
    # own entry, written below, becomes the first entry of the log).
    through = first_kept - 1 if first_kept is not None else CustodyEvent.objects.aggregate(m=Max("seq"))["m"]
    first = CustodyEvent.objects.aggregate(m=Min("seq"))["m"]
    if through is None or first is None or through < first:
        return PurgeResult(cutoff, None, 0, None, dry_run)
    count = CustodyEvent.objects.filter(seq__lte=through).count()
    if dry_run:
        return PurgeResult(cutoff, through, count, None, True)

    checkpoint = custody_checkpoint_create(reason=Checkpoint.Reason.PURGE, now=now, purge_through_seq=through,
                                           purge_before=cutoff, force=True)
    with transaction.atomic():
        removed = guards.purge_through(through)
        custody_event_append(
            action="custody.purged", subject_type="audit.checkpoint", subject_id=str(checkpoint.seq),
            actor_label="system:custody", now=now,
            details={"through_seq": through, "through_hash": checkpoint.purge_through_hash, "removed": removed,
                     "before": _utc(cutoff), "checkpoint_seq": checkpoint.seq,
                     "retention_years": settings.CUSTODY_RETENTION_YEARS},
        )
    log.info("custody log purged: %s entries up to #%s (older than %s)", removed, through, cutoff.isoformat())
    return PurgeResult(cutoff, through, removed, checkpoint, False)


# --- Verification runs and alerts ----------------------------------------------------------------

# The hourly run relies on the database's guarantees (audit/guards.py); once a day it also
# rebuilds every entry from its columns, which those guarantees cannot cover against a superuser.
FULL_CHECK_EVERY = dt.timedelta(hours=24)


def custody_verify_scheduled(*, triggered_by: str = "beat", now: dt.datetime | None = None) -> ChainReport:
    """The periodic verification (CSI R241-14: the log stays tamper-evident): full when none was
    run in the last ``FULL_CHECK_EVERY``, otherwise the verification's own default mode."""
    now = now or timezone.now()
    last_full = Verification.objects.filter(mode=Verification.Mode.FULL).values_list("started_at", flat=True).first()
    full = True if last_full is None or now - last_full >= FULL_CHECK_EVERY else None
    report, _ = custody_verify(full=full, triggered_by=triggered_by)
    return report


def custody_verify(*, full: bool | None = None, triggered_by: str = "", record: bool = True) -> tuple[ChainReport, Verification | None]:
    """Verify the whole log (audit.verification.verify_chain), record the result, and alert administrators
    when it is not intact."""
    report = verify_chain(full=full)
    if not record:
        return report, None
    first = report.first_problem
    verification = Verification.objects.create(
        started_at=report.started_at, duration=report.duration, mode=report.mode, ok=report.ok,
        events=report.events, first_seq=report.first_seq, last_seq=report.last_seq, head_hash=report.head_hash,
        anchor=report.anchor[:100], latest_checkpoint=report.latest_checkpoint,
        checkpoints=report.checkpoints_verified, problem_kind=first.kind if first else "",
        problem_seq=first.seq if first else None, problems=[p.as_dict() for p in report.problems[:50]],
        triggered_by=triggered_by[:100],
    )
    if not report.ok:
        log.error("%s", report.summary())
        alert_raise(kind=Alert.Kind.CHAIN_BROKEN, seq=first.seq, problem_kind=first.kind,
                     message=f"Journal de traçabilité non intègre — {first.label}"
                             f"{f' (entrée n° {first.seq})' if first.seq is not None else ''} : {first.message}",
                     verification=verification, now=report.started_at)
    return report, verification


def alert_raise(*, kind: str, seq: int | None, problem_kind: str, message: str, verification=None,
                organisation=None, now: dt.datetime | None = None) -> Alert:
    """One open alert per problem: a problem seen again bumps the open alert instead of adding one."""
    now = now or timezone.now()
    alert = Alert.objects.filter(kind=kind, seq=seq, problem_kind=problem_kind, acknowledged_at__isnull=True).first()
    if alert is not None:
        alert.last_seen_at = now
        alert.occurrences += 1
        alert.verification = verification or alert.verification
        alert.message = message
        alert.save(update_fields=["last_seen_at", "occurrences", "verification", "message"])
        return alert
    return Alert.objects.create(kind=kind, seq=seq, problem_kind=problem_kind[:64], message=message,
                                verification=verification, organisation=organisation, created_at=now,
                                last_seen_at=now)


def alert_acknowledge(*, alert: Alert, by, note: str = "", now: dt.datetime | None = None) -> Alert:
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now or timezone.now()
        alert.acknowledged_by = by
        alert.acknowledgement = note
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledgement"])
    return alert


# --- Register exports ----------------------------------------------------------------------------

def register_export_record(*, user, fmt: str, filters: dict, count: int) -> CustodyEvent:
    """Extracting the register communicates personal data (who consulted what): it is logged too."""
    with transaction.atomic():
        return custody_event_append(
            action="register.exported", subject_type="audit.register", subject_id=fmt,
            organisation=user.organisation, actor=user,
            details={"format": fmt, "filters": {k: v for k, v in filters.items() if v}, "entries": count},
        )
