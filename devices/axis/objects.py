"""The other objects of an Axis recording container (bookmarks, tracks, attachments): stored
write-once beside the clips with the container's retention (CSI R241-11 V, R241-13), applied to
its recordings and logged in the same transaction (CSI R241-14).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Mapping

from django.db import transaction
from django.utils import timezone

from audit.services import custody_event_append
from evidence.integrations.store import HashingReader, ReadAhead, StoreError, get_store

from . import formats, services
from .body import NETWORK_CHUNK, RequestBody, Slices, TruncatedUpload, free_space_check, out_of_space
from .errors import AxisError, ChecksumMismatch, OutOfSpace, UploadInterrupted
from .ingest import Received, axis_retention
from .models import AxisClip, AxisObject, AxisRecording

log = logging.getLogger(__name__)

ACTOR = services.ACTOR
# Bookmarks and tracks are parsed in memory up to this size; larger ones are only stored.
PARSE_LIMIT = 64 * 1024 * 1024


def _attachment_key(container: AxisRecording, obj: AxisObject) -> str:
    ext = {"bookmark": ".txt", "track": ".json", "key": ".key"}.get(obj.kind, ".bin")
    serial = container.device.serial if container.device_id else "unknown"
    return f"attachments/{container.organisation.slug}/{serial}/{obj.uuid}{ext}"


def object_receive(*, container: AxisRecording, name: str, metadata: Mapping[str, str], body: RequestBody,
                   length: int | None, client_md5: str = "", now: dt.datetime | None = None) -> Received:
    """A bookmark, GNSS track, key file or unknown object: kept write-once, parsed when we know it.

    The bytes are personal data that follow the recording's fate (``services.containers_purge``).
    """
    now = now or timezone.now()
    store = get_store()
    org = container.organisation
    kind = formats.object_kind(name)
    reader = body.with_md5()
    free_space_check(store, length)
    small = length is not None and length <= PARSE_LIMIT
    try:
        raw = reader.drain_bytes() if small else None
    except TruncatedUpload as exc:
        raise UploadInterrupted(str(exc)) from exc
    if raw is not None:
        sha = hashlib.sha256(raw).hexdigest()
        current = (AxisObject.objects.filter(container=container, name=name).order_by("-pk").first())
        if current is not None and current.sha256 == sha and current.metadata == dict(metadata):
            return Received(status=201, etag=current.md5, obj=current)  # the same object again
    retain_until = axis_retention(org, container.started_at, now).retain_until
    obj = AxisObject(container=container, name=name, kind=kind, metadata=dict(metadata), created_at=now,
                     retain_until=retain_until)
    obj.store_key = _attachment_key(container, obj)
    import io

    source = io.BytesIO(raw) if raw is not None else Slices(ReadAhead(reader, NETWORK_CHUNK, depth=8))
    try:
        try:
            stored = store.put(obj.store_key, HashingReader(source), retain_until=retain_until,
                               content_type="application/json" if kind == "track" else "application/octet-stream")
        finally:
            if isinstance(source, Slices):
                source.close()
        back = store.digest(obj.store_key, stored.version_id)
        if back != (stored.sha256, stored.size):
            raise StoreError(f"read-back mismatch for {obj.store_key}")
    except TruncatedUpload as exc:
        raise UploadInterrupted(str(exc)) from exc
    except (OSError, StoreError) as exc:
        log.warning("Axis object %s/%s not stored: %s", container.name, name, exc)
        raise (OutOfSpace(f"the store is full: {exc}") if out_of_space(exc) else AxisError(str(exc))) from exc
    md5 = reader.md5.hexdigest()
    if client_md5 and md5 != client_md5.strip('"').lower():
        raise ChecksumMismatch(f"MD5 of the bytes received {md5} differs from the ETag sent {client_md5}")
    obj.sha256, obj.size, obj.md5, obj.store_version_id = stored.sha256, stored.size, md5, stored.version_id
    errors: list[str] = []
    if raw is None and kind in ("bookmark", "track"):
        errors.append(f"larger than {PARSE_LIMIT} bytes: stored, not read")
    with transaction.atomic():
        obj.errors = errors
        obj.save()
        if kind == "bookmark" and raw is not None:
            services.bookmark_apply(obj=obj, metadata=metadata, now=now,
                                    description=raw.decode("utf-8", errors="replace"))
        elif kind == "track" and raw is not None:
            obj.errors = errors + services.track_apply(obj=obj, raw=raw, now=now)
            obj.save(update_fields=["errors"])
        custody_event_append(
            action="axis.object_stored", subject=container, organisation=org, actor_label=ACTOR, now=now,
            details={"container": container.name, "object": name, "kind": kind, "key": obj.store_key,
                     "version_id": obj.store_version_id, "sha256": obj.sha256, "size": obj.size,
                     "metadata": dict(metadata), "errors": obj.errors[:20],
                     "read_back_sha256": back[0], "retain_until": retain_until.isoformat()},
        )
    return Received(status=201, etag=md5, obj=obj)


def object_metadata_replace(*, container: AxisRecording, name: str, metadata: Mapping[str, str],
                            now: dt.datetime | None = None) -> None:
    """``POST /<container>/<object>``: replaces the object's metadata (Swift); a bookmark is re-read."""
    from .errors import NotFound

    now = now or timezone.now()
    with transaction.atomic():
        clip = AxisClip.objects.select_for_update().filter(container=container, name=name).first()
        obj = AxisObject.objects.select_for_update().filter(container=container, name=name).order_by("-pk").first()
        if clip is None and obj is None:
            raise NotFound(f"no object {name}")
        target = clip or obj
        old = target.metadata
        target.metadata = dict(metadata)
        target.save(update_fields=["metadata"])
        if obj is not None and obj.kind == "bookmark" and clip is None:
            bookmark = getattr(obj, "bookmark", None)
            services.bookmark_apply(obj=obj, metadata=metadata, now=now,
                                    description=bookmark.description if bookmark else "")
        custody_event_append(
            action="axis.object_metadata_updated", subject=clip.recording if clip else container,
            organisation=container.organisation, actor_label=ACTOR, now=now,
            details={"container": container.name, "object": name, "old": old, "new": dict(metadata)},
        )
