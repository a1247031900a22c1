"""The object store's interface and shared parts: errors, stored-object records, the hashing
readers, key checks and the ``ObjectStore`` base whose rules both backends obey (CSI R241-11 V:
integrity until erasure). The backends (``store.LocalStore``, ``s3.S3Store``) build on it and
``store.get_store`` picks one; this module imports neither, so the backends do not import each other.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from .direct_io import ALIGN, aligned_buffer, cached_reads, direct_reads


CHUNK = 8 * 1024 * 1024


class StoreError(Exception):
    """The store could not do what was asked; the message says why, in plain words."""


class ObjectExists(StoreError):
    pass


class ObjectMissing(StoreError):
    pass


class RetentionViolation(StoreError):
    """Asked to shorten retention, or to delete before the retention end or under a legal hold."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    version_id: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ListedObject:
    """One stored version, as a listing shows it (no lock information: see ``head``)."""

    key: str
    version_id: str
    size: int
    modified: dt.datetime


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    version_id: str
    size: int
    retain_until: dt.datetime | None
    mode: str  # "COMPLIANCE" when locked
    legal_hold: bool


class HashingReader:
    """Wraps a readable file: hashes every byte as it is read, counts them, reports progress."""

    def __init__(self, raw: BinaryIO, progress=None, keep_up_to: int = 0):
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.progress = progress
        # The bytes read, kept (up to ``keep_up_to``) for a byte-for-byte read-back comparison.
        self.keep_up_to = keep_up_to
        self.kept: list[bytes] | None = [] if keep_up_to else None

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.sha256.update(data)
            self.size += len(data)
            if self.kept is not None:
                if self.size <= self.keep_up_to:
                    self.kept.append(data)
                else:
                    self.kept = None  # too large to keep: the read-back hashes instead
            if self.progress:
                self.progress(len(data))
        return data

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        while True:
            data = self.read(size)
            if not data:
                return
            yield data


class ReadAhead:
    """Reads a file in a background thread, a few chunks ahead of the consumer.

    The camera's disk read then overlaps with hashing and writing to the store (file reads and
    hashlib both release the GIL), so the single pass runs at the speed of the slowest of them.
    """

    _END = object()

    def __init__(self, raw: BinaryIO, chunk: int = CHUNK, depth: int = 3):
        import queue
        import threading

        self.raw, self.chunk = raw, chunk
        self.queue: "queue.Queue" = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.pending = b""
        self.done = False
        self.thread = threading.Thread(target=self._run, name="read-ahead", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while data := self.raw.read(self.chunk):
                self.queue.put(data)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self.error = exc
        finally:
            self.queue.put(self._END)

    def read(self, n: int = -1) -> bytes:
        while not self.done and (n < 0 or len(self.pending) < n):
            item = self.queue.get()
            if item is self._END:
                self.done = True
                if self.error is not None:
                    raise self.error
                break
            self.pending = item if not self.pending else self.pending + item
        if n < 0 or n >= len(self.pending):
            data, self.pending = self.pending, b""
        else:
            data, self.pending = self.pending[:n], self.pending[n:]
        return data

    def close(self) -> None:
        """Stop reading (the consumer failed): drain so that the thread can finish."""
        while not self.done:
            if self.queue.get() is self._END:
                self.done = True
        self.thread.join()


class ChunkPool:
    """Chunk buffers reused from one clip to the next (issue 19, bounded memory).

    Reading a clip into fresh memory costs the kernel a page fault and a page clearing per 4 KiB,
    about as much CPU as the copy itself (docs/benchmarks.md, offload: where the time goes). A
    buffer is given back only once nothing refers to it any more (after the clip's read-back); at
    most ``limit`` bytes wait in the pool, the rest is left to the garbage collector. The buffers
    are anonymous mappings, page-aligned, so that the local store can write them with ``O_DIRECT``
    (``direct_io``).
    """

    def __init__(self, chunk: int = CHUNK, limit: int = 256 * 1024 * 1024):
        import threading

        self.chunk, self.limit = chunk, limit
        self.free: list[mmap.mmap] = []
        self.lock = threading.Lock()

    def get(self) -> mmap.mmap:
        with self.lock:
            if self.free:
                return self.free.pop()
        return aligned_buffer(self.chunk)

    def release(self, views) -> None:
        """Give back the buffers behind ``views`` (memoryviews of this pool's buffers); the caller
        promises not to use them again."""
        seen = set()
        with self.lock:
            for view in views:
                buf = view.obj if isinstance(view, memoryview) else None
                if (not isinstance(buf, mmap.mmap) or len(buf) != self.chunk or id(buf) in seen
                        or (len(self.free) + 1) * self.chunk > self.limit):
                    continue
                seen.add(id(buf))
                self.free.append(buf)


class PooledReadAhead(ReadAhead):
    """``ReadAhead`` for a file, reading into a ``ChunkPool``'s buffers (``readinto``: no fresh
    memory per chunk), with ``O_DIRECT`` where the file system takes it (the camera's bytes then go
    from the disk to our buffer with no copy through the page cache, issue 19). ``read(n)`` returns
    a memoryview of at most ``n`` bytes, valid until its buffer is given back to the pool; ``b""``
    at the end."""

    def __init__(self, raw: BinaryIO, pool: ChunkPool, depth: int = 3):
        self.pool = pool
        self.current, self.offset = None, 0
        super().__init__(raw, pool.chunk, depth)  # starts the thread: pool first

    def _run(self) -> None:
        try:
            direct = direct_reads(self.raw) if self.pool.chunk % ALIGN == 0 else False
            while True:
                buf = self.pool.get()
                try:
                    n = self.raw.readinto(buf)
                except OSError as exc:
                    if not (direct and exc.errno == errno.EINVAL):
                        raise
                    direct = cached_reads(self.raw)  # refused after all: read through the cache
                    n = self.raw.readinto(buf)
                if not n:
                    break
                self.queue.put(memoryview(buf)[:n])
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self.error = exc
        finally:
            self.queue.put(self._END)

    def read(self, n: int = -1):
        if self.current is None or self.offset >= len(self.current):
            if self.done:
                return b""
            item = self.queue.get()
            if item is self._END:
                self.done = True
                if self.error is not None:
                    raise self.error
                return b""
            self.current, self.offset = item, 0
        end = len(self.current) if n < 0 else min(len(self.current), self.offset + n)
        data = self.current[self.offset:end]
        self.offset = end
        return data


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# fsyncs waited for together: issued at the same moment, they are served by the same journal
# commit of the file system, so a clip's bytes and its retention record (then the two directory
# entries) cost one wait each instead of two. Measured in docs/benchmarks.md (Axis section).
def _sync_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="store-fsync")


_SYNCS = _sync_pool()


def _sync_pool_after_fork() -> None:
    global _SYNCS  # a forked child has none of its parent's threads: a pool of its own
    _SYNCS = _sync_pool()


os.register_at_fork(after_in_child=_sync_pool_after_fork)


def _fsync_together(first, *others) -> None:
    """Run ``first`` here and ``others`` in the pool, all at once; return when every one is done."""
    futures = [_SYNCS.submit(call) for call in others]
    try:
        first()
    finally:
        errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"invalid object key {key!r}")


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise StoreError("retention dates must carry a time zone")
    return value.astimezone(dt.timezone.utc)


class ObjectStore:
    """Interface shared by the backends."""

    def put(self, key: str, source: BinaryIO, *, retain_until: dt.datetime, content_type: str = "application/octet-stream") -> StoredObject:
        raise NotImplementedError

    def put_file(self, key: str, path: str | os.PathLike, *, retain_until: dt.datetime, content_type: str = "application/octet-stream") -> StoredObject:
        with open(path, "rb") as fh:
            return self.put(key, fh, retain_until=retain_until, content_type=content_type)

    def open(self, key: str, version_id: str = "") -> BinaryIO:
        raise NotImplementedError

    def head(self, key: str, version_id: str = "") -> ObjectInfo:
        raise NotImplementedError

    def read_range(self, key: str, version_id: str, start: int, length: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        """Yield ``length`` bytes of the object from ``start`` (HTTP Range serving)."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
            return True
        except ObjectMissing:
            return False

    def digest(self, key: str, version_id: str = "") -> tuple[str, int]:
        """Read the object back from the store and return (sha256, size)."""
        sha, size = hashlib.sha256(), 0
        with contextlib.closing(self.open(key, version_id)) as fh:
            while data := fh.read(CHUNK):
                sha.update(data)
                size += len(data)
        return sha.hexdigest(), size

    def equals(self, key: str, version_id: str, chunks: list[bytes]) -> bool:
        """Read the object back from the store and compare it byte for byte with ``chunks``."""
        # Read into one buffer the size of each chunk, reused: every comparison is a plain
        # buffer == buffer (a memcmp), with no allocation (nor fresh pages) per chunk.
        buf = view = None
        with contextlib.closing(self.open(key, version_id)) as fh:
            for chunk in chunks:
                if buf is None or len(buf) != len(chunk):
                    buf = bytearray(len(chunk))
                    view = memoryview(buf)
                got = 0
                while got < len(buf):  # a network body may return less than asked
                    n = fh.readinto(view[got:])
                    if not n:
                        return False
                    got += n
                if buf != chunk:
                    return False
            return not fh.read(1)

    def verify_written(self, stored, kept: list[bytes] | None, retain_until: dt.datetime) -> tuple[str, str, ObjectInfo]:
        """Read a just-written original back and check its lock (ARCHITECTURE.md §3 and §4).

        Byte for byte against ``kept`` (the bytes written, when the writer kept them: the same
        proof as a second hash, at a fraction of its cost), else a second SHA-256. Returns
        (read-back SHA-256, method, lock information); StoreError when anything differs.
        """
        if kept is not None:
            if not self.equals(stored.key, stored.version_id, kept):
                raise StoreError(f"read-back mismatch for {stored.key}: stored bytes differ")
            back_sha, method = stored.sha256, "byte-for-byte"
        else:
            back_sha, back_size = self.digest(stored.key, stored.version_id)
            method = "sha256"
            if (back_sha, back_size) != (stored.sha256, stored.size):
                raise StoreError(f"read-back mismatch for {stored.key}: {back_sha}/{back_size} "
                                 f"!= {stored.sha256}/{stored.size}")
        info = self.head(stored.key, stored.version_id)
        if info.mode != "COMPLIANCE" or info.retain_until is None or info.retain_until < retain_until:
            raise StoreError(f"{stored.key} is not locked until {retain_until.isoformat()} in the store")
        return back_sha, method, info

    def extend_retention(self, key: str, version_id: str, retain_until: dt.datetime) -> None:
        raise NotImplementedError

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> None:
        raise NotImplementedError

    def delete(self, key: str, *, now: dt.datetime) -> int:
        """Delete every version of ``key``; refused before the retention end or under a hold."""
        raise NotImplementedError

    @contextlib.contextmanager
    def local_path(self, key: str, version_id: str = "") -> Iterator[Path]:
        """A path on local disk holding the object's bytes, for programs such as ffmpeg."""
        raise NotImplementedError

    def clock(self) -> dt.datetime:
        """The store's own time: the one its locks are checked against."""
        from django.utils import timezone

        return timezone.now()

    def iter_objects(self, prefix: str = "") -> Iterator[ListedObject]:
        """Every stored version under ``prefix`` (delete markers excluded), for the compliance audit."""
        raise NotImplementedError

    def sweep_incomplete(self, *, older_than: dt.datetime) -> tuple[int, int]:
        """Remove the leftovers of writes that never finished (a worker killed mid-upload) and were
        started before ``older_than``; returns (count, bytes freed when known). Never touches a
        stored object."""
        raise NotImplementedError

    def _check_deletable(self, info: ObjectInfo, now: dt.datetime) -> None:
        if info.legal_hold:
            raise RetentionViolation(f"{info.key} is under a legal hold: deletion refused")
        if info.retain_until is None:
            raise RetentionViolation(f"{info.key} has no recorded retention end: deletion refused")
        if _aware(now) < info.retain_until:
            raise RetentionViolation(
                f"{info.key} is retained until {info.retain_until.isoformat()}: deletion refused"
            )
