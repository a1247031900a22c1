"""What every ingest path does with a stream of bytes (issue 22, the start of "one ingest path").

Hash while storing, write once, read back, and the custody events that prove it: shared by the
mass-storage offload (``evidence.ingest.services``) and the requisition uploads
(``evidence.requisitions.upload``). LEGAL.md rule 2 (CSI R241-11 III and V): integrity from the
first byte read until erasure.
"""
from __future__ import annotations

import datetime as dt
from typing import BinaryIO, Callable

from django.conf import settings

from ..integrations.store import ChunkPool, HashingReader, ObjectStore, PooledReadAhead, ReadAhead, StoredObject
from ..models import LIVE_STATUSES, Recording


def file_hash(fh: BinaryIO, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """(SHA-256, size) of what ``fh`` still has to give, read once."""
    reader = HashingReader(fh, progress)
    for _ in reader.chunks(settings.TEMOIN_CHUNK_SIZE):
        pass
    return reader.sha256.hexdigest(), reader.size


def stream_put(*, store: ObjectStore, key: str, fh: BinaryIO, retain_until: dt.datetime, content_type: str,
               progress: Callable[[int], None] | None = None,
               keep_up_to: int | None = None, pool: ChunkPool | None = None,
               ) -> tuple[StoredObject, list[bytes] | None]:
    """Stream ``fh`` once into the write-once store under ``key``, hashing on the way.

    A thread reads a few chunks ahead (overlapping reading, hashing and writing). Returns the
    stored object and, when it fitted in ``keep_up_to`` (default TEMOIN_READBACK_COMPARE_MAX), the
    bytes written, for ``store.verify_written``'s byte-for-byte read-back; ``None`` otherwise
    (the read-back then hashes again). With a ``pool`` (a file ``fh``), the chunks are read into
    its buffers: give the kept ones back with ``pool.release(kept)`` once the read-back is done.
    """
    keep = settings.TEMOIN_READBACK_COMPARE_MAX if keep_up_to is None else keep_up_to
    ahead = ReadAhead(fh, settings.TEMOIN_CHUNK_SIZE) if pool is None else PooledReadAhead(fh, pool)
    reader = HashingReader(ahead, progress, keep_up_to=keep)
    try:
        stored = store.put(key, reader, retain_until=retain_until, content_type=content_type)
    finally:
        ahead.close()
    return stored, reader.kept


def live_duplicate(*, recording: Recording, sha256: str) -> Recording | None:
    """The live recording of the same device with the same content, if any: ``recording`` is then its
    duplicate (one live recording per device and content, ARCHITECTURE.md §3)."""
    return (Recording.objects.filter(camera_id=recording.camera_id, sha256=sha256, status__in=LIVE_STATUSES)
            .exclude(pk=recording.pk).first())


def stored_verified_events(*, recording: Recording, stored: StoredObject, back_sha: str, readback: str, info,
                           actor_label: str, duplicate_of: int | None, stored_details: dict | None = None,
                           verified_details: dict | None = None) -> list[dict]:
    """The custody events ``recording.stored`` and ``recording.verified`` (CSI R241-14), for
    ``audit.services.custody_events_append_many`` in the transaction that records the recording."""
    return [
        dict(action="recording.stored", subject=recording, actor_label=actor_label,
             details={"key": stored.key, "version_id": stored.version_id, "sha256": stored.sha256,
                      "size": stored.size, **(stored_details or {})}),
        dict(action="recording.verified", subject=recording, actor_label=actor_label,
             details={"read_back_sha256": back_sha, "read_back": readback, **(verified_details or {}),
                      "lock_mode": info.mode, "retain_until": info.retain_until.isoformat(),
                      "duplicate_of": duplicate_of}),
    ]
