"""The write-once object store: one interface, two backends (local directory, S3 Object Lock).

Both backends give the same guarantees, enforced by this layer whatever the backend itself allows:
an object is written once and never overwritten; its retention can only be extended; it cannot be
deleted before its retention end or while a legal hold is on (CSI R241-11 V: integrity until erasure).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import mmap
import os
import stat
import uuid
from pathlib import Path

from django.conf import settings

from .direct_io import DirectFile, read_back_equals
from .store_base import (  # noqa: F401  (the store's public names: callers import them from here)
    CHUNK,
    ChunkPool,
    HashingReader,
    ListedObject,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    PooledReadAhead,
    ReadAhead,
    RetentionViolation,
    StoredObject,
    StoreError,
    _aware,
    _check_key,
    _fsync_path,
    _fsync_together,
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
            # O_DIRECT where the chunks allow it (the offload's pooled buffers): the disk takes the
            # bytes from our buffer, with no copy into the page cache (issue 19, direct_io).
            with DirectFile(tmp) as out:
                for data in reader.chunks():
                    out.write(data)
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

    def equals(self, key, version_id, chunks):
        obj, _ = self._paths(key)
        try:
            fh = open(obj, "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(f"no object {key}") from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            if size != sum(len(c) for c in chunks):
                return False
            if size == 0:
                return True
            # Chunks in page-aligned buffers were written with O_DIRECT (put): their bytes are not
            # in the page cache, so the read-back reads the disk anyway, and does it with O_DIRECT,
            # comparing in place (a memcmp per piece, no copy). The proof is then that the disk
            # holds the clip (CSI R241-11 V). verify_from_disk asks for it whatever wrote the object.
            if self.verify_from_disk or any(_pooled(c) for c in chunks):
                same = read_back_equals(obj, chunks, CHUNK)
                if same is not None:
                    return same
            if self.verify_from_disk:
                return super().equals(key, version_id, chunks)  # reads the disk (cache dropped), copying
            # Otherwise the stored file mapped read-only and compared in place: the same page-cache
            # bytes as a read() would give, without copying them. The object is never truncated
            # (write-once, read-only).
            with mmap.mmap(fh.fileno(), size, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                           prot=mmap.PROT_READ) as mapped:
                stored = memoryview(mapped)
                try:
                    offset = 0
                    for chunk in chunks:
                        n = len(chunk)
                        if not _same(chunk, stored[offset:offset + n], mapped, offset):
                            return False
                        offset += n
                    return True
                finally:
                    stored.release()

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


def _pooled(chunk) -> bool:
    """A view of a page-aligned buffer (an anonymous mapping: ``ChunkPool``, the Axis receiver's
    slices): what ``put`` writes with O_DIRECT."""
    return isinstance(chunk, memoryview) and isinstance(chunk.obj, mmap.mmap)


def _same(chunk, stored: memoryview, mapped: mmap.mmap, offset: int) -> bool:
    """``chunk`` (bytes, a bytearray or a view of one, or a view of a pooled mapping) == ``stored``,
    as one memcmp; a pooled view is copied first (only where O_DIRECT was refused: see ``equals``).
    (memoryview == memoryview compares item by item, 70 times slower: bytes/bytearray first.)"""
    if isinstance(chunk, memoryview):
        if isinstance(chunk.obj, bytearray) and chunk.nbytes == len(chunk.obj):
            return chunk.obj == stored
        chunk = bytes(chunk)  # a partial buffer: the clip's last chunk
    if isinstance(chunk, bytearray):
        return chunk == stored
    return mapped[offset:offset + len(chunk)] == chunk  # bytes: a copy of the stored side


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
