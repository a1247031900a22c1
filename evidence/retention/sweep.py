"""Erasure when the retention period ends (CSI L241-2, R241-13), every step logged (CSI R241-14).

An erasure has two logged phases, so that the custody log is true whatever happens in between:

1. intent: under the row lock the recording is checked again (due, not held), marked ``erasing``
   (no one may consult it from then on) and ``recording.erasure_started`` names every object to
   delete, in the same transaction;
2. the store deletes every version of every object (it refuses before the retention end or under
   a legal hold, whatever the caller says);
3. completion: ``recording.erased`` and the tombstone in one transaction, or, when the store
   refused or failed, ``recording.erasure_failed`` naming what is left; the recording stays
   ``erasing`` and the next sweep tries again.

Each recording settles on its own: one that cannot be erased is reported and alerted and never
stops the others. What follows a recording goes with it: its copies (playback, poster, sidecar,
redacted copies), its comments, redaction boxes and individual grants, the export packages that
carry it (and so their share links), an Axis container's attachments. A duplicate has its own
objects and its own end, equal to its original's when both come from the same recording time.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from accounts.models import User
from audit.services import custody_event_append, custody_events_append_many

from ..integrations.store import StoreError, get_store
from ..models import Annotation, Recording, RecordingGrant
from . import RetentionRefused
from .declarants import declarants_erase
from .erasure import objects_erase_logged
from .holds import active_holds_q
from .objects import exports_carrying, recording_store_keys

log = logging.getLogger(__name__)

# The tombstone keeps identifiers, hash, size, dates, wearer, camera and the rule applied; the
# rest is personal data that goes with the images (CSI R241-13).
TOMBSTONE_CLEARED = dict(
    location=None, track=None, notice_omitted_reason="", trigger_source="", intervention="",
    sidecar_errors=[], media_info={}, status_message="", playback_key="", poster_key="", sidecar_key="",
    playback_version_id="", poster_version_id="", sidecar_version_id="",
)

# A row still ``receiving`` this long after its collection began was left by a process that died.
STUCK_RECEIVING_AFTER = dt.timedelta(hours=24)


@dataclass
class SweepReport:
    erased: list = field(default_factory=list)
    held: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (recording id, why): not erased this time
    due: list = field(default_factory=list)
    exports_erased: list = field(default_factory=list)
    settled: list = field(default_factory=list)  # rows left ``receiving`` by a dead process
    declarants_erased: list = field(default_factory=list)  # requisitions whose declarant was erased


@dataclass
class _Outcome:
    recording: Recording
    keys: list
    versions: int = 0
    deleted: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def _rule(rec: Recording) -> str:
    return f"{rec.organisation.retention} — {rec.organisation.retention_basis}"[:300]


def _erasure_begin(ids: list[int], *, now, by, strict: bool, report: SweepReport) -> list[tuple[Recording, list]]:
    """Phase 1: re-check each recording under its row lock, mark it ``erasing``, log the intent."""
    from evidence.redaction.models import Derivative

    with transaction.atomic():
        recs = list(Recording.objects.select_for_update().select_related("organisation")
                    .filter(pk__in=ids).order_by("retain_until", "pk"))
        # A fresh query after the lock: a hold committed meanwhile is seen here (the hold wins).
        held = set(Recording.objects.filter(pk__in=ids).filter(active_holds_q()).values_list("pk", flat=True))
        derivatives: dict[int, list] = {}
        for d in Derivative.objects.filter(recording_id__in=ids).only("recording_id", "store_key", "store_version_id"):
            derivatives.setdefault(d.recording_id, []).append(d)
        begun, intents = [], []
        for rec in recs:
            if rec.status in (Recording.Status.ERASED, Recording.Status.RECEIVING):
                continue
            if rec.retain_until is None or now < rec.retain_until:
                why = f"recording {rec.pk} is kept until {rec.retain_until}: erasure refused"
            elif rec.pk in held:
                why = f"recording {rec.pk} is held for a procedure: erasure refused"
            else:
                keys = recording_store_keys(rec, derivatives=derivatives.get(rec.pk, []))
                if rec.status != Recording.Status.ERASING:  # not a retry: the intent is new
                    intents.append(dict(
                        action="recording.erasure_started", subject=rec, actor=by,
                        actor_label="" if by else "system:retention",
                        details={"rule": _rule(rec), "retain_until": rec.retain_until.isoformat(),
                                 "swept_at": now.isoformat(), "keys": [k for k, _ in keys],
                                 "status": rec.status}))
                begun.append((rec, keys))
                continue
            if strict:
                raise RetentionRefused(why)
            report.refused.append((rec.pk, why))
        Recording.objects.filter(pk__in=[e["subject"].pk for e in intents]).update(
            status=Recording.Status.ERASING, erasure_started_at=now)
        custody_events_append_many(intents)
    return begun


def _objects_delete(rec: Recording, keys: list, now: dt.datetime) -> _Outcome:
    """Phase 2: every version of every object; the store refuses under a lock or a legal hold."""
    store = get_store()
    # The store checks against both clocks: an injected "now" can never erase early.
    at = min(now, timezone.now())
    outcome = _Outcome(rec, keys)
    for key, _version in keys:
        try:
            outcome.versions += store.delete(key, now=at)
            outcome.deleted.append(key)
        except StoreError as exc:  # refused (lock, legal hold, clock) or failed: reported, retried
            outcome.errors.append(f"{key}: {exc}"[:1000])
    return outcome


def _erasure_complete(outcomes: list[_Outcome], *, now, by, strict: bool, report: SweepReport) -> None:
    """Phase 3: the tombstone and ``recording.erased``, or ``recording.erasure_failed``."""
    from evidence.redaction.models import Track

    done = [o for o in outcomes if not o.errors]
    failed = [o for o in outcomes if o.errors]
    with transaction.atomic():
        ids = [o.recording.pk for o in done]
        by_rule: dict[str, list[int]] = {}
        for o in done:
            by_rule.setdefault(_rule(o.recording), []).append(o.recording.pk)
        for rule, pks in by_rule.items():
            Recording.objects.filter(pk__in=pks).update(
                status=Recording.Status.ERASED, erased_at=now, erasure_rule=rule, **TOMBSTONE_CLEARED)
        # What only made sense with the images: timecoded comments, the redaction boxes (where
        # faces were), individual grants to see them.
        Annotation.objects.filter(recording_id__in=ids).delete()
        Track.objects.filter(job__recording_id__in=ids).delete()
        RecordingGrant.objects.filter(recording_id__in=ids).delete()
        events = [dict(action="recording.erased", subject=o.recording, actor=by,
                       actor_label="" if by else "system:retention",
                       details={"rule": _rule(o.recording), "retain_until": o.recording.retain_until.isoformat(),
                                "swept_at": now.isoformat(), "keys": [k for k, _ in o.keys],
                                "versions_deleted": o.versions, "sha256": o.recording.sha256,
                                "size": o.recording.size})
                  for o in done]
        for o in failed:
            message = "; ".join(o.errors)[:2000]
            if o.recording.status_message == message:
                continue  # the same refusal as last time: logged once, alerted once
            Recording.objects.filter(pk=o.recording.pk).update(status_message=message)
            events.append(dict(action="recording.erasure_failed", subject=o.recording, actor=by,
                               actor_label="" if by else "system:retention",
                               details={"errors": o.errors[:20], "deleted": o.deleted,
                                        "remaining": [k for k, _ in o.keys if k not in o.deleted],
                                        "swept_at": now.isoformat()}))
        custody_events_append_many(events)
    report.erased.extend(o.recording.pk for o in done)
    for o in failed:
        why = f"recording {o.recording.pk}: erasure not finished, retried at the next sweep — " + "; ".join(o.errors)
        report.refused.append((o.recording.pk, why))
        _alert_erasure_failed(o, now)
    if failed and strict:
        raise RetentionRefused(report.refused[-1][1])


def _alert_erasure_failed(outcome: _Outcome, now: dt.datetime) -> None:
    from audit.models import Alert
    from audit.services import alert_raise

    log.error("erasure of recording %s not finished: %s", outcome.recording.pk, "; ".join(outcome.errors))
    alert_raise(kind=Alert.Kind.ERASURE_FAILED, seq=None, problem_kind=f"recording:{outcome.recording.pk}",
                organisation=outcome.recording.organisation, now=now, message=(f"Effacement de l'enregistrement n° {outcome.recording.pk} inachevé (CSI R241-13) : "
                         + "; ".join(outcome.errors))[:2000])


def _erase_batch(ids: list[int], *, now: dt.datetime, by: User | None, strict: bool, report: SweepReport) -> None:
    begun = _erasure_begin(ids, now=now, by=by, strict=strict, report=report)
    if begun:
        outcomes = [_objects_delete(rec, keys, now) for rec, keys in begun]
        _erasure_complete(outcomes, now=now, by=by, strict=strict, report=report)


def _checked_clock(now: dt.datetime | None) -> dt.datetime:
    real_now = timezone.now()
    now = now or real_now
    if now > real_now + dt.timedelta(minutes=5):
        raise RetentionRefused("refusing to erase with a clock set in the future")
    return now


def _store_now(now: dt.datetime) -> dt.datetime:
    """The sweep's time, never ahead of the store's own clock.

    Retention ends fall at local midnight: a server whose clock runs ahead of the store's would
    otherwise begin erasures the store then refuses ("still locked", or a skewed request).
    """
    try:
        store_clock = get_store().clock()
    except StoreError as exc:
        log.warning("retention sweep: the store's clock could not be read (%s); using ours", exc)
        return now
    return min(now, store_clock - dt.timedelta(seconds=1))


def recording_erase(*, recording: Recording, now: dt.datetime | None = None, by: User | None = None) -> Recording:
    """Erase one recording's media and keep its tombstone (CSI R241-13).

    Refused before the retention end and under a hold, whoever asks (administrators included).
    Idempotent: an erased recording is returned unchanged.
    """
    now = _checked_clock(now)
    report = SweepReport()
    _erase_batch([recording.pk], now=now, by=by, strict=True, report=report)
    exports_follow_recordings(now=now, report=report)
    return Recording.objects.get(pk=recording.pk)


def recordings_due_for_erasure(*, now: dt.datetime, organisation=None):
    qs = Recording.objects.filter(retain_until__lte=now).exclude(
        status__in=[Recording.Status.ERASED, Recording.Status.RECEIVING])
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    return qs


def recordings_settle_stuck(*, now: dt.datetime, report: SweepReport | None = None) -> list[int]:
    """Rows left ``receiving`` by a process that died are settled as failed: the clip is still on
    the camera (or with the sender), the next collection reuses the row, and the sweep erases it
    when its end comes like any other (it would otherwise be kept forever)."""
    limit = max(STUCK_RECEIVING_AFTER, dt.timedelta(seconds=2 * settings.TEMOIN_TASK_TIME_LIMIT))
    settled = []
    for pk in Recording.objects.filter(status=Recording.Status.RECEIVING,
                                       ingested_at__lt=min(now, timezone.now()) - limit).values_list("pk", flat=True):
        with transaction.atomic():
            rec = Recording.objects.select_for_update().get(pk=pk)
            if rec.status != Recording.Status.RECEIVING:
                continue
            message = f"collection interrupted (no worker finished it within {limit}): settled as failed"
            rec.status, rec.status_message = Recording.Status.FAILED, message
            rec.save(update_fields=["status", "status_message"])
            custody_event_append(action="recording.store_failed", subject=rec, actor_label="system:retention",
                                 details={"error": message, "final": True, "settled": True})
        settled.append(pk)
    if report is not None:
        report.settled.extend(settled)
    return settled


def retention_sweep(*, now: dt.datetime | None = None, dry_run: bool = False, batch_size: int = 500) -> SweepReport:
    """Erase every recording whose retention ended and that no hold covers (at least hourly).

    Resumable and idempotent: recordings are erased in batches; a crash leaves the log true (an
    intent without its completion, finished by the next run) and no recording is erased twice. A
    hold placed while the sweep runs wins: each batch is re-checked under row locks, and the store
    itself refuses to delete an object under legal hold. One recording that cannot be erased is
    reported, alerted and retried; it never stops the others.
    """
    now = _checked_clock(now)
    report = SweepReport()
    if not dry_run:
        recordings_settle_stuck(now=now, report=report)
    at = _store_now(now)
    held = ExpressionWrapper(active_holds_q(), output_field=BooleanField())
    due = recordings_due_for_erasure(now=at).annotate(_held=held).order_by("retain_until", "pk")
    todo = []
    for pk, is_held in due.values_list("pk", "_held").iterator(chunk_size=2000):
        report.due.append(pk)
        (report.held if is_held else todo).append(pk)
    if dry_run:
        return report
    for i in range(0, len(todo), batch_size):
        try:
            _erase_batch(todo[i:i + batch_size], now=at, by=None, strict=False, report=report)
        except Exception as exc:  # noqa: BLE001 - one batch's database error never stops the others
            log.exception("retention sweep: batch starting at recording %s failed", todo[i])
            report.refused.extend((pk, f"batch failed: {exc}") for pk in todo[i:i + batch_size]
                                  if pk not in report.erased)
    exports_follow_recordings(now=at, report=report)
    training_packages_expire(now=at, report=report)
    _axis_containers_follow(now=at)
    report.declarants_erased = declarants_erase(now=at)
    return report


# --- What follows a recording's erasure without being one of its own objects ----------------------

def exports_follow_recordings(*, now: dt.datetime, report: SweepReport | None = None) -> list[int]:
    """An export package carries copies of its recordings: once one of them is erased (or its
    erasure has begun), the package goes too, and its share links with it (CSI R241-13)."""
    erased_ids = Recording.objects.filter(status__in=[Recording.Status.ERASED, Recording.Status.ERASING])
    erased = []
    for export in (exports_carrying(erased_ids.values_list("pk", flat=True))
                   .select_related("organisation").order_by("pk")):
        carried = list(export.items.filter(recording__status__in=[Recording.Status.ERASED, Recording.Status.ERASING])
                       .values_list("recording_id", flat=True))
        if _export_erase(export, now=now, details={"recordings_erased": carried}):
            erased.append(export.pk)
    if report is not None:
        report.exports_erased.extend(erased)
    return erased


def training_packages_expire(*, now: dt.datetime, report: SweepReport | None = None) -> list[int]:
    """Training packages are anonymous copies kept under their own rule, apart from their
    recordings (LEGAL.md rule 6, CSI R241-13): erased once their own retention has ended."""
    from evidence.disclosure.models import Export, ExportPurpose

    erased = [export.pk for export in (Export.objects.filter(purpose=ExportPurpose.TRAINING, retain_until__lte=now,
                                                              status__in=[Export.Status.READY, Export.Status.ERASING])
                                       .select_related("organisation").order_by("pk"))
              if _export_erase(export, now=now, details={"reason": "training_retention_ended"})]
    if report is not None:
        report.exports_erased.extend(erased)
    return erased


def _export_erase(export, *, now: dt.datetime, details: dict) -> bool:
    """Erase one package (intent, bytes, completion, all logged); False when it must wait or failed."""
    from evidence.disclosure.models import Export

    retry = export.status == Export.Status.ERASING
    if retry and _still_locked(export.store_key, now):
        return False  # refused once and logged; tried again when the store's lock ends
    if not retry:
        Export.objects.filter(pk=export.pk).update(status=Export.Status.ERASING, erasure_started_at=now)

    def finish():
        Export.objects.filter(pk=export.pk).update(status=Export.Status.ERASED, erased_at=now)

    errors = objects_erase_logged(
        subject=export, organisation=export.organisation, keys=[export.store_key] if export.store_key else [],
        now=now, started="export.erasure_started", done="export.erased", failed="export.erasure_failed",
        details={"export": export.pk, "sha256": export.sha256, **details,
                 "retain_until": export.retain_until.isoformat() if export.retain_until else None},
        intent_logged=retry, on_done=finish)
    if errors:
        log.error("export %s not erased: %s", export.pk, "; ".join(errors))
    return not errors


def _still_locked(key: str, now: dt.datetime) -> bool:
    """A package sent in parts may carry the bucket's default lock (a day on Ceph RGW and MinIO),
    later than its recordings' end."""
    from ..integrations.store import ObjectMissing

    if not key:
        return False
    try:
        until = get_store().head(key).retain_until
    except (ObjectMissing, StoreError):
        return False
    return until is not None and until > min(now, timezone.now())


def _axis_containers_follow(*, now: dt.datetime) -> None:
    try:
        from devices.axis.services import containers_purge
    except ImportError:  # pragma: no cover - the Axis integration is part of every install
        return
    try:
        containers_purge(now=now)
    except Exception:  # noqa: BLE001 - reported, and retried by the next sweep
        log.exception("retention sweep: Axis containers not purged")


# --- Objects nothing owns ---------------------------------------------------------------------------

def _orphan_note(key: str) -> str:
    """What an orphan's key says of where it came from (keys end with the recording's uuid)."""
    import uuid as uuidlib

    stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
    try:
        ident = uuidlib.UUID(stem)
    except ValueError:
        return ""
    rec = Recording.objects.filter(uuid=ident).values_list("pk", "status").first()
    if rec is not None:
        return f"bytes of recording {rec[0]} ({rec[1]})"
    from evidence.redaction.models import Derivative

    der = Derivative.objects.filter(uuid=ident).values_list("pk", "recording_id").first()
    return f"redacted copy {der[0]} of recording {der[1]}" if der else ""


def store_orphans_settle(*, now: dt.datetime | None = None) -> dict:
    """Settle what the store holds that nothing alive owns (CSI R241-13: nothing is kept without a
    purpose). Each such object, older than a write under way could be, is registered and logged;
    a registered orphan is erased, logged before and after, once its lock in the store has ended.
    """
    from ..models import StoreOrphan
    from .dates import fixed_duration
    from .owners import objects_owned, organisation_of_key, owner_of

    now = now or timezone.now()
    store = get_store()
    grace = fixed_duration(settings.TEMOIN_COMPLIANCE_GRACE)
    owned, in_progress = objects_owned()
    found, seen = [], set()
    for obj in store.iter_objects():
        if obj.key in seen or obj.modified > now - grace or owner_of(obj.key, owned, in_progress) is not None:
            continue
        seen.add(obj.key)
        try:
            info = store.head(obj.key, obj.version_id)
        except StoreError:
            continue  # gone meanwhile, or unreadable: the next run looks again
        with transaction.atomic():
            orphan, _ = StoreOrphan.objects.update_or_create(key=obj.key, defaults=dict(
                organisation_id=organisation_of_key(obj.key), size=obj.size, modified=obj.modified, found_at=now,
                retain_until=info.retain_until, legal_hold=info.legal_hold, note=_orphan_note(obj.key),
                erasure_started_at=None, erased_at=None))
            custody_event_append(action="store.orphan_found", subject=orphan, organisation=orphan.organisation,
                                 actor_label="system:retention",
                                 details={"key": obj.key, "size": obj.size, "modified": obj.modified.isoformat(),
                                          "retain_until": info.retain_until.isoformat() if info.retain_until else None,
                                          "legal_hold": info.legal_hold, "note": orphan.note})
        found.append(obj.key)
    erased = []
    at = min(now, timezone.now())
    for orphan in StoreOrphan.objects.filter(erased_at__isnull=True).select_related("organisation"):
        if orphan.legal_hold or orphan.retain_until is None or orphan.retain_until > at:
            continue  # locked (or held): the audit shows it until its lock ends

        def done(orphan=orphan):
            StoreOrphan.objects.filter(pk=orphan.pk).update(erased_at=now)

        retry = orphan.erasure_started_at is not None
        if not retry:
            StoreOrphan.objects.filter(pk=orphan.pk).update(erasure_started_at=now)
        errors = objects_erase_logged(
            subject=orphan, organisation=orphan.organisation, keys=[orphan.key], now=now,
            started="store.orphan_erasure_started", done="store.orphan_erased", failed="store.orphan_erasure_failed",
            details={"key": orphan.key, "note": orphan.note}, intent_logged=retry, on_done=done)
        if not errors:
            erased.append(orphan.key)
    return {"found": found, "erased": erased}


def store_sweep_incomplete(*, older_than: dt.timedelta = dt.timedelta(hours=24), now=None) -> int:
    """Remove what writes killed mid-way left in the store (staging files of the local store,
    multipart uploads never completed on S3), once older than any upload in progress could be.
    Stored objects are never touched; the bytes of an unfinished write are still on the camera or
    with the Axis system, which send them again."""
    now = now or timezone.now()
    count, freed = get_store().sweep_incomplete(older_than=now - older_than)
    if count:
        log.info("store: removed %d unfinished writes (%d bytes) older than %s", count, freed, older_than)
    return count
