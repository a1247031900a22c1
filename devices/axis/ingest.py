"""Clips from the body worn system, streamed once into the write-once store (CSI R241-11 III and V).

Same path as the mass-storage offload (evidence/ingest/services.py ``offload_item_pull``): the request
body goes through ``HashingReader`` straight into ``store.put`` (SHA-256 on the way, nothing
spooled), then the object is read back from the store and its lock checked with ``head``; then
the recording and its custody events ``recording.collected``, ``recording.stored`` and
``recording.verified`` are written in one transaction (``clip_receive``). The request body is
``body.py``; the container's other objects (bookmarks, tracks, attachments) ``objects.py``.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import custody_event_append, custody_events_append_many
from devices.models import Camera, CameraAssignment
from devices.services import camera_register
from devices.sources.mass_storage import SERIAL_RE
from evidence.ingest.stream import live_duplicate, stored_verified_events
from evidence.integrations.store import HashingReader, ObjectExists, ReadAhead, StoreError, get_store
from evidence.models import Recording, Regime, Source
from evidence.retention import CameraClock, retention_decide
from evidence.interventions.services import recording_link_named_intervention
from evidence.retention.holds import recording_join_held_intervention

from . import formats, services, wsgi_body
from .body import NETWORK_CHUNK, RequestBody, Slices, TruncatedUpload, free_space_check, out_of_space
from .errors import (
    AxisError,
    Busy,
    ChecksumMismatch,
    ContentRefused,
    OutOfSpace,
    UploadInterrupted,
)
from .models import AxisClip, AxisObject, AxisRecording

log = logging.getLogger(__name__)

ACTOR = services.ACTOR
VERIFIED = (Recording.Status.STORED, Recording.Status.PROCESSING, Recording.Status.READY,
            Recording.Status.UNPLAYABLE, Recording.Status.DUPLICATE)


@dataclass
class Received:
    """What the view answers: status code, ETag when known, and the object."""

    status: int
    etag: str = ""
    clip: AxisClip | None = None
    obj: AxisObject | None = None


# --- Who and which camera ----------------------------------------------------------------------------

def _placeholder_camera(container: AxisRecording) -> tuple[Camera, list[str]]:
    """Rejected content whose device we do not know: evidence is never refused, so it gets a camera.

    The serial the BWS reported is registered when it is free; otherwise (missing, invalid, or
    another organisation's) the organisation's "unknown Axis camera" holds it, flagged.
    """
    org = container.organisation
    serial = container.metadata.get("BWCSerialNumber") or (formats.container_name_parts(
        container.original_container or "") or ("", "", ""))[1]
    if serial and SERIAL_RE.match(serial):
        # Only this organisation's cameras: another commune's serial is neither seen nor claimed (issue 17).
        camera = Camera.objects.filter(organisation=org, serial=serial).first()
        if camera is not None:
            return camera, [f"rejected content: camera {serial} not registered as an Axis device"]
        try:
            with transaction.atomic():
                camera = camera_register(serial=serial, organisation=org, model=container.model)
                custody_event_append(action="axis.device_registered", subject=camera, organisation=org,
                                     actor_label=ACTOR, details={"serial": serial, "from_rejected_content": True})
            return camera, [f"rejected content: camera {serial} registered from the recording"]
        except IntegrityError:
            camera = Camera.objects.filter(organisation=org, serial=serial).first()
            if camera is not None:
                return camera, []
    placeholder = f"AXIS-UNKNOWN-{org.pk}"
    camera = Camera.objects.filter(organisation=org, serial=placeholder).first()
    if camera is None:
        with transaction.atomic():
            camera = camera_register(serial=placeholder, organisation=org, model="unknown Axis camera")
    return camera, [f"rejected content: camera {serial or '(none)'} unknown; kept under {placeholder}"]


def _source(container: AxisRecording, start: dt.datetime | None):
    """(camera, wearer, wearer_source, flags) for a clip of this container; 400 when unknown."""
    flags: list[str] = []
    if container.rejected:
        reason = container.rejected_reason or "no reason given"
        flags.append(f"rejected by the Axis system ({reason}); original container "
                     f"{container.original_container or 'unknown'}")
    elif container.axis_user_id is None or container.device_id is None:
        # Checked when the container was created (400 there); users and devices are never deleted.
        raise ContentRefused("the recording's user or device does not exist here")
    camera = container.device.camera if container.device_id else None
    if camera is None:
        camera, more = _placeholder_camera(container)
        flags += more
    wearer, wearer_source = None, ""
    if container.axis_user_id and container.axis_user.user_id:
        wearer, wearer_source = container.axis_user.user, "axis"
    elif container.axis_user_id:
        flags.append(f"Axis user {container.axis_user} has no matricule (UserID): wearer from the camera's assignment")
    if wearer is None and start is not None:
        from django.db.models import Q

        assignment = (CameraAssignment.objects.filter(camera=camera, starts_at__lte=start)
                      .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
                      .select_related("officer").order_by("-starts_at").first())
        if assignment is not None:
            wearer, wearer_source = assignment.officer, "assignment"
    return camera, wearer, wearer_source, flags


def _bookmark_summaries(container: AxisRecording) -> list[dict]:
    return [services.bookmark_details(b) for b in container.bookmarks.select_related("object")]


# --- Clips -------------------------------------------------------------------------------------------------

def clip_receive(*, container: AxisRecording, name: str, metadata: Mapping[str, str], body: RequestBody,
                 length: int | None, client_md5: str = "", now: dt.datetime | None = None) -> Received:
    """``PUT /<container>/<StartTime>_<RecordingID>.<mkv|mp4>``: one clip → one Recording, verified.

    Nothing is written to the database before the bytes are in the store: the recording, its clip
    and their custody events (``collected``, ``stored``, ``verified``) are written in one
    transaction once the bytes are verified; when the upload fails, the failed recording and its
    events (``collected``, ``store_failed``). The BWS keeps the clip until it gets our 201, and an
    upload cut short by a killed process leaves only a staging file (swept). One transaction per
    clip instead of two: the database's write lock (SQLite) or the custody chain's and a commit
    (PostgreSQL) once per clip (docs/benchmarks.md, Axis section).
    """
    now = now or timezone.now()
    store = get_store()
    org = container.organisation
    start = formats.meta_time(metadata, "StartTime")
    stop = formats.meta_time(metadata, "StopTime")
    reader = body.with_md5() if client_md5 else body

    existing = None
    if AxisClip.objects.filter(container=container, name=name).exists():  # rarely: a clip sent again
        existing = AxisClip.objects.select_related("recording").filter(container=container, name=name).first()
    if existing is not None and existing.recording.status in VERIFIED:
        return _clip_seen_again(existing, reader, now)
    camera, wearer, wearer_source, flags = _source(container, start)
    if not container.rejected:
        # Specification, 400: "the clip has no duration". Such a clip comes back as rejected
        # content, which is always accepted: nothing is lost.
        if length == 0:
            raise ContentRefused("the clip is empty")
        if start is not None and stop is not None and stop <= start:
            raise ContentRefused("the clip has no duration (StopTime is not after StartTime)")
    free_space_check(store, length)

    # The BWS sends UTC times from cameras it keeps on time; without any, the upload time is
    # used and flagged as not attested (CSI R241-10).
    recorded_at = start or container.started_at
    attested = recorded_at is not None
    time_source = "axis" if attested else "upload"
    decision = axis_retention(org, recorded_at, now)
    retain_until, basis_text = decision.retain_until, decision.basis
    recorded_at = recorded_at or now
    ext = (metadata.get("ContainerType") or name.rsplit(".", 1)[-1]).lower()
    ext = ext if ext in formats.CLIP_TYPES else name.rsplit(".", 1)[-1].lower()
    values = dict(
        organisation=org, camera=camera, wearer=wearer, wearer_source=wearer_source,
        source=Source.AXIS, regime=Regime.BODY_WORN,
        source_path=f"{container.name}/{name}"[:1000], source_size=length or 0,
        source_mtime_ns=int(recorded_at.timestamp() * 1e9),
        started_at=recorded_at, ended_at=stop, time_source=time_source,
        time_attested=attested, sidecar_errors=flags,
        retain_until=retain_until, retention_basis=basis_text[:500], docked_late=decision.late, ingested_at=now,
        status_message="", camera_sha256="", camera_hash_matches=None,
        **services.clip_values(container, start, stop, metadata),
    )
    if (metadata.get("Intervention") or "").strip():  # issue #21: linked once verified
        values["intervention"] = " ".join(metadata["Intervention"].split())[:100]
    if existing is not None and not store.exists(existing.recording.store_key):
        # Sent again after a failed upload that stored nothing: the same recording and key.
        recording = existing.recording
        for key, value in values.items():
            setattr(recording, key, value)
    else:
        # First upload, or a retry after bytes were already stored under the previous key (that
        # failed recording keeps them until its retention end): a new recording, a new key.
        recording = Recording(status=Recording.Status.RECEIVING, **values)
        recording.store_key = f"originals/{org.slug}/{camera.serial}/{recording.uuid}.{ext}"
    collected = dict(
        action="recording.collect_retried" if existing is not None else "recording.collected",
        actor_label=ACTOR, organisation=org,
        details={"source": "axis", "container": container.name, "object": name, "size": length,
                 "camera": camera.serial, "wearer": wearer.matricule if wearer else None,
                 "wearer_source": wearer_source, "axis_user": container.axis_user.uuid
                 if container.axis_user_id else None, "scu": container.scu_serial,
                 "firmware": container.firmware, "trigger_on": container.trigger_on,
                 "trigger_off": container.trigger_off, "time_zone": container.time_zone,
                 "metadata": dict(metadata), "bookmarks": _bookmark_summaries(container),
                 "flags": flags, "time_source": time_source, "time_attested": attested,
                 "retain_until": retain_until.isoformat(), "retention_basis": basis_text,
                 "rejected": container.rejected, "upload_started_at": now.isoformat()},
    )
    arrival = _Arrival(container=container, name=name, metadata=dict(metadata), start=start, stop=stop, now=now,
                       collected=collected)

    # Stream once: network → store, hashing on the way; then read back and check the lock.
    # From gunicorn's socket, the kernel's receive buffer is the read-ahead; from another
    # server's wsgi.input, a thread reads a few slices ahead, overlapping hashing and writing.
    ahead = Slices(reader if reader.direct is not None else ReadAhead(reader, NETWORK_CHUNK, depth=8))
    try:
        try:
            hashing = HashingReader(ahead, keep_up_to=settings.TEMOIN_READBACK_COMPARE_MAX)
            stored = store.put(recording.store_key, hashing, retain_until=retain_until,
                               content_type=formats.CLIP_TYPES.get(ext, "application/octet-stream"))
        finally:
            ahead.close()
        # Read back and check the lock, as the offload does: byte for byte against the bytes
        # received, still in memory for most clips; a second SHA-256 for larger ones.
        back_sha, readback, info = store.verify_written(stored, hashing.kept, retain_until)
        wsgi_body.POOL.give(hashing.kept)
        hashing.kept = None
    except TruncatedUpload as exc:
        raise _clip_failed(arrival, recording, str(exc), UploadInterrupted(str(exc))) from exc
    except ObjectExists as exc:  # another upload of this clip, after the same failed one, took the key
        raise Busy(f"{name} is being received by another request") from exc
    except (OSError, StoreError) as exc:
        error = OutOfSpace(f"the store is full: {exc}") if out_of_space(exc) else AxisError(str(exc))
        raise _clip_failed(arrival, recording, str(exc), error) from exc
    except Exception as exc:
        log.exception("Axis upload of %s failed unexpectedly", recording.source_path)
        raise _clip_failed(arrival, recording, f"unexpected error: {exc!r}", AxisError("internal error")) from exc
    md5 = reader.md5.hexdigest() if reader.md5 is not None else ""
    if client_md5 and md5 != client_md5.strip('"').lower():
        # The bytes are in the store, locked: they stay under this failed recording (erased at its
        # retention end with it) and the BWS sends the clip again.
        message = f"MD5 of the bytes received {md5} differs from the ETag sent {client_md5}"
        raise _clip_failed(arrival, recording, message, ChecksumMismatch(message),
                           stored={"key": stored.key, "version_id": stored.version_id, "sha256": stored.sha256,
                                   "size": stored.size, "md5": md5})
    return _clip_verified(arrival, recording, stored, back_sha, readback, info, md5)


@dataclass
class _Arrival:
    """A clip upload on its way: where it goes, and its ``collected`` event, written at the end."""
    container: AxisRecording
    name: str
    metadata: dict
    start: dt.datetime | None
    stop: dt.datetime | None
    now: dt.datetime
    collected: dict

    def lock_container(self) -> tuple[str, bool]:
        """Lock the container's row for the rest of the transaction; its (status, rejected).

        A concurrent "Status: Complete" sees a clip either not there yet or written, and two uploads
        of the same clip attach one after the other. Only the columns needed (docs/benchmarks.md)."""
        return (AxisRecording.objects.select_for_update().filter(pk=self.container.pk)
                .values_list("status", "rejected").get())

    def attach(self, recording: Recording, md5: str = "") -> AxisClip | None:
        """The container's clip ``name`` points to ``recording``: created, or taken over from a failed
        upload. None when another upload of the same clip was verified meanwhile (its row stays).
        Called under the container's row lock, in the transaction that writes ``recording``."""
        clip = (AxisClip.objects.select_for_update().select_related("recording")
                .filter(container=self.container, name=self.name).first())
        if clip is None:
            try:
                with transaction.atomic():
                    return AxisClip.objects.create(
                        container=self.container, name=self.name, recording=recording, metadata=self.metadata,
                        started_at=self.start, stopped_at=self.stop, md5=md5, upload_started_at=self.now)
            except IntegrityError:  # another upload of this clip wrote its row first
                clip = (AxisClip.objects.select_for_update().select_related("recording")
                        .get(container=self.container, name=self.name))
        if clip.recording_id != recording.pk and clip.recording.status in VERIFIED:
            return None
        clip.recording, clip.metadata, clip.started_at, clip.stopped_at = recording, self.metadata, self.start, self.stop
        clip.md5, clip.upload_started_at, clip.uploads = md5, self.now, clip.uploads + 1
        clip.save()
        return clip


def _clip_failed(arrival: _Arrival, recording: Recording, message: str, error: AxisError,
                 stored: dict | None = None) -> AxisError:
    """Nothing verified: the BWS keeps the clip and uploads it again (the answer tells it why)."""
    log.warning("Axis upload of %s failed: %s", recording.source_path, message)
    with transaction.atomic():
        arrival.lock_container()
        if recording.pk is not None and Recording.objects.filter(pk=recording.pk, status__in=VERIFIED).exists():
            return error  # a failed upload's row, taken over meanwhile by another upload that succeeded
        recording.status, recording.status_message = Recording.Status.FAILED, message[:2000]
        recording.save()
        arrival.attach(recording)
        custody_events_append_many([
            dict(arrival.collected, subject=recording),
            dict(action="recording.store_failed", subject=recording, organisation=arrival.container.organisation,
                 actor_label=ACTOR, details={"error": message[:2000], "answer": error.status, "stored": stored}),
        ])
    return error


def _clip_verified(arrival: _Arrival, recording: Recording, stored, back_sha: str, readback: str, info,
                   md5: str) -> Received:
    from evidence.dispatch import recording_enqueue_media

    recording.sha256, recording.size = stored.sha256, stored.size
    recording.store_version_id, recording.verified_at = stored.version_id, timezone.now()
    with transaction.atomic():
        # A "Status: Complete" before this lock left this clip to us (queued below), one after it
        # finds the clip stored and queues it.
        status, rejected = arrival.lock_container()
        live = live_duplicate(recording=recording, sha256=stored.sha256)
        other = live.pk if live is not None else None
        if other is not None:
            recording.status, recording.duplicate_of_id = Recording.Status.DUPLICATE, other
            recording.status_message = f"same content as recording {other}"
        else:
            recording.status, recording.duplicate_of_id, recording.status_message = Recording.Status.STORED, None, ""
        recording.save()
        clip = arrival.attach(recording, md5)
        if clip is None and other is None:
            # Sent twice at once with different content: both kept, each under custody.
            recording.status_message = f"{arrival.name} was received at the same time with other content"
            recording.save(update_fields=["status_message"])
        custody_events_append_many([
            dict(arrival.collected, subject=recording),
            *stored_verified_events(recording=recording, stored=stored, back_sha=back_sha, readback=readback,
                                    info=info, actor_label=ACTOR, duplicate_of=other,
                                    stored_details={"md5": md5 or None}),
        ])
        if recording.status == Recording.Status.STORED:
            # The Axis metadata names an intervention: the recording joins it, created if new (logged).
            recording_link_named_intervention(recording=recording, source="axis", actor_label=ACTOR)
        if recording.status == Recording.Status.STORED and (status == AxisRecording.Status.COMPLETE or rejected):
            # Rejected content never gets "Status: Complete" (the specification leaves it out).
            transaction.on_commit(lambda: recording_enqueue_media(recording_id=recording.pk))
    if recording.intervention and recording.status == Recording.Status.STORED:
        recording_join_held_intervention(recording=recording)  # the system names a held intervention
    return Received(status=201, etag=md5, clip=clip)


def axis_retention(org, recorded_at, now):
    """The body worn system keeps its cameras' clocks on time (it sets them at each docking), so
    their times are trusted: a recording sent after its month is due after the grace period."""
    from django.conf import settings

    return retention_decide(started_at=recorded_at, ingested_at=now, period=org.retention, time_zone=org.time_zone,
                            clock=CameraClock(source="axis_system", offset=dt.timedelta(0)),
                            late_grace=settings.TEMOIN_LATE_DOCKING_GRACE)


def _clip_seen_again(clip: AxisClip, reader: RequestBody, now: dt.datetime) -> Received:
    """The same clip again (the BWS did not get our answer): idempotent when the bytes are the same."""
    try:
        sha, size = reader.drain()
    except TruncatedUpload as exc:
        raise UploadInterrupted(str(exc)) from exc
    existing = clip.recording
    same = sha == existing.sha256 and size == existing.size
    with transaction.atomic():
        custody_event_append(
            action="recording.seen_again", subject=existing, actor_label=ACTOR, now=now,
            details={"source": "axis", "container": clip.container.name, "object": clip.name, "sha256": sha,
                     "size": size, "same_content": same},
        )
    if not same:
        # Never overwritten: the other content comes back as rejected content and is kept there.
        raise ContentRefused(f"{clip.name} was already stored with other content (sha256 {existing.sha256})")
    return Received(status=201, etag=reader.md5.hexdigest() if reader.md5 is not None else clip.md5, clip=clip)
