"""The write-once object store: one interface, two backends (local directory, S3 Object Lock).

Both backends give the same guarantees, enforced by this layer whatever the backend itself allows:
an object is written once and never overwritten; its retention can only be extended; it cannot be
deleted before its retention end or while a legal hold is on (CSI R241-11 V: integrity until erasure).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from django.conf import settings

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


class LocalStore(ObjectStore):
    """Write-once directory store: the embedded default.

    objects/<key> holds the bytes (read-only file, created by an atomic hard link so that an
    existing key is never replaced); meta/<key>.json holds retention and legal hold.
    """

    def __init__(self, root: str | os.PathLike, *, verify_from_disk: bool = False):
        self.root = Path(root)
        self.verify_from_disk = verify_from_disk
        self.objects = self.root / "objects"
        self.meta = self.root / "meta"
        self.staging = self.root / "staging"
        self._objects_str, self._meta_str = str(self.objects), str(self.meta)
        for d in (self.objects, self.meta, self.staging):
            d.mkdir(parents=True, exist_ok=True)

    def _paths(self, key: str) -> tuple[Path, Path]:
        _check_key(key)
        return self.objects / key, self.meta / f"{key}.json"

    def _read_meta(self, key: str) -> dict:
        obj, meta = self._paths(key)
        if not obj.exists():
            raise ObjectMissing(f"no object {key}")
        try:
            return json.loads(meta.read_text())
        except FileNotFoundError:
            return {}

    def _meta_staged(self, key: str, data: dict) -> tuple[Path, Path]:
        """The metadata written under a temporary name, not yet durable: (temporary, final) paths."""
        _, meta = self._paths(key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_name(f".{meta.name}.{uuid.uuid4().hex}")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(data, sort_keys=True))
        return tmp, meta

    def _write_meta(self, key: str, data: dict) -> None:
        # Durable before it counts: a clip is wiped from the camera only after this returns.
        tmp, meta = self._meta_staged(key, data)
        _fsync_path(tmp)
        os.replace(tmp, meta)
        _fsync_path(meta.parent)

    def put(self, key, source, *, retain_until, content_type="application/octet-stream"):
        obj, _ = self._paths(key)
        retain_until = _aware(retain_until)
        if obj.exists():
            raise ObjectExists(f"{key} already exists in the write-once store")
        reader = source if isinstance(source, HashingReader) else HashingReader(source)
        tmp = self.staging / uuid.uuid4().hex
        meta_tmp = None
        try:
            with open(tmp, "xb") as out:
                for data in reader.chunks():
                    out.write(data)
                out.flush()
                # The metadata is written now but takes its name only after the link (below): an
                # object whose metadata is missing (crash in between) has no known retention end,
                # and deletion of such an object is refused. Both made durable in one wait.
                meta_tmp, meta = self._meta_staged(key, {
                    "retain_until": retain_until.isoformat(), "legal_hold": False,
                    "sha256": reader.sha256.hexdigest(), "size": reader.size, "content_type": content_type})
                _fsync_together(lambda: os.fsync(out.fileno()), lambda: _fsync_path(meta_tmp))
            os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP)
            obj.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tmp, obj)  # atomic, and fails if the key exists: never overwritten
            except FileExistsError as exc:
                raise ObjectExists(f"{key} already exists in the write-once store") from exc
            os.replace(meta_tmp, meta)
            meta_tmp = None
            _fsync_together(lambda: _fsync_path(obj.parent), lambda: _fsync_path(meta.parent))
        finally:
            for leftover in (tmp, meta_tmp):
                if leftover is not None:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(leftover)
        return StoredObject(key=key, version_id="", size=reader.size, sha256=reader.sha256.hexdigest())

    def sweep_incomplete(self, *, older_than):
        # A staging file is either a write that died before its link (no object: its bytes are
        # still on the camera or with the sender, who sends them again) or one that died after
        # it, in which case the object is another link to the same file and keeps it.
        cutoff = _aware(older_than).timestamp()
        count = freed = 0
        with os.scandir(self.staging) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                    if not entry.is_file(follow_symlinks=False) or st.st_mtime >= cutoff:
                        continue
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue
                count += 1
                freed += st.st_size if st.st_nlink == 1 else 0
        return count, freed

    def iter_objects(self, prefix=""):
        base = self.objects
        if not base.is_dir():
            raise StoreError(f"the store's directory {base} is missing: is the volume mounted?")
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, base)
            for name in sorted(filenames):
                key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
                if not key.startswith(prefix):
                    continue
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue  # deleted while listed
                yield ListedObject(key=key, version_id="", size=st.st_size,
                                   modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc))

    def open(self, key, version_id=""):
        obj, _ = self._paths(key)
        try:
            fh = open(obj, "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(f"no object {key}") from exc
        if self.verify_from_disk:
            # Optional stricter read-back: drop the cached pages so that the bytes come from the
            # disk itself (the data was fsync'ed on write). Costs one physical read per clip.
            with contextlib.suppress(OSError, AttributeError):
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        return fh

    def read_range(self, key, version_id, start, length, chunk=1 << 20):
        with self.open(key, version_id) as fh:
            fh.seek(start)
            while length > 0:
                data = fh.read(min(chunk, length))
                if not data:
                    return
                length -= len(data)
                yield data

    def head(self, key, version_id=""):
        obj, _ = self._paths(key)
        meta = self._read_meta(key)
        until = meta.get("retain_until")
        return ObjectInfo(
            key=key,
            version_id="",
            size=obj.stat().st_size,
            retain_until=dt.datetime.fromisoformat(until) if until else None,
            mode="COMPLIANCE" if until else "",
            legal_hold=bool(meta.get("legal_hold")),
        )

    def extend_retention(self, key, version_id, retain_until):
        retain_until = _aware(retain_until)
        info = self.head(key)
        if info.retain_until and retain_until < info.retain_until:
            raise RetentionViolation(
                f"{key}: retention can only be extended ({info.retain_until.isoformat()} → "
                f"{retain_until.isoformat()} refused)"
            )
        meta = self._read_meta(key)
        meta["retain_until"] = retain_until.isoformat()
        self._write_meta(key, meta)

    def set_legal_hold(self, key, version_id, on):
        meta = self._read_meta(key)
        meta["legal_hold"] = bool(on)
        self._write_meta(key, meta)

    def delete(self, key, *, now):
        _check_key(key)
        # Plain strings and raw file descriptors: the sweep deletes hundreds of thousands of these.
        obj, meta = f"{self._objects_str}/{key}", f"{self._meta_str}/{key}.json"
        try:
            fd = os.open(meta, os.O_RDONLY)
            try:
                data = json.loads(os.read(fd, 1 << 16))
            finally:
                os.close(fd)
        except FileNotFoundError:
            if not os.path.lexists(obj):
                return 0  # already gone (a sweep that crashed half-way)
            data = {}  # no recorded retention: _check_deletable refuses
        until = data.get("retain_until")
        self._check_deletable(ObjectInfo(
            key=key, version_id="", size=data.get("size", 0),
            retain_until=dt.datetime.fromisoformat(until) if until else None,
            mode="COMPLIANCE" if until else "", legal_hold=bool(data.get("legal_hold")),
        ), now)
        # Unlinking needs write access to the directory only: the object stays read-only to the end.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(obj)
        os.unlink(meta)
        return 1

    @contextlib.contextmanager
    def local_path(self, key, version_id=""):
        obj, _ = self._paths(key)
        if not obj.exists():
            raise ObjectMissing(f"no object {key}")
        yield obj


_store: ObjectStore | None = None


def get_store() -> ObjectStore:
    """The configured store (settings.STORE_BACKEND), built once per process."""
    global _store
    if _store is None:
        if settings.STORE_BACKEND == "s3":
            from .s3 import S3Store

            _store = S3Store.from_settings()
        else:
            _store = LocalStore(settings.STORE_LOCAL_ROOT, verify_from_disk=settings.STORE_VERIFY_FROM_DISK)
    return _store


def reset_store() -> None:
    global _store
    _store = None
