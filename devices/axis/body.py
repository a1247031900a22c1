"""The Axis request body read once, exactly, in network-sized slices, and the free-space check before
it is read: a truncated upload never becomes a shorter stored clip (CSI R241-11 V: the stored
recording is the camera's, whole and unaltered).
"""
from __future__ import annotations

import errno
import hashlib
import shutil
from typing import BinaryIO

from django.conf import settings

from evidence.integrations.store import LocalStore, ReadAhead

from . import wsgi_body
from .errors import OutOfSpace

# Reads and writes in 1 MiB slices: on the reference machine one 8 MiB write() into the page
# cache cost up to ten times the CPU of eight 1 MiB writes (docs/benchmarks-axis.md).
NETWORK_CHUNK = 1024 * 1024
# S3 error codes that mean "no space left" (MinIO reports a full drive as XMinioStorageFull).
S3_FULL_CODES = {"XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "QuotaExceeded", "InsufficientStorage",
                 "EntityTooLarge"}


class TruncatedUpload(Exception):
    """The request body ended before the Content-Length the client announced."""


class RequestBody:
    """The request body as a file: exactly ``length`` bytes or TruncatedUpload; MD5 when asked.

    WSGI servers return short reads at end of input when the client disconnects: the missing
    bytes must make the upload fail, never let a shorter object be stored as the clip.

    Under gunicorn, a body of known length is read straight from the connection's socket (see
    ``wsgi_body.direct``): one ``recv_into`` per slice into the buffer that is then hashed,
    written and kept for the read-back, instead of gunicorn's reader, which copies every byte
    four times through its own buffers.
    """

    def __init__(self, raw: BinaryIO, length: int | None, *, direct=None):
        self.raw, self.length, self.count = raw, length, 0
        self.md5 = None
        self.direct = direct

    @classmethod
    def of_request(cls, request, length: int | None) -> "RequestBody":
        # Django reads at most CONTENT_LENGTH bytes; a chunked body is read from the server's stream.
        raw = request if length is not None else request.META["wsgi.input"]
        return cls(raw, length, direct=wsgi_body.direct(request.META, length))

    def with_md5(self) -> "RequestBody":
        """Hash what is read from now on with MD5 as well (the ETag Swift answers)."""
        if self.md5 is None:
            self.md5 = hashlib.md5(usedforsecurity=False)
        return self

    def read(self, n: int = -1) -> bytes:
        if self.length is not None:
            remaining = self.length - self.count
            if remaining <= 0:
                return b""
            n = remaining if n is None or n < 0 else min(n, remaining)
        data = self.direct.read(n) if self.direct is not None else self.raw.read(n)
        if not data and n != 0 and self.length is not None:
            raise TruncatedUpload(f"upload ended after {self.count} of {self.length} bytes")
        self.count += len(data)
        if self.md5 is not None and data:
            self.md5.update(data)
        return data

    def drain_bytes(self) -> bytes:
        parts = []
        while data := self.read(NETWORK_CHUNK):
            parts.append(data)
        return b"".join(parts)

    def drain(self) -> tuple[str, int]:
        sha = hashlib.sha256()
        while data := self.read(NETWORK_CHUNK):
            sha.update(data)
        return sha.hexdigest(), self.count


class Slices:
    """At most one slice per read: the store writes what each read returns, so it writes slices."""

    def __init__(self, raw: ReadAhead | RequestBody, size: int = NETWORK_CHUNK):
        self.raw, self.size = raw, size

    def read(self, n: int = -1) -> bytes:
        return self.raw.read(self.size if n is None or n < 0 else min(n, self.size))

    def close(self) -> None:
        if isinstance(self.raw, ReadAhead):
            self.raw.close()


def out_of_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    cause = exc.__cause__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code", "") if cause is not None else ""
    return code in S3_FULL_CODES or (cause is not None and cause is not exc and out_of_space(cause))


def free_space_check(store, length: int | None) -> None:
    """Local store: refuse before reading a byte when the clip cannot fit (507, retried later)."""
    if not isinstance(store, LocalStore) or not length:
        return
    reserve = getattr(settings, "TEMOIN_AXIS_FREE_SPACE_RESERVE", 64 * 1024 * 1024)
    try:
        free = shutil.disk_usage(store.root).free
    except OSError:
        return
    if free < length + reserve:
        raise OutOfSpace(f"{free} bytes free in the store, {length} needed")
