"""A partner's export bundle, stored and verified, unpacked: each clip becomes its own recording.

The bundle (the ZIP the partner uploaded) is already a recording, stored write-once and verified
by ``upload.upload_complete``; it stays, as it came, as evidence (CSI R241-11 V). Its clips are
read from the store (what is under custody, not the staging copy), each streamed straight into
the store under a key made of its own recording's uuid (a member's name is never a path:
nothing is written outside the store), hashed on the way, read back, and recorded with the
requisition's source and regime, its bundle, and the times, camera name and hash the manifest or
its sidecar gives. A hash that differs from the manifest's is flagged and the clip kept. Members
that are no clip (a player, an unknown container) stay in the bundle and are listed with the
reason, as the offload lists what it leaves on a camera. Each clip's custody events are written
in the transaction that records it (STYLE.md; CSI R241-14); a retry finds what an attempt that
died had written (as ``ingest.services.offload_item_pull`` does).
"""
from __future__ import annotations

import hashlib
import logging
import mimetypes
import zipfile
import zlib
from pathlib import PurePosixPath

from django.db import transaction
from django.utils import timezone

from audit.services import custody_event_append, custody_events_append_many

from ..dispatch import recording_enqueue_media
from ..ingest.stream import file_hash, live_duplicate, stored_verified_events, stream_put
from ..integrations.store import StoredObject, StoreError, get_store
from ..models import Recording, Source
from .bundles import BundlePlan, Member, bundle_plan
from .models import RequisitionUpload
from .upload import EXTENSION_RE

log = logging.getLogger(__name__)

MEMBER_ERRORS = (OSError, StoreError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError)


class _ExtraHash:
    """Reads through, feeding a second digest (the manifest's MD5 or SHA-1) on the way."""

    def __init__(self, raw, algorithm: str):
        self.raw, self.digest = raw, hashlib.new(algorithm)

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        return data


def bundle_unpack(*, recording_id: int, final_attempt: bool = True) -> RequisitionUpload:
    """Unpack the bundle recorded as ``recording_id`` (idempotent: a redelivered task finds it done).

    A store error on a clip, when this is not the final attempt, is raised for the task to retry
    (the clips done are skipped, the interrupted one taken over); on the final attempt the clip is
    recorded as failed and the others go on."""
    upload = RequisitionUpload.objects.select_related("requisition__organisation", "recording").get(
        recording_id=recording_id)
    if upload.report.get("unpacked_at"):
        return upload
    bundle, requisition = upload.recording, upload.requisition
    store = get_store()
    tz_name = requisition.organisation.time_zone
    results: list[dict] = []
    with store.local_path(bundle.store_key, bundle.store_version_id) as path:
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            zf, plan = None, BundlePlan(refused=f"not a readable ZIP archive ({exc}): not unpacked")
        if zf is not None:
            with zf:
                try:
                    plan = bundle_plan(zf, tz_name=tz_name)
                except MEMBER_ERRORS as exc:
                    plan = BundlePlan(refused=f"the archive could not be read ({exc}): not unpacked")
                for member in plan.clips:
                    results.append(_member_ingest(zf, member, upload, bundle, store, final_attempt))
    return _bundle_finish(upload, plan, results)


def _label(upload: RequisitionUpload, member: Member) -> str:
    return f"requisition {upload.requisition_id}: {upload.filename} [{member.index}] {member.name}"[:1000]


def _member_ingest(zf: zipfile.ZipFile, member: Member, upload: RequisitionUpload, bundle: Recording,
                   store, final_attempt: bool) -> dict:
    requisition, meta = upload.requisition, member.meta
    actor_label = f"partner:{requisition.partner}"[:200]
    label = _label(upload, member)
    summary = {"member": member.name, "index": member.index, "size": member.size}
    existing = Recording.objects.filter(bundle=bundle, source_path=label).order_by("-id").first()
    if existing is not None and existing.status not in (Recording.Status.RECEIVING, Recording.Status.FAILED):
        return {**summary, "recording": existing.pk, "status": existing.status}
    flags = list(meta.flags)
    values = dict(
        organisation=bundle.organisation, camera=bundle.camera, wearer=None, source=Source.REQUISITION,
        regime=requisition.regime, bundle=bundle, source_camera=meta.camera, source_path=label,
        source_size=member.size, source_mtime_ns=bundle.source_mtime_ns, started_at=meta.started_at,
        ended_at=meta.ended_at, time_source=meta.origin.split(" ", 1)[0] if meta.started_at else "requisition",
        time_attested=False, camera_sha256=meta.hash_value if meta.hash_algorithm == "sha256" else "",
        sidecar_sha256=member.sidecar_sha256, sidecar_errors=flags, retain_until=bundle.retain_until,
        retention_basis=bundle.retention_basis, ingested_at=timezone.now(), status=Recording.Status.RECEIVING,
        status_message="", intervention="",
    )
    with transaction.atomic():
        if existing is not None:  # a retry: same row, same key
            recording = existing
            for k, v in values.items():
                setattr(recording, k, v)
            action = "recording.collect_retried"
        else:
            recording = Recording(**values)
            suffix = PurePosixPath(member.name).suffix.lower()
            ext = suffix if EXTENSION_RE.fullmatch(suffix) else ".bin"
            recording.store_key = f"originals/{bundle.organisation.slug}/{bundle.camera.serial}/{recording.uuid}{ext}"
            action = "recording.collected"
        recording.save()
        custody_event_append(
            action=action, subject=recording, actor_label=actor_label,
            details={"source": Source.REQUISITION.value, "regime": requisition.regime, "requisition": requisition.pk,
                     "reference": requisition.reference, "partner": requisition.partner, "upload": upload.uid,
                     "bundle": bundle.pk, "bundle_sha256": bundle.sha256, "member": member.name,
                     "member_index": member.index, "size": member.size, "metadata_from": meta.origin or None,
                     "started_at": meta.started_at.isoformat() if meta.started_at else None,
                     "ended_at": meta.ended_at.isoformat() if meta.ended_at else None,
                     "source_camera": meta.camera or None,
                     "manifest_hash": ({"algorithm": meta.hash_algorithm, "value": meta.hash_value}
                                       if meta.hash_value else None),
                     "sidecar_sha256": member.sidecar_sha256 or None, "flags": flags,
                     "retain_until": bundle.retain_until.isoformat(), "retention_basis": bundle.retention_basis})
    content_type = mimetypes.guess_type(member.name.replace("\\", "/"))[0] or "application/octet-stream"
    extra = None
    try:
        with zf.open(zf.infolist()[member.index]) as raw:
            fh = raw
            if meta.hash_algorithm in ("md5", "sha1"):
                fh = extra = _ExtraHash(raw, meta.hash_algorithm)
            kept = None
            if store.exists(recording.store_key):  # written by an attempt that died before recording it
                sha, size = file_hash(fh)
                if (sha, size) != store.digest(recording.store_key):
                    raise StoreError(f"{recording.store_key} exists with other content")
                head = store.head(recording.store_key)
                stored = StoredObject(recording.store_key, head.version_id, size, sha)
                if head.retain_until is None or head.retain_until < bundle.retain_until:
                    store.extend_retention(recording.store_key, head.version_id, bundle.retain_until)
            else:
                stored, kept = stream_put(store=store, key=recording.store_key, fh=fh,
                                          retain_until=bundle.retain_until, content_type=content_type)
        if stored.size != member.size:
            raise StoreError(f"{stored.size} bytes unpacked, the archive declares {member.size}")
        back_sha, readback, info = store.verify_written(stored, kept, bundle.retain_until)
    except MEMBER_ERRORS as exc:
        if isinstance(exc, StoreError) and not final_attempt:
            raise  # the store may be back at the next attempt; this clip's row waits, receiving
        message = f"member {member.name} could not be unpacked: {exc}"[:2000]
        log.warning("bundle %s: %s", bundle.pk, message)
        with transaction.atomic():
            Recording.objects.filter(pk=recording.pk).update(status=Recording.Status.FAILED, status_message=message)
            custody_event_append(action="recording.store_failed", subject=recording, actor_label=actor_label,
                                 details={"error": message, "final": True, "bundle": bundle.pk})
        return {**summary, "recording": recording.pk, "status": "failed", "error": message}

    computed = stored.sha256 if meta.hash_algorithm == "sha256" else (extra.digest.hexdigest() if extra else "")
    matches = (computed == meta.hash_value) if meta.hash_value else None
    if matches is False:
        # Flagged, kept: the manifest is the partner's word, the bytes are what was handed over.
        flags.append(f"{meta.hash_algorithm.upper()} {computed} differs from the one the {meta.origin} gives "
                     f"({meta.hash_value}): kept as received, flagged")
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        recording.sha256, recording.size = stored.sha256, stored.size
        recording.store_version_id, recording.verified_at = stored.version_id, timezone.now()
        recording.camera_hash_matches, recording.sidecar_errors = matches, flags
        other = live_duplicate(recording=recording, sha256=stored.sha256)
        if other is not None:
            recording.status, recording.duplicate_of = Recording.Status.DUPLICATE, other
            recording.status_message = f"same content as recording {other.pk}"
        else:
            recording.status, recording.status_message = Recording.Status.STORED, ""
        recording.save()
        custody_events_append_many(stored_verified_events(
            recording=recording, stored=stored, back_sha=back_sha, readback=readback, info=info,
            actor_label=actor_label, duplicate_of=other.pk if other else None,
            stored_details={"bundle": bundle.pk, "member": member.name},
            verified_details={"manifest_hash": meta.hash_value or None, "manifest_hash_algorithm":
                              meta.hash_algorithm or None, "manifest_hash_matches": matches, "flags": flags}))
        if recording.status == Recording.Status.STORED:
            pk = recording.pk
            transaction.on_commit(lambda: recording_enqueue_media(recording_id=pk))
    return {**summary, "recording": recording.pk, "status": recording.status,
            "hash_matches": matches, "flags": flags}


def _bundle_finish(upload: RequisitionUpload, plan: BundlePlan, results: list[dict]) -> RequisitionUpload:
    now = timezone.now()
    report = {"kind": "bundle", "unpacked_at": now.isoformat(), "refused": plan.refused or None,
              "manifests": plan.manifests, "clips": results, "ignored": plan.ignored}
    done = sum(1 for r in results if r["status"] != "failed")
    if plan.refused:
        message = f"export bundle kept as evidence, not unpacked: {plan.refused}"
    else:
        message = (f"export bundle: {done} clip(s) unpacked as recordings of their own"
                   + (f", {len(results) - done} failed" if done < len(results) else "")
                   + (f", {len(plan.ignored)} member(s) kept in the bundle only (flagged)" if plan.ignored else ""))
    with transaction.atomic():
        upload = RequisitionUpload.objects.select_for_update().get(pk=upload.pk)
        upload.report = report
        upload.message = message[:2000]
        upload.save(update_fields=["report", "message"])
        bundle = Recording.objects.select_for_update().get(pk=upload.recording_id)
        flags = [f"{i['path']}: {i['reason']}" for i in plan.ignored[:200]]
        if plan.refused:
            flags.insert(0, plan.refused)
        bundle.sidecar_errors = flags
        update = ["sidecar_errors"]
        if bundle.status in (Recording.Status.STORED, Recording.Status.PROCESSING):
            # An archive has no picture: the clips it held are played, the bundle is kept as it came.
            bundle.status, bundle.status_message = Recording.Status.UNPLAYABLE, message[:2000]
            update += ["status", "status_message"]
        bundle.save(update_fields=update)
        custody_event_append(
            action="recording.bundle_unpacked", subject=bundle, actor_label=f"partner:{upload.requisition.partner}"[:200],
            details={"requisition": upload.requisition_id, "upload": upload.uid, "refused": plan.refused or None,
                     "manifests": plan.manifests, "ignored": plan.ignored[:100],
                     "clips": [{k: r.get(k) for k in ("member", "recording", "status", "hash_matches")}
                               for r in results[:500]]})
    return upload
