"""Ingest: a docked camera's clips into the write-once store, verified, under custody.

LEGAL.md rule 2 (CSI L241-2, R241-11 III and V): recordings are transferred to a secure store as
soon as the agents return, and their integrity is guaranteed until erasure: one-pass SHA-256 while
streaming, the camera's hash checked, read-back verified, write-once storage, the camera wiped only
after every clip is verified. LEGAL.md rule 1 (CSI R241-10): every recording carries its wearer,
camera, times (``clock``, ``sidecar``). LEGAL.md rule 7 (CSI R241-14): every step is logged.

Every function that changes evidence writes its custody event in the same transaction (STYLE.md);
the media work is queued with ``transaction.on_commit`` through ``evidence.dispatch``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import mimetypes
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import custody_event_append, custody_events_append_many
from devices.models import Camera, Dock, DockSlot, OffloadItem, OffloadSession
from devices.selectors import DockingRefused, camera_for_docking
from devices.sources import mass_storage
from devices.sources.mass_storage import VolumeError

from ..dispatch import offload_items_enqueue, recording_enqueue_media
from ..integrations.store import ChunkPool, ObjectMissing, StoredObject, StoreError, get_store
from ..interventions.services import recording_link_named_intervention
from ..models import Recording, Regime, Source
from ..retention import CameraClock, retention_decide
from ..retention.holds import recording_join_held_intervention
from ..retention.objects import sidecar_key_for
from .clock import camera_clock, recording_times
from .sidecar import assignment_wearer, sidecar_read
from .stream import file_hash, live_duplicate, stored_verified_events, stream_put

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
    clock = camera_clock(camera, scan, now)
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


def _original_key(camera: Camera, recording_uuid, rel: str) -> str:
    ext = Path(rel).suffix.lower() or ".bin"
    return f"originals/{camera.organisation.slug}/{camera.serial}/{recording_uuid}{ext}"


def offload_pulls_requeue(*, dock: str) -> int:
    """Queue again the pulls still pending in the running sessions of ``dock`` (its worker has just
    started: a message lost by the broker when a worker died is not lost for good). A clip pulled
    meanwhile, or being pulled, is left alone by the task (``tasks._pull_lock``, the item's status)."""
    items = list(OffloadItem.objects.filter(
        status=OffloadItem.Status.PENDING, session__status=OffloadSession.Status.RUNNING,
        session__dock__name=dock).values_list("pk", flat=True))
    if items:
        offload_items_enqueue(item_ids=items, dock=dock)
        log.info("dock worker ready: %d pending pull(s) of dock %s queued again", len(items), dock)
    return len(items)


def offload_item_pull(*, item: OffloadItem, progress: Callable[[int], None] | None = None,
                      final_attempt: bool = True, now: dt.datetime | None = None,
                      keep_up_to: int | None = None, pool: ChunkPool | None = None) -> OffloadItem:
    """Pull one clip: stream it once into the store while hashing, verify, record custody.

    On failure the clip stays on the camera; the item is marked failed only on the final attempt
    (a Celery retry keeps it pending). Never raises for a bad clip: evidence is never refused.
    ``keep_up_to``: the most bytes of the clip kept in memory for the byte-for-byte read-back
    (default TEMOIN_READBACK_COMPARE_MAX; callers pulling several clips at once share that budget);
    ``pool``: buffers reused from one clip to the next (the offload command's).
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

    meta = sidecar_read(session, item)
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
    start, end, time_source, attested = recording_times(session, item, meta, volume / item.path, org)
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
        wearer = assignment_wearer(camera, start)
        wearer_source = "assignment" if wearer else ""

    f = meta.fields
    values = dict(
        organisation=org, camera=camera, offload_session=session, wearer=wearer, wearer_source=wearer_source,
        source=Source.CAMERA, regime=Regime.BODY_WORN,
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
        kept = None
        with mass_storage.volume_open(volume, item.path) as fh:
            before = os.fstat(fh.fileno())
            if store.exists(recording.store_key):
                # A previous attempt stored the object, then died before recording it.
                sha, size = file_hash(fh, progress)
                stored_sha, stored_size = store.digest(recording.store_key)
                if (sha, size) == (stored_sha, stored_size):
                    head = store.head(recording.store_key)
                    stored = StoredObject(recording.store_key, head.version_id, size, sha)
                    if head.mode != "COMPLIANCE" or head.retain_until is None or head.retain_until < retain_until:
                        # It may have died between writing and locking (after a multipart upload, S3
                        # takes the lock in a second request): lock it now. Extending is all the store
                        # allows (ARCHITECTURE.md §4, write-once); the check below proves the result.
                        store.extend_retention(recording.store_key, head.version_id, retain_until)
                else:
                    raise StoreError(f"{recording.store_key} exists with other content")
            else:
                stored, kept = stream_put(store=store, key=recording.store_key, fh=fh, retain_until=retain_until,
                                          content_type=content_type, progress=progress, keep_up_to=keep_up_to,
                                          pool=pool)
            after = os.fstat(fh.fileno())
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or stored.size != before.st_size \
                or before.st_size != item.size or before.st_mtime_ns != item.mtime_ns:
            raise ClipChanged(f"{item.path} changed on the camera while it was read")
        # 5. Read back from the store and check the lock: byte for byte against the bytes read
        # from the camera, still in memory for most clips; otherwise a second hash.
        back_sha, readback, info = store.verify_written(stored, kept, retain_until)
        if pool is not None and kept:
            pool.release(kept)  # read back: the next clip may read into these buffers
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


def _item_verified(item, recording, stored, back_sha, info, camera_sha, actor_label, readback) -> OffloadItem:
    verified_at = timezone.now()
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        other = live_duplicate(recording=recording, sha256=stored.sha256)
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
        custody_events_append_many(stored_verified_events(
            recording=recording, stored=stored, back_sha=back_sha, readback=readback, info=info,
            actor_label=actor_label, duplicate_of=other.pk if other else None,
            stored_details={"sidecar_key": recording.sidecar_key, "sidecar_sha256": recording.sidecar_sha256},
            verified_details={"camera_sha256": camera_sha or None,
                              "camera_hash_matches": recording.camera_hash_matches},
        ))
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
            sha, size = file_hash(fh, progress)
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


def _wipe_clip(volume: Path, item: OffloadItem) -> bool:
    """Remove a verified clip from the camera, and its sidecar if it is stored; True when the
    sidecar was removed."""
    os.unlink(volume / item.path)
    rec = item.recording
    if item.sidecar_path and rec is not None and rec.sidecar_key:
        try:
            os.unlink(volume / item.sidecar_path)
            return True
        except FileNotFoundError:
            pass
    return False


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
        wipe = []
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
            wipe.append(item)
        # Freeing a large clip's blocks takes the file system tens of milliseconds: the verified
        # clips are unlinked a few at a time (issue 19), then logged one by one, in path order.
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="wipe") as unlinks:
            removed = list(unlinks.map(lambda item: _wipe_clip(volume, item), wipe))
        for item, wiped_sidecar in zip(wipe, removed):
            rec = item.recording
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
