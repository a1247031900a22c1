"""The partner's uploads: the core of tus 1.0 (creation, offsets, appends), staged, then stored.

Bytes arrive in PATCH requests and are appended to a staging file under TEMOIN_DATA_DIR
(``requisitions/staging/<upload id>``: the partner's filename is metadata only, never a path).
They are hashed as they arrive. hashlib objects cannot be pickled, so the SHA-256 state of an
upload lives in the process that received its last chunk (``_HASHES``); a PATCH that lands in
another process, or after a restart, hashes the staged prefix again once, then goes on
incrementally. When the last byte arrives the staged file is streamed into the write-once store
(evidence/ingest/stream.py, as the offload does), its SHA-256 there must equal the one computed on
arrival, it is read back and its lock checked, and the recording is written with its custody
events ``recording.collected``, ``recording.stored`` and ``recording.verified`` in one transaction
(CSI R241-11 III and V, R241-14). A file whose SHA-256 differs from the one the partner gave is
refused (the partner is told and may send it again) but kept: it stays in the store under a
failed recording, under custody, until its retention end, as the Axis path keeps a clip whose MD5
differs. Nothing is lost, nothing is overwritten.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import logging
import mimetypes
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import custody_event_append, custody_events_append_many

from ..dispatch import bundle_enqueue_unpack, recording_enqueue_media
from ..ingest.stream import live_duplicate, stored_verified_events, stream_put
from ..integrations.store import StoreError, get_store
from ..models import Recording, Source
from ..retention.regimes import requisition_retention_decide
from .bundles import upload_flags
from .pairing import sidecar_pair
from .staging import StagingFull, staged_path, staging_room_check
from .models import Requisition, RequisitionDeclarant, RequisitionUpload

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
# The largest file a partner may send (a day of a camera's footage is a few GB).
EXTENSION_RE = re.compile(r"\.[a-z0-9]{1,8}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")

_HASHES: dict[str, tuple[int, "hashlib._Hash"]] = {}
_HASHES_LOCK = threading.Lock()


class TusError(Exception):
    """A request the protocol refuses: ``status`` is the HTTP answer, the message its body."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def max_size() -> int:
    return int(settings.TEMOIN_REQUISITION_MAX_SIZE)


def metadata_parse(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent)."""
    result: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in (header or "").split(","))):
        key, _, value = pair.partition(" ")
        if not key or " " in value.strip() or key in result:
            raise TusError(400, f"Upload-Metadata: malformed pair {pair[:60]!r}")
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise TusError(400, f"Upload-Metadata: {key} is not base64 of UTF-8 text") from exc
    return result


def requisition_usable(requisition: Requisition | None, now: dt.datetime) -> Requisition:
    """404 for an unknown link; 410 once it has expired (the partner's link is single-purpose)."""
    if requisition is None:
        raise TusError(404, "unknown upload link")
    if now >= requisition.expires_at:
        raise TusError(410, f"this upload link expired at {requisition.expires_at.isoformat()}")
    return requisition


def upload_create(*, requisition: Requisition, length: int, metadata: dict[str, str],
                  declarant: RequisitionDeclarant | None = None, now: dt.datetime | None = None) -> RequisitionUpload:
    """tus creation: an empty staged file for ``length`` bytes; logged (CSI R241-14)."""
    now = now or timezone.now()
    if length <= 0:
        # An empty file holds no footage: the partner is told at once (nothing to keep).
        raise TusError(400, "Upload-Length must be at least 1: an empty file holds no footage")
    if length > max_size():
        raise TusError(413, f"Upload-Length {length} exceeds Tus-Max-Size {max_size()}")
    partner_sha = (metadata.get("sha256") or "").strip().lower()
    if partner_sha and not SHA256_RE.fullmatch(partner_sha):
        raise TusError(400, "Upload-Metadata: sha256 must be 64 hexadecimal digits")
    filename = (metadata.get("filename") or "").strip()[:255]
    try:
        staging_room_check(length=length, now=now)
    except StagingFull as exc:
        raise TusError(507, str(exc)) from exc
    with transaction.atomic():
        upload = RequisitionUpload.objects.create(
            requisition=requisition, uid=secrets.token_hex(16), filename=filename, length=length,
            partner_sha256=partner_sha, declarant=declarant, created_at=now)
        with open(staged_path(upload), "xb"):
            pass
        custody_event_append(
            action="requisition.upload_started", subject=requisition, organisation=requisition.organisation,
            actor_label=f"partner:{requisition.partner}"[:200],
            details={"upload": upload.uid, "filename": filename, "length": length,
                     "partner_sha256": partner_sha or None,
                     "declarant": declarant.as_dict() if declarant else None})
    return upload


@dataclass
class Appended:
    offset: int
    upload: RequisitionUpload


def upload_append(*, upload: RequisitionUpload, offset: int, body: BinaryIO, content_length: int | None,
                  now: dt.datetime | None = None) -> Appended:
    """tus PATCH: append the body at ``offset``; when the last byte is in, store and verify.

    The staged file is the truth of the offset; it is locked while a PATCH writes (423 to another).
    An interrupted body keeps what arrived: the partner asks HEAD for the offset and goes on.
    """
    if upload.status != RequisitionUpload.Status.RECEIVING:
        raise TusError(403, f"this upload is finished ({upload.status}): {upload.message or 'nothing more to send'}")
    if content_length is None:
        raise TusError(411, "Content-Length is required")
    path = staged_path(upload)
    with open(path, "r+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise TusError(423, "another request is appending to this upload") from exc
        size = os.fstat(fh.fileno()).st_size
        if offset != size:
            raise TusError(409, f"Upload-Offset {offset} does not match the upload's offset {size}")
        if size + content_length > upload.length:
            raise TusError(413, f"{content_length} bytes at offset {size} exceed Upload-Length {upload.length}")
        sha = _hash_state(upload, fh, size)
        fh.seek(size)
        remaining = content_length
        try:
            while remaining:
                data = body.read(min(remaining, 1 << 20))
                if not data:
                    break
                fh.write(data)
                sha.update(data)
                remaining -= len(data)
        except OSError as exc:  # the connection broke: what arrived is kept
            log.info("upload %s interrupted: %s", upload.uid, exc)
        fh.flush()
        os.fsync(fh.fileno())
        size = fh.tell()
        with _HASHES_LOCK:
            _HASHES[upload.uid] = (size, sha)
        RequisitionUpload.objects.filter(pk=upload.pk).update(offset=size)
        upload.offset = size
        if size == upload.length:
            # Still under the staging file's lock: a concurrent PATCH at the end (0 bytes) cannot
            # store the file a second time; it finds the upload finished.
            upload = upload_complete(upload=upload, sha256=sha.hexdigest(), now=now)
    return Appended(offset=size, upload=upload)


def _hash_state(upload: RequisitionUpload, fh: BinaryIO, size: int):
    """The SHA-256 state of the staged prefix: kept from the previous PATCH in this process, or the
    prefix hashed again (another worker process, or after a restart)."""
    with _HASHES_LOCK:
        state = _HASHES.pop(upload.uid, None)
    if state is not None and state[0] == size:
        return state[1]
    sha = hashlib.sha256()
    fh.seek(0)
    left = size
    while left:
        data = fh.read(min(left, settings.TEMOIN_CHUNK_SIZE))
        if not data:
            break
        sha.update(data)
        left -= len(data)
    return sha


def upload_complete(*, upload: RequisitionUpload, sha256: str, now: dt.datetime | None = None) -> RequisitionUpload:
    """The last byte is in: store the staged file write-once, read it back, record it under custody."""
    now = now or timezone.now()
    upload = RequisitionUpload.objects.select_related("declarant").get(pk=upload.pk)
    if upload.status != RequisitionUpload.Status.RECEIVING:
        return upload  # finished by an earlier request
    requisition = Requisition.objects.select_related("organisation", "camera").get(pk=upload.requisition_id)
    org, camera = requisition.organisation, requisition.camera
    actor_label = f"partner:{requisition.partner}"[:200]
    store = get_store()
    # Retention follows the requisition's regime (evidence/retention/regimes.py; CSI R241-13, L252-5).
    decision = requisition_retention_decide(requisition=requisition, received_at=now, organisation=org,
                                            grace=settings.TEMOIN_LATE_DOCKING_GRACE)
    suffix = Path(upload.filename).suffix.lower()
    ext = suffix if EXTENSION_RE.fullmatch(suffix) else ".bin"
    with open(staged_path(upload), "rb") as fh:
        # A ZIP (by its bytes) is an export bundle, unpacked once stored; a file that is neither a
        # video container nor a bundle is kept as evidence and flagged (docs/requisitions.md).
        kind, flags = upload_flags(upload.filename, fh.read(4))
    recording = Recording(
        organisation=org, camera=camera, wearer=None, source=Source.REQUISITION, regime=requisition.regime,
        source_path=f"requisition {requisition.pk}: {upload.filename}"[:1000], source_size=upload.length,
        source_mtime_ns=int(now.timestamp() * 1e9), started_at=None, time_source="requisition",
        time_attested=False, camera_sha256=upload.partner_sha256, retain_until=decision.retain_until,
        retention_basis=decision.basis[:500], ingested_at=now, status=Recording.Status.RECEIVING,
        intervention="", sidecar_errors=flags,
    )
    recording.store_key = f"originals/{org.slug}/{camera.serial}/{recording.uuid}{ext}"
    collected = dict(
        action="recording.collected", subject=recording, actor_label=actor_label,
        details={"source": Source.REQUISITION.value, "regime": requisition.regime, "requisition": requisition.pk,
                 "reference": requisition.reference, "partner": requisition.partner, "upload": upload.uid,
                 "filename": upload.filename, "size": upload.length, "partner_sha256": upload.partner_sha256 or None,
                 "declarant": upload.declarant.as_dict() if upload.declarant_id else None,
                 "sha256_on_arrival": sha256, "retain_until": decision.retain_until.isoformat(),
                 "retention_basis": decision.basis, "camera": camera.serial, "kind": kind, "flags": flags},
    )
    content_type = mimetypes.guess_type(f"x{ext}")[0] or "application/octet-stream"
    try:
        with open(staged_path(upload), "rb") as fh:
            # Large files are verified by a second SHA-256 rather than kept in memory.
            stored, _ = stream_put(store=store, key=recording.store_key, fh=fh, retain_until=decision.retain_until,
                                   content_type=content_type, keep_up_to=0)
        if (stored.sha256, stored.size) != (sha256, upload.length):
            raise StoreError(f"the staged file changed: {stored.sha256}/{stored.size} stored, "
                             f"{sha256}/{upload.length} received")
        back_sha, readback, info = store.verify_written(stored, None, decision.retain_until)
    except (OSError, StoreError) as exc:
        # The staged file stays: nothing received is lost; the message says what failed.
        log.warning("requisition upload %s could not be stored: %s", upload.uid, exc)
        with transaction.atomic():
            RequisitionUpload.objects.filter(pk=upload.pk).update(
                status=RequisitionUpload.Status.FAILED, message=str(exc)[:2000], sha256=sha256)
            custody_event_append(action="requisition.upload_failed", subject=requisition, organisation=org,
                                 actor_label=actor_label, details={"upload": upload.uid, "error": str(exc)[:2000]})
        raise TusError(500, f"the file could not be stored: {exc}") from exc

    refused = bool(upload.partner_sha256) and upload.partner_sha256 != stored.sha256
    with transaction.atomic():
        upload = RequisitionUpload.objects.select_for_update().get(pk=upload.pk)
        recording.sha256, recording.size = stored.sha256, stored.size
        recording.store_version_id, recording.verified_at = stored.version_id, timezone.now()
        recording.camera_hash_matches = (not refused) if upload.partner_sha256 else None
        other = None
        if refused:
            message = (f"SHA-256 of the bytes received {stored.sha256} differs from the one given "
                       f"{upload.partner_sha256}: file refused, kept under custody; send it again")
            recording.status, recording.status_message = Recording.Status.FAILED, message
            upload.status, upload.message = RequisitionUpload.Status.REFUSED, message
        else:
            other = live_duplicate(recording=recording, sha256=stored.sha256)
            if other is not None:
                recording.status, recording.duplicate_of = Recording.Status.DUPLICATE, other
                recording.status_message = f"same content as recording {other.pk}"
                upload.status, upload.message = RequisitionUpload.Status.DUPLICATE, recording.status_message
            else:
                recording.status = Recording.Status.STORED
                upload.status, upload.message = RequisitionUpload.Status.STORED, ""
        recording.save()
        events = [collected, *stored_verified_events(
            recording=recording, stored=stored, back_sha=back_sha, readback=readback, info=info,
            actor_label=actor_label, duplicate_of=other.pk if other else None,
            verified_details={"partner_sha256": upload.partner_sha256 or None,
                              "partner_hash_matches": recording.camera_hash_matches})]
        if refused:
            events.append(dict(action="recording.store_failed", subject=recording, actor_label=actor_label,
                               details={"error": recording.status_message, "final": True}))
        custody_events_append_many(events)
        upload.sha256, upload.recording, upload.completed_at, upload.offset = stored.sha256, recording, now, upload.length
        upload.report = {"kind": kind, "flags": flags} if not refused else {}
        if flags and upload.status == RequisitionUpload.Status.STORED:
            upload.message = "; ".join(flags)
        upload.save()
        path = staged_path(upload)
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
        if recording.status == Recording.Status.STORED and kind == "bundle":
            transaction.on_commit(lambda: bundle_enqueue_unpack(recording_id=recording.pk))
        elif recording.status == Recording.Status.STORED:
            transaction.on_commit(lambda: recording_enqueue_media(recording_id=recording.pk))
    with _HASHES_LOCK:
        _HASHES.pop(upload.uid, None)
    if refused:
        raise TusError(422, upload.message)
    if upload.status == RequisitionUpload.Status.STORED and kind != "bundle":
        sidecar_pair(upload=upload)  # a clip and its sidecar sent as two files (pairing.py)
    return upload


def upload_terminate(*, upload: RequisitionUpload, now: dt.datetime | None = None) -> None:
    """tus termination: the partner abandons an unfinished upload; its partial bytes are removed."""
    if upload.status != RequisitionUpload.Status.RECEIVING:
        raise TusError(403, f"this upload is finished ({upload.status}) and stays under custody")
    with transaction.atomic():
        upload = RequisitionUpload.objects.select_for_update().get(pk=upload.pk)
        upload.status, upload.message = RequisitionUpload.Status.FAILED, "terminated by the partner"
        upload.completed_at = now or timezone.now()
        upload.save(update_fields=["status", "message", "completed_at"])
        custody_event_append(action="requisition.upload_terminated", subject=upload.requisition,
                             organisation=upload.requisition.organisation,
                             actor_label=f"partner:{upload.requisition.partner}"[:200],
                             details={"upload": upload.uid, "offset": upload.offset, "length": upload.length})
        path = staged_path(upload)
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
    with _HASHES_LOCK:
        _HASHES.pop(upload.uid, None)
