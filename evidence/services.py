"""Writes on evidence: the ingest pipeline (offload → store → verify → media) and its custody events.

Every function that changes evidence writes its custody event in the same transaction (STYLE.md);
Celery tasks are queued with ``transaction.on_commit``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import mimetypes
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Organisation, User
from audit.services import custody_event_append, custody_events_append_many
from devices.models import Camera, CameraAssignment, Dock, DockSlot, OffloadItem, OffloadSession
from devices.selectors import DockingRefused, camera_for_docking
from devices.sources import mass_storage
from devices.sources.mass_storage import VolumeError

from .integrations import ffmpeg
from .integrations.store import HashingReader, ObjectExists, ObjectMissing, ReadAhead, StoreError, get_store
from .models import LIVE_STATUSES, Recording
from .retention import CameraClock, retention_decide
from .retention.objects import media_keys_for, recording_store_keys, sidecar_key_for  # noqa: F401

log = logging.getLogger(__name__)

VERIFIED_STATUSES = (
    Recording.Status.STORED,
    Recording.Status.PROCESSING,
    Recording.Status.READY,
    Recording.Status.UNPLAYABLE,
)


class OffloadRefused(Exception):
    """The volume cannot be offloaded at all (unregistered camera, no DEVICE.json…); nothing touched."""


class ClipChanged(Exception):
    """The clip changed on the camera while it was being read: the copy is not trusted."""


# --- Offload sessions ------------------------------------------------------------------------

def offload_session_start(*, volume: str | os.PathLike, dock_name: str = "", slot_name: str = "",
                          keep: bool = False, docking: str = "", now: dt.datetime | None = None) -> OffloadSession:
    """Open an offload session for the camera docked at ``volume`` and list its clips.

    Raises OffloadRefused (with a message for the operator) when the volume is not a camera we know.
    """
    now = now or timezone.now()
    try:
        scan = mass_storage.volume_scan(volume)
    except VolumeError as exc:
        raise OffloadRefused(str(exc)) from exc
    dock = slot = None
    if dock_name:
        dock, _ = Dock.objects.get_or_create(name=dock_name)
    # The camera of the dock's organisation with that serial (devices.selectors; issue 17).
    try:
        camera = camera_for_docking(serial=scan.device.serial, dock=dock)
    except DockingRefused as exc:
        raise OffloadRefused(str(exc)) from exc
    if not camera.active:
        raise OffloadRefused(f"camera {camera.serial} is deactivated: nothing was read or removed")
    if dock is not None and slot_name:
        slot, _ = DockSlot.objects.get_or_create(dock=dock, name=slot_name)
    clock = _camera_clock(camera, scan, now)
    with transaction.atomic():
        camera.last_docked_at = now
        if scan.device.model and not camera.model:
            camera.model = scan.device.model
        if scan.device.firmware:
            camera.firmware = scan.device.firmware
        camera.save(update_fields=["last_docked_at", "model", "firmware"])
        session = OffloadSession.objects.create(
            organisation=camera.organisation, camera=camera, dock=dock, slot=slot,
            volume=str(scan.root), keep_on_camera=keep, started_at=now, docking=docking,
            bytes_total=sum(c.size for c in scan.clips),
            report={"ignored": [{"path": p, "reason": r} for p, r in scan.ignored]},
            clock=clock.as_dict(),
        )
        OffloadItem.objects.bulk_create(
            OffloadItem(session=session, path=c.rel, sidecar_path=c.sidecar_rel, size=c.size, mtime_ns=c.mtime_ns)
            for c in scan.clips
        )
        custody_event_append(
            action="offload.started", subject=session, organisation=camera.organisation,
            actor_label=f"system:offload@{dock_name or 'cli'}",
            details={"camera": camera.serial, "volume": str(scan.root), "clips": len(scan.clips),
                     "bytes": session.bytes_total, "ignored": session.report["ignored"][:100],
                     "firmware": scan.device.firmware, "camera_clock": session.clock},
        )
    return session


def _camera_clock(camera: Camera, scan, now: dt.datetime) -> CameraClock:
    """What this docking tells of the camera's clock (CSI R241-10), read before anything is pulled.

    The camera's own time in DEVICE.json gives its offset from the dock's clock. Otherwise, a
    newest clip that ended within the last day says the clock agrees with the dock's (the camera
    has just been used). The previous complete docking is kept as well: a clip seen for the first
    time was recorded after it, so a date before it proves the clock wrong.
    """
    from .retention.dates import CLOCK_TOLERANCE

    previous = (OffloadSession.objects.filter(camera=camera, status=OffloadSession.Status.COMPLETE)
                .order_by("-started_at").values_list("started_at", flat=True).first())
    if scan.device.clock is not None:
        return CameraClock(source="device_clock", offset=scan.device.clock - now, previous_docking=previous)
    newest = max((c.mtime_ns for c in scan.clips), default=None)
    if newest is not None:
        newest_time = dt.datetime.fromtimestamp(newest / 1e9, tz=dt.timezone.utc)
        if now - dt.timedelta(days=1) <= newest_time <= now + CLOCK_TOLERANCE:
            return CameraClock(source="newest_clip", offset=dt.timedelta(0), previous_docking=previous)
    return CameraClock(source="", offset=None, previous_docking=previous)


def _assignment_wearer(camera: Camera, at: dt.datetime | None) -> User | None:
    if at is None:
        return None
    a = (CameraAssignment.objects.filter(camera=camera, starts_at__lte=at)
         .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at)).select_related("officer").order_by("-starts_at").first())
    return a.officer if a else None


@dataclass
class _Metadata:
    fields: dict
    errors: list
    sidecar_raw: bytes | None


def _read_sidecar(session: OffloadSession, item: OffloadItem) -> _Metadata:
    if not item.sidecar_path:
        return _Metadata({}, [], None)
    try:
        with mass_storage.volume_open(Path(session.volume), item.sidecar_path) as fh:
            raw = fh.read(64 * 1024 * 1024 + 1)
    except OSError as exc:
        return _Metadata({}, [f"sidecar unreadable: {exc}"], None)
    if len(raw) > 64 * 1024 * 1024:
        return _Metadata({}, ["sidecar larger than 64 MiB: left on the camera"], None)
    fields, errors = mass_storage.sidecar_parse(raw, max_bytes=settings.TEMOIN_SIDECAR_MAX_BYTES)
    return _Metadata(fields, errors, raw)


def _recording_times(session, item, meta: _Metadata, path: Path, org: Organisation):
    """Start/end and whether they are attested (CSI R241-10): sidecar, container, file time."""
    tz = dt.timezone.utc
    f = meta.fields
    if "started_at" in f:
        start = f["started_at"]
        value = start.value
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(org.time_zone))
        end = None
        if "ended_at" in f:
            end = f["ended_at"].value
            if end.tzinfo is None:
                end = end.replace(tzinfo=ZoneInfo(org.time_zone))
        return value, end, "sidecar", start.attested
    try:
        info = ffmpeg.probe(path)
        if info.creation_time is not None:
            start = info.creation_time if info.creation_time.tzinfo else info.creation_time.replace(tzinfo=tz)
            end = start + dt.timedelta(seconds=info.duration) if info.duration else None
            return start, end, "container", True
    except ffmpeg.MediaError:
        pass
    mtime = dt.datetime.fromtimestamp(item.mtime_ns / 1e9, tz=tz)
    return mtime, None, "file_mtime", False


def _original_key(camera: Camera, recording_uuid, rel: str) -> str:
    ext = Path(rel).suffix.lower() or ".bin"
    return f"originals/{camera.organisation.slug}/{camera.serial}/{recording_uuid}{ext}"


def _hash_file(fh, progress=None) -> tuple[str, int]:
    reader = HashingReader(fh, progress)
    for _ in reader.chunks(settings.TEMOIN_CHUNK_SIZE):
        pass
    return reader.sha256.hexdigest(), reader.size


def offload_item_pull(*, item: OffloadItem, progress: Callable[[int], None] | None = None,
                      final_attempt: bool = True, now: dt.datetime | None = None) -> OffloadItem:
    """Pull one clip: stream it once into the store while hashing, verify, record custody.

    On failure the clip stays on the camera; the item is marked failed only on the final attempt
    (a Celery retry keeps it pending). Never raises for a bad clip: evidence is never refused.
    """
    item = OffloadItem.objects.select_related("session__camera__organisation").get(pk=item.pk)
    if item.status != OffloadItem.Status.PENDING:
        return item  # idempotent: a redelivered task finds the work done
    session, camera = item.session, item.session.camera
    org = camera.organisation
    volume = Path(session.volume)
    actor_label = f"system:offload@{session.dock.name if session.dock_id else 'cli'}"
    store = get_store()
    now = now or timezone.now()

    # 1. Lstat again: the file must still be the one listed, and a regular file.
    try:
        st = os.lstat(volume / item.path)
        if not stat.S_ISREG(st.st_mode):
            raise PermissionError("not a regular file")
    except OSError as exc:
        return _item_failed(item, None, f"clip unreadable: {exc}", final=True, actor_label=actor_label)

    meta = _read_sidecar(session, item)
    camera_sha = meta.fields.get("sha256", "")

    # 2. Already stored? (same camera docked twice, --keep, or a retry after a crash)
    existing = (
        Recording.objects.filter(camera=camera, source_path=item.path, source_size=item.size,
                                 source_mtime_ns=item.mtime_ns)
        .exclude(status__in=[Recording.Status.DUPLICATE, Recording.Status.ERASING, Recording.Status.ERASED])
        .order_by("-id").first()
    )
    if existing is None and camera_sha:
        existing = Recording.objects.filter(camera=camera, sha256=camera_sha, status__in=VERIFIED_STATUSES).first()
    if existing is not None and existing.status in VERIFIED_STATUSES:
        return _item_already_stored(item, existing, progress, actor_label)

    # 3. A new recording (or the retry of one that failed or was interrupted).
    start, end, time_source, attested = _recording_times(session, item, meta, volume / item.path, org)
    # Listed by no earlier docking of this camera: recorded after the previous complete one.
    new_clip = existing is None and not OffloadItem.objects.filter(
        session__camera=camera, path=item.path, size=item.size, mtime_ns=item.mtime_ns).exclude(pk=item.pk).exists()
    decision = retention_decide(started_at=start, ingested_at=now, period=org.retention, time_zone=org.time_zone,
                                clock=CameraClock.from_dict(session.clock).for_clip(
                                    start, dt.datetime.fromtimestamp(item.mtime_ns / 1e9, tz=dt.timezone.utc)),
                                new_clip=new_clip,
                                late_grace=settings.TEMOIN_LATE_DOCKING_GRACE)
    retain_until, basis_text = decision.retain_until, decision.basis
    if existing is not None:  # a retry: what an earlier attempt wrote is locked, perhaps longer
        retain_until, basis_text = _earlier_locks(store, existing.store_key, retain_until, basis_text)
    wearer, wearer_source, errors = None, "", list(meta.errors)
    matricule = meta.fields.get("officer")
    if matricule:
        wearer = User.objects.filter(organisation=org, matricule=matricule).first()
        wearer_source = "sidecar" if wearer else ""
        if wearer is None:
            errors.append(f"officer: matricule {matricule!r} unknown in {org.slug}")
    if wearer is None:
        wearer = _assignment_wearer(camera, start)
        wearer_source = "assignment" if wearer else ""

    f = meta.fields
    values = dict(
        organisation=org, camera=camera, offload_session=session, wearer=wearer, wearer_source=wearer_source,
        source_path=item.path, source_size=item.size, source_mtime_ns=item.mtime_ns,
        started_at=start, ended_at=end, time_source=time_source, time_attested=attested,
        location=f.get("location"), track=f.get("track"),
        camera_sha256=camera_sha, sidecar_errors=errors,
        trigger_reason=f.get("trigger_reason", ""), trigger_source=f.get("trigger_source", ""),
        purpose=f.get("purpose", ""), subject_notified=f.get("subject_notified"),
        notice_omitted_reason=f.get("notice_omitted_reason", ""), intervention=f.get("intervention", ""),
        retain_until=retain_until, retention_basis=basis_text[:500], docked_late=decision.late, ingested_at=now,
        status=Recording.Status.RECEIVING, status_message="",
    )
    with transaction.atomic():
        if existing is not None:  # retry: same row, same identity
            recording = existing
            for k, v in values.items():
                setattr(recording, k, v)
            recording.save()
            action = "recording.collect_retried"
        else:
            recording = Recording(**values)
            recording.store_key = _original_key(camera, recording.uuid, item.path)
            recording.save()
            action = "recording.collected"
        item.recording = recording
        item.save(update_fields=["recording"])
        custody_event_append(
            action=action, subject=recording, actor_label=actor_label,
            details={"source_path": item.path, "size": item.size, "mtime_ns": item.mtime_ns,
                     "session": session.pk, "camera": camera.serial, "sidecar": item.sidecar_path,
                     "sidecar_errors": errors, "time_source": time_source, "time_attested": attested,
                     "wearer": wearer.matricule if wearer else None, "wearer_source": wearer_source,
                     "retain_until": retain_until.isoformat(), "retention_basis": basis_text,
                     "docked_late": decision.late},
        )

    # 4. Stream once: camera → store, hashing on the way.
    try:
        if meta.sidecar_raw is not None and not recording.sidecar_key:
            skey = sidecar_key_for(recording.store_key)
            if not store.exists(skey):
                sidecar = store.put(skey, io.BytesIO(meta.sidecar_raw), retain_until=retain_until,
                                    content_type="application/json")
            else:  # written by an attempt that died before recording it: locked at least as long
                sidecar = store.head(skey)
                if sidecar.retain_until is None or sidecar.retain_until < retain_until:
                    store.extend_retention(skey, sidecar.version_id, retain_until)
            recording.sidecar_key, recording.sidecar_version_id = skey, sidecar.version_id
            recording.sidecar_sha256 = hashlib.sha256(meta.sidecar_raw).hexdigest()
            Recording.objects.filter(pk=recording.pk).update(
                sidecar_key=recording.sidecar_key, sidecar_sha256=recording.sidecar_sha256,
                sidecar_version_id=recording.sidecar_version_id)
        content_type = mimetypes.guess_type(item.path)[0] or "application/octet-stream"
        reader = None
        with mass_storage.volume_open(volume, item.path) as fh:
            before = os.fstat(fh.fileno())
            if store.exists(recording.store_key):
                # A previous attempt stored the object, then died before recording it.
                sha, size = _hash_file(fh, progress)
                stored_sha, stored_size = store.digest(recording.store_key)
                if (sha, size) == (stored_sha, stored_size):
                    head = store.head(recording.store_key)
                    stored = _Stored(recording.store_key, head.version_id, size, sha)
                    if head.mode != "COMPLIANCE" or head.retain_until is None or head.retain_until < retain_until:
                        # It may have died between writing and locking (after a multipart upload, S3
                        # takes the lock in a second request): lock it now. Extending is all the store
                        # allows (ARCHITECTURE.md §4, write-once); the check below proves the result.
                        store.extend_retention(recording.store_key, head.version_id, retain_until)
                else:
                    raise StoreError(f"{recording.store_key} exists with other content")
            else:
                ahead = ReadAhead(fh, settings.TEMOIN_CHUNK_SIZE)
                reader = HashingReader(ahead, progress, keep_up_to=settings.TEMOIN_READBACK_COMPARE_MAX)
                try:
                    stored = store.put(recording.store_key, reader, retain_until=retain_until,
                                       content_type=content_type)
                finally:
                    ahead.close()
            after = os.fstat(fh.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or stored.size != before.st_size \
                or before.st_size != item.size or before.st_mtime_ns != item.mtime_ns:
            raise ClipChanged(f"{item.path} changed on the camera while it was read")
        # 5. Read back from the store and check the lock: byte for byte against the bytes read
        # from the camera, still in memory for most clips; otherwise a second hash.
        back_sha, readback, info = store.verify_written(stored, reader.kept if reader is not None else None,
                                                        retain_until)
    except ClipChanged as exc:
        # The camera changed the file while it was read: its listed size and time can never match
        # again, so retrying is futile. The clip stays on the camera (CSI R241-11 V: nothing is
        # wiped unverified) and is offloaded, as it is now, at the next docking.
        return _item_failed(item, recording, str(exc), final=True, actor_label=actor_label)
    except (OSError, StoreError) as exc:
        return _item_failed(item, recording, str(exc), final=final_attempt, actor_label=actor_label)

    return _item_verified(item, recording, stored, back_sha, info, camera_sha, actor_label, readback)


def _earlier_locks(store, store_key: str, retain_until: dt.datetime, basis: str) -> tuple[dt.datetime, str]:
    """The retention end of a retried collection, never before the locks an earlier attempt took.

    An attempt that died after storing the clip (or its sidecar) locked it until the end it had
    decided; the retry may decide an earlier one (the next docking told more of the camera's
    clock). The store never shortens a lock, so the recording is kept until the later end: an
    earlier one would make its erasure refused when it comes (CSI R241-13, R241-11 V).
    """
    later = retain_until
    for key in (store_key, sidecar_key_for(store_key)):
        try:
            until = store.head(key).retain_until
        except ObjectMissing:
            continue
        if until is not None and until > later:
            later = until
    if later > retain_until:
        basis = f"{basis}; kept until the lock an earlier attempt took ({later.isoformat()})"
    return later, basis


@dataclass(frozen=True)
class _Stored:
    key: str
    version_id: str
    size: int
    sha256: str


def _item_verified(item, recording, stored, back_sha, info, camera_sha, actor_label, readback) -> OffloadItem:
    verified_at = timezone.now()
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        other = (Recording.objects.filter(camera=recording.camera, sha256=stored.sha256, status__in=LIVE_STATUSES)
                 .exclude(pk=recording.pk).first())
        recording.sha256 = stored.sha256
        recording.size = stored.size
        recording.store_version_id = stored.version_id
        recording.verified_at = verified_at
        recording.camera_hash_matches = (camera_sha == stored.sha256) if camera_sha else None
        if other is not None:
            recording.status = Recording.Status.DUPLICATE
            recording.duplicate_of = other
            recording.status_message = f"same content as recording {other.pk}"
        else:
            recording.status = Recording.Status.STORED
            recording.status_message = ""
        recording.save()
        custody_event_append(
            action="recording.stored", subject=recording, actor_label=actor_label,
            details={"key": stored.key, "version_id": stored.version_id, "sha256": stored.sha256,
                     "size": stored.size, "sidecar_key": recording.sidecar_key,
                     "sidecar_sha256": recording.sidecar_sha256},
        )
        custody_event_append(
            action="recording.verified", subject=recording, actor_label=actor_label,
            details={"read_back_sha256": back_sha, "read_back": readback, "camera_sha256": camera_sha or None,
                     "camera_hash_matches": recording.camera_hash_matches,
                     "lock_mode": info.mode, "retain_until": info.retain_until.isoformat(),
                     "duplicate_of": other.pk if other else None},
        )
        if camera_sha and camera_sha != stored.sha256:
            # The bytes read differ from what the camera says it recorded: keep the clip on the
            # camera so that it can be read again; what we stored stays under custody.
            item.status = OffloadItem.Status.MISMATCH
            item.message = f"camera hash {camera_sha} differs from the bytes read ({stored.sha256}); kept on the camera"
        else:
            item.status = OffloadItem.Status.VERIFIED
            item.message = "duplicate of an already stored recording" if other else ""
        item.save(update_fields=["status", "message"])
        _session_progress(item.session_id, item.size)
        if recording.status == Recording.Status.STORED:
            # The sidecar names an intervention: the recording joins it, created if new (logged).
            recording_link_named_intervention(recording=recording, source="sidecar", actor_label=actor_label)
            transaction.on_commit(lambda: recording_enqueue_media(recording_id=recording.pk))
    if recording.intervention and recording.status == Recording.Status.STORED:
        recording_join_held_intervention(recording=recording)  # the camera names a held intervention
    return item


def _item_already_stored(item, existing: Recording, progress, actor_label) -> OffloadItem:
    """The clip is already in the store: hash the camera copy (one read) and compare."""
    try:
        with mass_storage.volume_open(Path(item.session.volume), item.path) as fh:
            sha, size = _hash_file(fh, progress)
    except OSError as exc:
        return _item_failed(item, None, f"clip unreadable: {exc}", final=True, actor_label=actor_label)
    with transaction.atomic():
        if sha == existing.sha256 and size == existing.size:
            item.status = OffloadItem.Status.DUPLICATE
            item.message = f"already stored and verified as recording {existing.pk}"
        else:
            item.status = OffloadItem.Status.FAILED
            item.message = (f"same name, size and time as recording {existing.pk} but different content "
                            f"({sha}); kept on the camera for inspection")
        item.recording = existing
        item.save(update_fields=["status", "message", "recording"])
        custody_event_append(
            action="recording.seen_again", subject=existing, actor_label=actor_label,
            details={"session": item.session_id, "source_path": item.path, "sha256": sha,
                     "same_content": sha == existing.sha256},
        )
        _session_progress(item.session_id, item.size)
    return item


def _item_failed(item, recording, message: str, *, final: bool, actor_label: str) -> OffloadItem:
    log.warning("offload of %s failed: %s", item.path, message)
    with transaction.atomic():
        if recording is not None:
            Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.FAILED, status_message=message[:2000])
            recording.refresh_from_db()
            custody_event_append(action="recording.store_failed", subject=recording, actor_label=actor_label,
                                 details={"error": message[:2000], "final": final})
        item.message = message[:2000]
        if final:
            item.status = OffloadItem.Status.FAILED
            _session_progress(item.session_id, item.size)
        item.save(update_fields=["status", "message"])
    if not final:
        raise StoreError(message)
    return item


def _session_progress(session_id: int, size: int) -> None:
    from django.db.models import F

    OffloadSession.objects.filter(pk=session_id).update(bytes_done=F("bytes_done") + size)


def offload_session_finish(*, session: OffloadSession, now: dt.datetime | None = None) -> OffloadSession:
    """Close a session once every clip is settled; wipe from the camera only verified clips.

    CSI R241-11 V: integrity is guaranteed until erasure, so nothing leaves the camera unless the
    store holds it, read back and locked. ``keep_on_camera`` (offload --keep) wipes nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        session = OffloadSession.objects.select_for_update().get(pk=session.pk)
        if session.status != OffloadSession.Status.RUNNING:
            return session
        if session.items.filter(status=OffloadItem.Status.PENDING).exists():
            return session
        volume = Path(session.volume)
        actor_label = f"system:offload@{session.dock.name if session.dock_id else 'cli'}"
        for item in session.items.select_related("recording").order_by("path"):
            if not item.safe_to_wipe or item.wiped or session.keep_on_camera:
                continue
            path = volume / item.path
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns):
                item.message = "changed on the camera after it was read: not wiped"
                item.save(update_fields=["message"])
                continue
            os.unlink(path)
            wiped_sidecar = False
            rec = item.recording
            if item.sidecar_path and rec is not None and rec.sidecar_key:
                try:
                    os.unlink(volume / item.sidecar_path)
                    wiped_sidecar = True
                except FileNotFoundError:
                    pass
            item.wiped = True
            item.save(update_fields=["wiped"])
            custody_event_append(
                action="recording.released_from_device", subject=rec, actor_label=actor_label,
                details={"session": session.pk, "source_path": item.path, "sidecar_removed": wiped_sidecar},
            )
        counts = {s: session.items.filter(status=s).count() for s in OffloadItem.Status.values}
        ok = counts[OffloadItem.Status.VERIFIED] + counts[OffloadItem.Status.DUPLICATE] == sum(counts.values())
        session.status = OffloadSession.Status.COMPLETE if ok else OffloadSession.Status.INCOMPLETE
        session.finished_at = now
        session.report = {**session.report, "counts": counts}
        session.save(update_fields=["status", "finished_at", "report"])
        custody_event_append(action="offload.finished", subject=session, organisation=session.organisation,
                             actor_label=actor_label, details={"status": session.status, "counts": counts})
    return session


# --- Media pipeline --------------------------------------------------------------------------

def recording_enqueue_media(*, recording_id: int) -> None:
    """Queue the media work; if the broker is down, the periodic requeue picks it up later."""
    from .tasks import process_recording

    try:
        process_recording.apply_async(args=[recording_id], queue="media")
    except Exception:  # noqa: BLE001 - the broker being down must not fail an offload
        log.exception("could not queue media processing of recording %s (will be requeued)", recording_id)


def recording_process_media(*, recording: Recording) -> Recording:
    """ffprobe, stream hashes, playback copy (remux or H.264 transcode), poster → ready/unplayable."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        if recording.status not in (Recording.Status.STORED, Recording.Status.PROCESSING):
            return recording  # idempotent
        recording.status = Recording.Status.PROCESSING
        recording.save(update_fields=["status"])
    store = get_store()
    playback_key, poster_key = media_keys_for(recording.store_key)
    details: dict = {}
    try:
        with store.local_path(recording.store_key, recording.store_version_id) as src, \
                tempfile.TemporaryDirectory(prefix="temoin-media-") as tmp:
            info = ffmpeg.probe(src)
            details["media_info"] = info.as_dict()
            dst = Path(tmp) / "playback.mp4"
            method = "remux" if info.browser_ready else "transcode"
            try:
                command, original_hashes = ffmpeg.playback_copy(src, dst, remux=method == "remux", hash_original=True)
            except ffmpeg.MediaError:
                if method != "remux":
                    raise
                method = "transcode"
                command, original_hashes = ffmpeg.playback_copy(src, dst, remux=False, hash_original=True)
            copy_info = ffmpeg.probe(dst)
            copy_hashes = ffmpeg.stream_hashes(dst)
            if method == "remux" and copy_hashes != original_hashes:
                raise ffmpeg.MediaError("remuxed copy's stream hashes differ from the original's")
            poster = Path(tmp) / "poster.jpg"
            ffmpeg.poster(dst, poster, at=min(1.0, (copy_info.duration or 0) / 2))
            p_obj = _put_derivative(store, playback_key, dst, recording.retain_until, "video/mp4")
            s_obj = _put_derivative(store, poster_key, poster, recording.retain_until, "image/jpeg")
            if recording_is_held(recording):  # copies follow the original's legal hold too
                for obj in (p_obj, s_obj):
                    store.set_legal_hold(obj.key, obj.version_id, True)
    except ffmpeg.MediaError as exc:
        with transaction.atomic():
            recording = Recording.objects.select_for_update().get(pk=recording.pk)
            recording.status = Recording.Status.UNPLAYABLE
            recording.status_message = f"{exc} {exc.detail}".strip()[:2000]
            recording.media_info = details.get("media_info", {})
            recording.save(update_fields=["status", "status_message", "media_info"])
            custody_event_append(action="recording.unplayable", subject=recording, actor_label="system:media",
                                 details={"error": str(exc), "detail": exc.detail[:2000]})
        return recording

    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        recording.media_info = info.as_dict()
        recording.duration = info.duration
        if recording.started_at and not recording.ended_at and info.duration:
            recording.ended_at = recording.started_at + dt.timedelta(seconds=info.duration)
        recording.stream_hashes = {"original": original_hashes, "playback": copy_hashes}
        recording.playback_key, recording.playback_version_id = p_obj.key, p_obj.version_id
        recording.poster_key, recording.poster_version_id = s_obj.key, s_obj.version_id
        recording.playback_method = method
        recording.status = Recording.Status.READY
        recording.status_message = ""
        recording.save()
        custody_event_append(
            action="recording.playback_ready", subject=recording, actor_label="system:media",
            details={"method": method, "playback_key": p_obj.key, "playback_sha256": p_obj.sha256,
                     "poster_key": s_obj.key, "stream_hashes": recording.stream_hashes,
                     "command": [a for a in command if not a.startswith("/")]},
        )
    return recording


def _put_derivative(store, key, path, retain_until, content_type):
    """Derivatives follow the original's fate: same retention end. Idempotent on a fixed key (a copy
    written by an attempt that died is taken over, its lock extended if the end moved since)."""
    try:
        return store.put_file(key, path, retain_until=retain_until, content_type=content_type)
    except ObjectExists:
        head = store.head(key)
        if head.retain_until is None or head.retain_until < retain_until:
            store.extend_retention(key, head.version_id, retain_until)
        sha, size = store.digest(key)
        return _Stored(key, head.version_id, size, sha)


def recordings_requeue_stale(*, older_than: dt.timedelta = dt.timedelta(minutes=10), now=None) -> int:
    """Re-queue media work for recordings left stored/processing (broker was down, worker died)."""
    now = now or timezone.now()
    running_limit = dt.timedelta(seconds=settings.TEMOIN_TASK_TIME_LIMIT)
    stale = Recording.objects.filter(
        Q(status=Recording.Status.STORED, verified_at__lt=now - older_than)
        | Q(status=Recording.Status.PROCESSING, verified_at__lt=now - running_limit)
    ).values_list("pk", flat=True)[:1000]
    ids = list(stale)
    for pk in ids:
        recording_enqueue_media(recording_id=pk)
    return len(ids)


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


# --- Retention: holds, policy, erasure (CSI L241-2, R241-13): evidence/retention/ -------------

from .retention import RetentionRefused  # noqa: E402,F401  (re-exported: callers import them from here)
from .retention.holds import (  # noqa: E402,F401
    HOLD_PLACERS,
    HOLD_RELEASERS,
    active_holds_q,
    hold_place,
    hold_release,
    legal_hold_set,
    recording_is_held,
    recording_join_held_intervention,
)
from .interventions.services import (  # noqa: E402
    recording_intervention_retagged,
    recording_link_named_intervention,
)
from .retention.policy import organisation_set_retention  # noqa: E402,F401
from .retention.sweep import (  # noqa: E402,F401
    TOMBSTONE_CLEARED,
    SweepReport,
    exports_follow_recordings,
    recording_erase,
    recordings_due_for_erasure,
    recordings_settle_stuck,
    retention_sweep,
    store_orphans_settle,
)


def retention_notice_send(*, now: dt.datetime | None = None, hours: int = 72) -> int:
    """Daily notice to supervisors: what will be erased in the next ``hours``, untagged first.

    Returns the number of messages sent. Deletions must be visible in advance (LEGAL.md: evidence
    auto-deleted because it was mis-tagged is the failure to avoid).
    """
    from django.core.mail import send_mass_mail

    now = now or timezone.now()
    messages = []
    for org in Organisation.objects.all():
        upcoming = list(recordings_due_for_erasure(now=now + dt.timedelta(hours=hours), organisation=org)
                        .exclude(pk__in=Recording.objects.filter(active_holds_q()).values("pk"))
                        .select_related("camera", "wearer").order_by("retain_until"))
        if not upcoming:
            continue
        to_complete = [r for r in upcoming if r.to_complete]
        lines = [f"{len(upcoming)} enregistrement(s) seront effacés dans les {hours} prochaines heures "
                 f"(CSI R241-13), dont {len(to_complete)} non qualifiés :", ""]
        for r in sorted(upcoming, key=lambda r: (not r.to_complete, r.retain_until)):
            mark = "À COMPLÉTER " if r.to_complete else ""
            lines.append(f"- {mark}n° {r.pk}, caméra {r.camera.serial}, "
                         f"{timezone.localtime(r.started_at):%d/%m/%Y %H:%M} — effacement le "
                         f"{timezone.localtime(r.retain_until):%d/%m/%Y %H:%M}")
        lines += ["", "Pour conserver un enregistrement utilisé dans une procédure, placez une conservation "
                      "pour procédure avant cette date."]
        recipients = list(User.objects.filter(organisation=org, role="supervisor", is_active=True)
                          .exclude(email="").values_list("email", flat=True))
        if recipients:
            messages.append((f"[Témoin] {len(upcoming)} effacement(s) dans les {hours} heures — {org.name}",
                             "\n".join(lines), None, recipients))
    if messages:
        send_mass_mail(messages, fail_silently=False)
    return len(messages)


# --- Tags (CSI L241-2: trigger reason, information of the people filmed) ----------------------

TAG_FIELDS = ("trigger_reason", "subject_notified", "notice_omitted_reason", "purpose", "intervention")
TAGGERS = {"officer", "supervisor"}


def recording_tag(*, recording: Recording, by: User, changes: dict, now: dt.datetime | None = None) -> Recording:
    """Complete or correct a recording's tags; logs old and new values (CSI R241-14).

    The wearer tags their own recordings; supervisors tag those of their service. Not notifying
    the people filmed requires the reason (CSI L241-2: "sauf si les circonstances l'interdisent").
    """
    from .models import Purpose, TriggerReason

    if by.role not in TAGGERS:
        raise PermissionError("only the wearer or a supervisor tags recordings")
    unknown = set(changes) - set(TAG_FIELDS)
    if unknown:
        raise ValueError(f"not a tag: {', '.join(sorted(unknown))}")
    now = now or timezone.now()
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.organisation_id != by.organisation_id or (by.role == "officer" and rec.wearer_id != by.pk):
            raise PermissionError("recording outside your perimeter")
        if rec.gone:
            raise ValueError("an erased recording cannot be tagged")
        new = {f: changes.get(f, getattr(rec, f)) for f in TAG_FIELDS}
        if new["trigger_reason"] not in ("", *TriggerReason.values):
            raise ValueError(f"trigger_reason must be one of {', '.join(TriggerReason.values)}")
        if new["purpose"] not in ("", *Purpose.values):
            raise ValueError(f"purpose must be one of {', '.join(Purpose.values)}")
        if new["subject_notified"] not in (None, True, False):
            raise ValueError("subject_notified must be true or false")
        new["notice_omitted_reason"] = (new["notice_omitted_reason"] or "").strip()
        new["intervention"] = (new["intervention"] or "").strip()[:100]
        if new["subject_notified"] is False and not new["notice_omitted_reason"]:
            raise ValueError("notice_omitted_reason: say why the people filmed were not told")
        if new["subject_notified"] is True:
            new["notice_omitted_reason"] = ""
        diff = {f: [getattr(rec, f), v] for f, v in new.items() if getattr(rec, f) != v}
        if not diff:
            return rec
        for f, (_old, value) in diff.items():
            setattr(rec, f, value)
        rec.save(update_fields=list(diff))
        # CSI R241-13: a hold covers the recordings it was placed on; changing the intervention
        # tag neither brings a recording under a hold nor takes it out of one (holds.py).
        custody_event_append(action="recording.tagged", subject=rec, actor=by, details={"changes": diff})
        if "intervention" in diff:  # issue #21: the link the tag made follows the tag
            recording_intervention_retagged(recording=rec, old_reference=diff["intervention"][0], by=by, now=now)
    return rec


# --- Consultation: motif before media (CSI R241-14) --------------------------------------------

CONSULTATION_TTL = dt.timedelta(minutes=30)
# Motifs offered to the user before viewing (free text may be added).
CONSULTATION_MOTIFS = [
    "Compte rendu de l'intervention par l'agent porteur",
    "Contrôle hiérarchique de l'intervention",
    "Réquisition ou demande de l'autorité judiciaire",
    "Enquête administrative",
    "Procédure disciplinaire",
    "Demande d'accès d'une personne filmée",
    "Vérification technique de l'enregistrement",
]


def consultation_open(*, recording: Recording, by: User, motif: str, now: dt.datetime | None = None):
    """Log a consultation with its motif, then hand out a short-lived media token bound to it.

    CSI R241-11 IV: viewing only after the intervention and the transfer, so only recordings
    verified in the store can be consulted; the technical administrator never sees media.
    """
    import secrets

    from .models import Consultation

    motif = (motif or "").strip()
    if len(motif) < 3:
        raise ValueError("motif: state why you view this recording")
    if by.role == "admin":
        raise PermissionError("the technical administrator never sees media")
    if recording.status not in (Recording.Status.READY, Recording.Status.UNPLAYABLE) or not recording.playback_key:
        raise ValueError("this recording has no playback copy yet")
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        consultation = Consultation.objects.create(
            recording=recording, user=by, motif=motif[:2000], created_at=now, expires_at=now + CONSULTATION_TTL,
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        )
        custody_event_append(action="recording.consulted", subject=recording, actor=by, motif=motif[:2000],
                             recipients=[by.username],
                             details={"consultation": consultation.pk, "expires_at": consultation.expires_at.isoformat()})
    return consultation, token


def consultation_for_token(*, token: str, user: User, now: dt.datetime | None = None):
    """The live consultation a media token belongs to, for that same user; None otherwise."""
    from .models import Consultation

    now = now or timezone.now()
    c = (Consultation.objects.select_related("recording").filter(
        token_sha256=hashlib.sha256(token.encode()).hexdigest()).first())
    if c is None or c.user_id != getattr(user, "pk", None) or c.expires_at <= now:
        return None
    if c.recording.gone:
        return None
    return c


# --- Review, comments and bookmarks (issue #4) -------------------------------------------------

REVIEWERS = {"supervisor"}


def recording_review(*, recording: Recording, by: User, state: str, note: str = "",
                     now: dt.datetime | None = None) -> Recording:
    """A supervisor marks a recording reviewed or flagged (hierarchical control, CSI R241-12)."""
    from .models import ReviewState

    if by.role not in REVIEWERS:
        raise PermissionError("only a supervisor reviews recordings")
    if state not in ReviewState.values:
        raise ValueError(f"state must be one of {', '.join(ReviewState.values)}")
    note = (note or "").strip()
    if state == ReviewState.FLAGGED and not note:
        raise ValueError("note: say why the recording is flagged")
    now = now or timezone.now()
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.organisation_id != by.organisation_id:
            raise PermissionError("recording outside your perimeter")
        if state == ReviewState.REVIEWED:  # issue 20: consulted by the reviewer and tagged first
            from .review import review_check

            review_check(recording=rec, by=by)
        old = rec.review_state
        rec.review_state, rec.review_note = state, note
        rec.reviewed_by, rec.reviewed_at = (None, None) if state == ReviewState.UNREVIEWED else (by, now)
        rec.save(update_fields=["review_state", "review_note", "reviewed_by", "reviewed_at"])
        custody_event_append(action="recording.reviewed", subject=rec, actor=by, now=now,
                             details={"from": old, "to": state, "note": note})
    return rec


def annotation_add(*, recording: Recording, by: User, at_seconds: float, text: str, kind: str = "comment",
                   now: dt.datetime | None = None):
    """A timecoded comment or bookmark; only someone who may see the recording reaches this."""
    from .models import Annotation

    text = (text or "").strip()
    if kind not in Annotation.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(Annotation.Kind.values)}")
    if not text:
        raise ValueError("text: write the comment")
    if len(text) > 2000:
        raise ValueError("text: 2000 characters at most")
    try:
        at_seconds = float(at_seconds)
    except (TypeError, ValueError):
        raise ValueError("at_seconds: a time in seconds from the start of the recording") from None
    if not (0 <= at_seconds <= max(recording.duration or 0, 0) + 1) or at_seconds != at_seconds:
        raise ValueError("at_seconds: outside the recording")
    if by.role == "admin" or by.organisation_id != recording.organisation_id:
        raise PermissionError("recording outside your perimeter")
    if recording.gone:
        raise ValueError("an erased recording cannot be annotated")
    now = now or timezone.now()
    with transaction.atomic():
        note = Annotation.objects.create(recording=recording, organisation_id=recording.organisation_id, author=by,
                                         kind=kind, at_seconds=round(at_seconds, 3), text=text, created_at=now)
        custody_event_append(action="recording.annotated", subject=recording, actor=by, now=now,
                             details={"annotation": note.pk, "kind": kind, "at_seconds": note.at_seconds})
    return note


# --- Individual grants (CSI R241-12: agents individually designated and authorised) ------------

GRANTORS = {"supervisor"}


def recording_access_grant(*, grantee: User, by: User, until: dt.datetime, motif: str,
                           recordings=None, intervention: str = "", now: dt.datetime | None = None) -> int:
    """Let one person see given recordings (or every recording of an intervention) until a date.

    Returns the number of recordings granted. Logged like any authorisation (CSI R241-12, R241-14).
    """
    from django.contrib.auth.models import Permission

    from .models import RecordingUserObjectPermission

    now = now or timezone.now()
    motif = (motif or "").strip()
    if by.role not in GRANTORS:
        raise PermissionError("only the head of service grants access")
    if grantee.organisation_id != by.organisation_id or grantee.role == "admin" or not grantee.is_active:
        raise ValueError("grantee: an active person of your service (never the technical administrator)")
    if not motif:
        raise ValueError("motif: say why this person needs these recordings")
    if until <= now:
        raise ValueError("until: a date in the future")
    if until > now + dt.timedelta(days=366):
        raise ValueError("until: one year at most; renew the grant if needed")
    qs = Recording.objects.filter(organisation_id=by.organisation_id).exclude(status=Recording.Status.DUPLICATE)
    if intervention:
        qs = qs.filter(intervention=intervention.strip())
    elif recordings is not None:
        qs = qs.filter(pk__in=[getattr(r, "pk", r) for r in recordings])
    else:
        raise ValueError("recordings or intervention: say what is granted")
    perm = Permission.objects.get(codename="view_recording_granted", content_type__app_label="evidence")
    with transaction.atomic():
        ids = list(qs.values_list("pk", flat=True))
        if not ids:
            raise ValueError("nothing to grant: no recording matches")
        for rid in ids:
            RecordingUserObjectPermission.objects.update_or_create(
                user=grantee, permission=perm, content_object_id=rid,
                defaults={"expires_at": until, "granted_by": by, "motif": motif})
        custody_event_append(action="access.granted", subject=grantee, organisation=grantee.organisation, actor=by,
                             motif=motif, now=now, details={"recordings": ids, "intervention": intervention,
                                                            "until": until.isoformat(), "grantee": grantee.username})
    return len(ids)


def recording_access_revoke(*, grantee: User, by: User, motif: str = "", now: dt.datetime | None = None) -> int:
    from .models import RecordingUserObjectPermission

    if by.role not in GRANTORS or grantee.organisation_id != by.organisation_id:
        raise PermissionError("only the head of service of that person revokes access")
    with transaction.atomic():
        rows = RecordingUserObjectPermission.objects.filter(user=grantee)
        ids = list(rows.values_list("content_object_id", flat=True))
        rows.delete()
        custody_event_append(action="access.revoked", subject=grantee, organisation=grantee.organisation, actor=by,
                             motif=motif, now=now, details={"recordings": ids, "grantee": grantee.username})
    return len(ids)
