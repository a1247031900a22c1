"""Request bodies of known length read straight from gunicorn's socket.

gunicorn (``-k gthread``, the server of compose.yaml) hands the application a ``wsgi.input``
that reads the socket into a ``BytesIO``, slices it, and copies it again in ``Body.read``: four
copies of every byte of a clip, about 0.4 s of CPU per GB on the reference machine
(docs/benchmarks.md, "Axis content destination"). gunicorn also puts the connection's socket in
the environ (``gunicorn.socket``). For a body of known length that nothing has read yet, this
module takes over: the bytes gunicorn already buffered first, then ``recv_into`` the caller's
buffer. gunicorn's own reader is kept informed (its remaining length goes down as we read), so
that on keep-alive it drains whatever the application did not read, exactly as before, and a
pipelined next request stays where gunicorn expects it.

Anything unexpected (another server, another gunicorn reader, a body already touched) and
``direct`` returns None: the caller reads ``wsgi.input`` as any WSGI application would.
"""
from __future__ import annotations

import mmap
import socket
import ssl

from django.conf import settings

from evidence.integrations.direct_io import aligned_buffer

try:  # gunicorn is the production server; tests and runserver use others
    from gunicorn.http.body import Body, LengthReader
    from gunicorn.http.unreader import SocketUnreader
except ImportError:  # pragma: no cover - gunicorn is a dependency
    Body = LengthReader = SocketUnreader = None


SLICE = 1024 * 1024


class SlicePool:
    """1 MiB buffers reused from one clip to the next, up to ``TEMOIN_AXIS_BUFFER_POOL`` bytes.

    A clip's slices are kept until its read-back has compared them with the store (up to
    ``TEMOIN_READBACK_COMPARE_MAX``); freed, the allocator hands that memory back to the system,
    and the next clip pays for fresh pages again (the kernel zeroes each one; in a virtual
    machine the host may have to supply it first). Kept here instead, they are simply reused.
    The buffers are page-aligned anonymous mappings: the local store writes them with O_DIRECT
    and reads them back from the disk (issue 19, ``evidence.integrations.direct_io``).
    """

    def __init__(self) -> None:
        self.free: list[mmap.mmap] = []

    def take(self, n: int) -> mmap.mmap | bytearray:
        if n == SLICE:
            try:
                return self.free.pop()  # atomic under the GIL: no lock needed
            except IndexError:
                pass
        return aligned_buffer(n) if n else bytearray()  # (an empty mapping does not exist)

    def give(self, views) -> None:
        """Take back the buffers behind ``views`` (the slices ``DirectBody.read`` returned)."""
        limit = getattr(settings, "TEMOIN_AXIS_BUFFER_POOL", 0) // SLICE
        for view in views or ():
            buf = view.obj if isinstance(view, memoryview) else view
            if type(buf) is mmap.mmap and len(buf) == SLICE and len(self.free) < limit:
                self.free.append(buf)


POOL = SlicePool()


class DirectBody:
    """Reads the rest of one request body from the socket, keeping gunicorn's count right."""

    def __init__(self, sock: socket.socket, reader, prefix: bytes):
        self.sock, self.reader = sock, reader
        self.prefix = memoryview(prefix)

    def read(self, n: int) -> memoryview:
        """Up to ``n`` bytes (fewer only at the end of the body or of the connection), as a view
        of one of the pool's buffers."""
        n = min(n, self.reader.length + len(self.prefix))
        buf = POOL.take(n)
        view = memoryview(buf)
        got = 0
        if self.prefix:
            got = min(n, len(self.prefix))
            view[:got] = self.prefix[:got]
            self.prefix = self.prefix[got:]
        try:
            while got < n:
                # MSG_WAITALL: one system call (and one release of the GIL) per slice.
                try:
                    count = self.sock.recv_into(view[got:], n - got, socket.MSG_WAITALL)
                except ConnectionError:  # reset by the client: the body ends here, short
                    count = 0
                if not count:
                    break
                got += count
                self.reader.length -= count
        finally:
            view.release()
        return memoryview(buf)[:got]


def direct(environ: dict, length: int | None) -> DirectBody | None:
    """A DirectBody for this request's body, or None when the server is not one we know."""
    sock, body = environ.get("gunicorn.socket"), environ.get("wsgi.input")
    if Body is None or sock is None or length is None or type(body) is not Body:
        return None
    if isinstance(sock, ssl.SSLSocket):  # gunicorn --certfile: recv_into takes no flags there
        return None
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    if (type(reader) is not LengthReader or type(unreader) is not SocketUnreader
            or unreader.sock is not sock or reader.length != length or body.buf.tell()
            or not hasattr(unreader, "take_buffered") or sock.gettimeout() is not None):
        return None
    prefix = unreader.take_buffered()
    if len(prefix) > length:  # the start of a pipelined next request: gunicorn keeps it
        unreader.unread(prefix[length:])
        prefix = prefix[:length]
    reader.length -= len(prefix)
    return DirectBody(sock, reader, prefix)
