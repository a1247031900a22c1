"""Writes for the Axis content destination: recording containers, what they know onto each clip's
recording, bookmarks and tracks, and their erasure (CSI R241-13). Credentials and tokens are
``tokens.py``; system, users and devices ``directory.py``; clip and object bodies stream into the
store in ``ingest.py`` and ``objects.py``. Every change is written with its
custody event in the same transaction (STYLE.md); media work is queued with ``on_commit``.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organisation
from audit.services import custody_event_append
from evidence.models import Recording

from . import formats
from .errors import ContentRefused, NotFound
from .models import AxisBookmark, AxisClip, AxisDevice, AxisObject, AxisRecording, AxisUser

log = logging.getLogger(__name__)

ACTOR = "system:axis"


# --- Recording containers (File upload API) ----------------------------------------------------------

def _merge(old: Mapping[str, str], new: Mapping[str, str]) -> dict:
    """Container metadata updates add or replace keys; an empty value removes the key (Swift)."""
    merged = dict(old)
    for key, value in new.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _container_parse(container: AxisRecording) -> None:
    m = container.metadata
    container.trigger_on = m.get("TriggerOn", "")[:100]
    container.trigger_off = m.get("TriggerOff", "")[:100]
    container.triggered_at = formats.meta_time(m, "TriggerOnTime")
    container.trigger_off_at = formats.meta_time(m, "TriggerOffTime")
    container.started_at = formats.meta_time(m, "StartTime") or container.triggered_at
    container.stopped_at = formats.meta_time(m, "StopTime") or container.trigger_off_at
    container.time_zone = m.get("TimeZone", "")[:64]
    container.firmware = m.get("FirmwareVersion", "")[:100]
    container.model = m.get("BWCModel", "")[:100]
    container.scu_serial = m.get("SCUSerialNumber", "")[:100]
    container.location = formats.parse_location(m.get("TriggerOnLocation"))
    if container.rejected:
        container.rejected_reason = m.get("RejectedContentReason", container.rejected_reason)
        container.original_container = m.get("RejectedContentOriginalContainer", container.original_container)[:256]


def _resolve_source(organisation: Organisation, name: str, metadata: Mapping[str, str], *,
                    lenient: bool) -> tuple[AxisUser | None, AxisDevice | None]:
    """The Axis user and device a container names; 400 when unknown (unless rejected content)."""
    parts = formats.container_name_parts(name)
    user_key = metadata.get("UserID") or (parts[0] if parts else "")
    serial = metadata.get("BWCSerialNumber") or (parts[1] if parts else "")
    axis_user = AxisUser.objects.filter(organisation=organisation, uuid=user_key).select_related("user").first() \
        if user_key else None
    if axis_user is None and user_key:
        axis_user = (AxisUser.objects.filter(organisation=organisation, external_id=user_key)
                     .select_related("user").first())
    device = AxisDevice.objects.filter(organisation=organisation, serial=serial).select_related("camera").first() \
        if serial else None
    if not lenient:
        if axis_user is None:
            raise ContentRefused(f"user {user_key!r} does not exist here: create it in the Users container first")
        if device is None:
            raise ContentRefused(f"device {serial!r} does not exist here: create it in the Devices container first")
    return axis_user, device


def container_create(*, organisation: Organisation, name: str, metadata: Mapping[str, str],
                     now: dt.datetime | None = None) -> tuple[AxisRecording, bool]:
    """``PUT /<container>``: a recording container (or rejected-content one); 202 when it exists."""
    now = now or timezone.now()
    if not name or len(name.encode()) > 256 or "/" in name:
        raise ContentRefused("invalid container name")
    rejected = name.startswith(formats.REJECTED_PREFIX)
    existing = AxisRecording.objects.filter(organisation=organisation, name=name).first()
    if existing is not None:
        if metadata:
            existing = container_update(organisation=organisation, name=name, metadata=metadata, now=now)
        return existing, False
    axis_user, device = _resolve_source(organisation, name, metadata, lenient=rejected)
    with transaction.atomic():
        container = AxisRecording(organisation=organisation, name=name, axis_user=axis_user, device=device,
                                  metadata=dict(metadata), rejected=rejected, created_at=now)
        _container_parse(container)
        try:
            with transaction.atomic():
                container.save()
        except IntegrityError:  # created meanwhile by a concurrent request
            return AxisRecording.objects.get(organisation=organisation, name=name), False
        _camera_note_firmware(container)
        custody_event_append(
            action="axis.transfer_started", subject=container, organisation=organisation, actor_label=ACTOR,
            now=now, details=_container_details(container),
        )
    if container.metadata.get("Status", "").lower() == "complete":
        container = container_complete(container=container, now=now)
    return container, True


def _container_details(container: AxisRecording) -> dict:
    return {
        "container": container.name, "axis_user": container.axis_user.uuid if container.axis_user else None,
        "wearer": (container.axis_user.user.matricule
                   if container.axis_user and container.axis_user.user else None),
        "camera": container.device.serial if container.device else container.metadata.get("BWCSerialNumber"),
        "scu": container.scu_serial, "firmware": container.firmware, "model": container.model,
        "trigger_on": container.trigger_on, "trigger_off": container.trigger_off,
        "triggered_at": container.triggered_at, "started_at": container.started_at,
        "stopped_at": container.stopped_at, "time_zone": container.time_zone, "location": container.location,
        "rejected": container.rejected, "rejected_reason": container.rejected_reason,
        "original_container": container.original_container,
    }


def _camera_note_firmware(container: AxisRecording) -> None:
    """The camera's firmware and model as the recording reports them (device facts, not evidence)."""
    if container.device is None:
        return
    camera = container.device.camera
    fields = []
    if container.firmware and camera.firmware != container.firmware:
        camera.firmware = container.firmware
        fields.append("firmware")
    if container.model and not camera.model:
        camera.model = container.model
        fields.append("model")
    if fields:
        camera.save(update_fields=fields)


def container_update(*, organisation: Organisation, name: str, metadata: Mapping[str, str],
                     now: dt.datetime | None = None) -> AxisRecording:
    """``POST /<container>``: merge metadata; ``Status: Complete`` ends the transfer."""
    now = now or timezone.now()
    complete = False
    with transaction.atomic():
        container = (AxisRecording.objects.select_for_update(of=("self",)).select_related("axis_user__user", "device__camera")
                     .filter(organisation=organisation, name=name).first())
        if container is None:
            raise NotFound(f"no container {name}")
        merged = _merge(container.metadata, metadata)
        if merged != container.metadata:
            old = container.metadata
            container.metadata = merged
            _container_parse(container)
            container.save()
            _camera_note_firmware(container)
            changed = {k: [old.get(k), merged.get(k)] for k in set(old) | set(merged)
                       if old.get(k) != merged.get(k) and k != "Status"}
            if changed:
                custody_event_append(action="axis.transfer_updated", subject=container, organisation=organisation,
                                     actor_label=ACTOR, details={"container": name, "changes": changed}, now=now)
        complete = merged.get("Status", "").lower() == "complete" and container.status != AxisRecording.Status.COMPLETE
    if complete:
        container = container_complete(container=container, now=now)
    return container


def container_complete(*, container: AxisRecording, now: dt.datetime | None = None) -> AxisRecording:
    """The BWS sent everything: each stored clip enters the media pipeline (on commit)."""
    from evidence.dispatch import recording_enqueue_media

    now = now or timezone.now()
    with transaction.atomic():
        container = AxisRecording.objects.select_for_update().get(pk=container.pk)
        if container.status == AxisRecording.Status.COMPLETE:
            return container
        container.status, container.completed_at = AxisRecording.Status.COMPLETE, now
        container.save(update_fields=["status", "completed_at"])
        clips = list(container.clips.select_related("recording").order_by("started_at", "name"))
        recordings_sync(container=container, recordings=[clip.recording for clip in clips],
                        source="container complete", now=now, clip_of={clip.recording_id: clip for clip in clips})
        custody_event_append(
            action="axis.transfer_finished", subject=container, organisation=container.organisation,
            actor_label=ACTOR, now=now,
            details={"container": container.name,
                     "clips": [{"name": c.name, "recording": c.recording_id, "status": c.recording.status,
                                "sha256": c.recording.sha256, "size": c.recording.size} for c in clips],
                     "objects": list(container.attachments.values_list("name", flat=True)[:200])},
        )
        for clip in clips:
            if clip.recording.status == Recording.Status.STORED:
                transaction.on_commit(lambda pk=clip.recording_id: recording_enqueue_media(recording_id=pk))
    return container


# --- What the container knows, onto each clip's recording ----------------------------------------------

def clip_values(container: AxisRecording, start: dt.datetime | None, stop: dt.datetime | None,
                metadata: Mapping[str, str]) -> dict:
    """Recording fields a clip gets from its container: trigger, place, track, category tags."""
    values = {
        "trigger_source": container.trigger_on[:200],
        "location": formats.parse_location(metadata.get("StartLocation")) or container.location,
        "track": formats.track_window(container.track, start, stop),
    }
    for field in formats.CATEGORY_FIELDS:
        if container.tags.get(field):
            values[field] = container.tags[field]
    return values


TAG_FIELDS = {"purpose", "trigger_reason"}


def _sync_changes(rec: Recording, container: AxisRecording, clip) -> bool:
    start, stop = (clip.started_at, clip.stopped_at) if clip else (rec.started_at, rec.ended_at)
    wanted = clip_values(container, start, stop, clip.metadata if clip else {})
    return any(v and not getattr(rec, f) for f, v in wanted.items())


def recordings_sync(*, container: AxisRecording, recordings, source: str, now: dt.datetime,
                    clip_of: Mapping | None = None) -> None:
    """Give already received clips what arrived later (bookmark categories, GNSS track).

    Only empty fields are filled: a tag an officer or supervisor set in Témoin is never replaced.
    Logged as a modification (CSI R241-14), in the caller's transaction. With ``clip_of`` (recording
    id → its clip, loaded with the recordings), recordings that lack nothing are left untouched.
    """
    for rec in recordings:
        if clip_of is not None and not _sync_changes(rec, container, clip_of.get(rec.pk)):
            continue  # nothing arrived that this recording lacks (as loaded): no lock, no write
        rec = Recording.objects.select_for_update().get(pk=rec.pk)
        if rec.gone:
            continue
        clip = rec.axis_clips.filter(container=container).first()
        start, stop = (clip.started_at, clip.stopped_at) if clip else (rec.started_at, rec.ended_at)
        wanted = clip_values(container, start, stop, clip.metadata if clip else {})
        changes = {f: [getattr(rec, f), v] for f, v in wanted.items() if v and not getattr(rec, f)}
        if not changes:
            continue
        for field, (_old, value) in changes.items():
            setattr(rec, field, value)
        rec.save(update_fields=list(changes))
        tags = {f: c for f, c in changes.items() if f in TAG_FIELDS}
        others = {f: c for f, c in changes.items() if f not in TAG_FIELDS}
        if tags:
            custody_event_append(action="recording.tagged", subject=rec, actor_label=ACTOR, now=now,
                                 details={"changes": tags, "source": f"axis: {source}"})
        if others:
            custody_event_append(action="recording.metadata_updated", subject=rec, actor_label=ACTOR, now=now,
                                 details={"changes": {f: (c if f != "track" else [len(c[0] or []), len(c[1])])
                                                      for f, c in others.items()},
                                          "source": f"axis: {source}"})


def bookmark_apply(*, obj: AxisObject, metadata: Mapping[str, str], description: str,
                   now: dt.datetime) -> AxisBookmark:
    """A bookmark: its comment goes to every clip's custody record, its category to their tags."""
    container = AxisRecording.objects.select_for_update().get(pk=obj.container_id)
    tag = formats.category_tag(metadata.get("CategoryID", ""))
    bookmark, _ = AxisBookmark.objects.update_or_create(object=obj, defaults=dict(
        container=container, description=description[:100_000],
        category_id=metadata.get("CategoryID", "")[:100], category_name=metadata.get("CategoryName", "")[:200],
        tags=formats.parse_tags(metadata.get("Tags")),
        starts_at=formats.parse_iso(metadata.get("StartTime")), ends_at=formats.parse_iso(metadata.get("EndTime")),
    ))
    if tag is not None and container.tags.get(tag[0]) != tag[1]:
        container.tags = {**container.tags, tag[0]: tag[1]}
        container.save(update_fields=["tags"])
    details = bookmark_details(bookmark)
    details["category_known"] = tag is not None
    for clip in container.clips.select_related("recording"):
        if clip.recording.gone:
            continue
        custody_event_append(action="recording.bookmarked", subject=clip.recording, actor_label=ACTOR,
                             now=now, details=details)
    recordings_sync(container=container, recordings=[c.recording for c in container.clips.all()],
                    source=f"bookmark {obj.name}", now=now)
    return bookmark


def bookmark_details(bookmark: AxisBookmark) -> dict:
    return {"bookmark": bookmark.object.name, "description": bookmark.description[:2000],
            "category_id": bookmark.category_id, "category_name": bookmark.category_name,
            "tags": bookmark.tags, "starts_at": bookmark.starts_at, "ends_at": bookmark.ends_at,
            "sha256": bookmark.object.sha256}


def track_apply(*, obj: AxisObject, raw: bytes, now: dt.datetime) -> list[str]:
    """The GNSS location object becomes the recording's track (each clip gets its time window)."""
    container = AxisRecording.objects.select_for_update().get(pk=obj.container_id)
    track, errors = formats.parse_track(raw, started_at=container.started_at)
    if track:
        container.track = track
        container.save(update_fields=["track"])
        recordings_sync(container=container, recordings=[c.recording for c in container.clips.all()],
                        source=f"GNSS track {obj.name}", now=now)
    return errors


# --- Erasure of what the BWS told us (CSI R241-13) -----------------------------------------------------

def containers_purge(*, now: dt.datetime | None = None) -> int:
    """Once every clip of a container is erased, erase its other objects and clear its personal data.

    Bookmark comments, GNSS tracks and places are personal data that follow the recordings' fate;
    what remains is the tombstone: names, hashes, sizes, dates. Called by the retention sweep. The
    erasure is logged before any byte is deleted and after (evidence/retention/sweep.py); the store
    refuses to delete an object before its retention end, in which case the container waits.
    """
    from evidence.retention.erasure import objects_erase_logged

    now = now or timezone.now()
    purged = 0
    for container in AxisRecording.objects.filter(purged_at__isnull=True).order_by("pk").iterator():
        statuses = set(container.clips.values_list("recording__status", flat=True))
        if statuses - {Recording.Status.ERASED}:
            continue
        objects = list(container.attachments.all())
        if any(o.retain_until is not None and o.retain_until > min(now, timezone.now()) for o in objects):
            continue  # still locked in the store: a later sweep
        if not statuses and (not objects or any(o.retain_until is None for o in objects)):
            continue  # nothing was ever received, or not due yet
        keys = [o.store_key for o in objects if o.store_key]

        def clear(container=container):
            AxisBookmark.objects.filter(container=container).update(description="", tags=[], category_name="")
            AxisObject.objects.filter(container=container).update(metadata={})
            AxisClip.objects.filter(container=container).update(metadata={})
            keep = {k: v for k, v in container.metadata.items()
                    if k in ("BWCSerialNumber", "UserID", "SCUSerialNumber", "TriggerOnTime", "TriggerOnTimeISO",
                             "Status", "ContainerName")}
            AxisRecording.objects.filter(pk=container.pk).update(metadata=keep, track=None, location=None,
                                                                 purged_at=now)

        errors = objects_erase_logged(
            subject=container, organisation=container.organisation, keys=keys, now=now,
            started="axis.container_purge_started", done="axis.container_purged",
            failed="axis.container_purge_failed", details={"container": container.name}, on_done=clear)
        if errors:
            log.info("Axis container %s not purged yet: %s", container.name, "; ".join(errors))
            continue
        purged += 1
    return purged
