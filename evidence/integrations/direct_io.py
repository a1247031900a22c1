"""Direct I/O for the local store (issue 19: one camera at disk speed).

A clip written through the page cache is copied twice by the CPU (camera → our buffer → cache)
and the cache then has to be managed and written back; measured, that was most of the offload's
system time (docs/benchmarks.md, offload, where the time goes). With ``O_DIRECT`` the disk takes
the bytes straight from our buffer, and the read-back reads the disk itself, not the cache: the
proof is then that the disk holds the clip.

``O_DIRECT`` wants the buffer's address, the length and the file offset aligned on the device's
block: the chunk pool's buffers are anonymous mappings (page-aligned) and the chunks are whole
multiples of ``ALIGN`` but the last. Anything else (a clip's tail, a caller's ``bytes``, a file
system that refuses ``O_DIRECT``: some network and FUSE ones, tmpfs before Linux 6.6) is written
through the cache as before: the result on disk is the same, only the cost differs. The camera's
volume is read the same way (``direct_reads``, used by ``store_base.PooledReadAhead``).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import io
import mmap
import os

ALIGN = 4096  # a multiple of every logical block size in use (512 and 4096)
O_DIRECT = getattr(os, "O_DIRECT", 0)

_libc = ctypes.CDLL(None)  # a foreign call releases the GIL: comparisons run beside the hashing
_memcmp = _libc.memcmp
_memcmp.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_memcmp.restype = ctypes.c_int


def aligned_buffer(size: int) -> mmap.mmap:
    """``size`` bytes of anonymous memory, page-aligned (hence ``ALIGN``-aligned), writable, and
    private: a forked child gets its own copy, never the parent's pages (MAP_SHARED would)."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)


def address(data) -> int | None:
    """The address of the first byte of ``data`` (a writable buffer, or ``bytes``); ``None`` when
    it has none to give (a read-only view, an empty buffer)."""
    if isinstance(data, bytes):
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value if data else None
    try:
        ref = ctypes.c_char.from_buffer(data)
    except (TypeError, ValueError):
        return None
    try:
        return ctypes.addressof(ref)
    finally:
        del ref  # releases the export: the buffer may be closed or resized again


def aligned(data) -> bool:
    """Can ``data`` be written with ``O_DIRECT`` at an aligned offset?"""
    n = len(data)
    if n == 0 or n % ALIGN:
        return False
    where = address(data)
    return where is not None and where % ALIGN == 0


def same_memory(a: int, b: int, n: int) -> bool:
    """The ``n`` bytes at addresses ``a`` and ``b`` are equal (one memcmp, GIL released)."""
    return n == 0 or _memcmp(a, b, n) == 0


def direct_reads(fh) -> bool:
    """Turn ``fh`` (an unbuffered file, read sequentially into aligned buffers of whole blocks) to
    ``O_DIRECT`` reads; ``False`` when the file system refuses (then nothing changed)."""
    if not O_DIRECT or not hasattr(fh, "readinto") or getattr(fh, "raw", None) is not None:
        return False  # a buffered reader would mix its own unaligned reads in
    try:
        fd = fh.fileno()
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | O_DIRECT)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return False
    return True


def cached_reads(fh) -> bool:
    """Back to reads through the page cache; returns ``False`` (no longer direct)."""
    fd = fh.fileno()
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~O_DIRECT)
    return False


class DirectFile:
    """A new file (``O_EXCL``) written with ``O_DIRECT`` for as long as the data allows it.

    ``write`` takes any buffer: an aligned one goes straight to the disk; the first one that is
    not (or a refusal by the file system) turns the file to ordinary cached writes for the rest.
    ``fileno()`` for ``fsync``; ``direct_bytes`` says how much bypassed the cache.
    """

    def __init__(self, path, mode: int = 0o666):
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self.direct = False
        self.direct_bytes = 0
        self.fd = -1
        if O_DIRECT:
            try:
                self.fd = os.open(path, flags | O_DIRECT, mode)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a file system without O_DIRECT refuses it at open
                    raise
        if self.fd < 0:
            self.fd = os.open(path, flags, mode)

    def fileno(self) -> int:
        return self.fd

    def _cached(self) -> None:
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~O_DIRECT)
        self.direct = False

    def write(self, data) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            if self.direct and not aligned(view):
                self._cached()  # a tail, or a caller's unaligned bytes: the rest goes through the cache
            try:
                n = os.write(self.fd, view)
            except OSError as exc:
                if not (self.direct and exc.errno == errno.EINVAL):
                    raise
                self._cached()  # the file system accepted O_DIRECT at open but not this write
                continue
            if self.direct:
                self.direct_bytes += n
            view = view[n:]

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_back_equals(path, chunks, scratch_size: int) -> bool | None:
    """Read ``path`` with ``O_DIRECT`` (from the disk, not the page cache) and compare it with the
    concatenation of ``chunks``. ``None`` when this cannot be done here (the file system refuses
    ``O_DIRECT``, or a chunk gives no address): the caller then compares another way.

    The file's size must already be known to equal the chunks' total (the caller checks it).
    """
    if not O_DIRECT:
        return None
    pieces = []
    for chunk in chunks:
        if not len(chunk):
            continue
        where = address(chunk)
        if where is None:
            return None
        pieces.append((where, len(chunk)))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return None
        raise
    size = -(-max(scratch_size, ALIGN) // ALIGN) * ALIGN
    scratch = aligned_buffer(size)
    view = memoryview(scratch)
    base = address(scratch)
    try:
        index, used = 0, 0  # the chunk being compared, and how much of it already was
        offset = 0
        while True:
            got = os.preadv(fd, [view], offset)  # whole aligned blocks; short only at the end
            if got == 0:
                break
            offset += got
            pos = 0
            while pos < got:
                if index == len(pieces):
                    return False  # longer than what was written
                where, n = pieces[index]
                take = min(n - used, got - pos)
                if not same_memory(where + used, base + pos, take):
                    return False
                pos += take
                used += take
                if used == n:
                    index, used = index + 1, 0
            if got < size:
                break
        return index == len(pieces)
    finally:
        view.release()
        scratch.close()
        os.close(fd)
