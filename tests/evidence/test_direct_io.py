"""Direct I/O of the local store (issue 19): what goes to the disk without the page cache, what
falls back to it, and that the read-back compares the disk's bytes with the camera's.

These run on the test's temporary directory, which must be on a file system that takes O_DIRECT
(ext4 here, as on the dock hosts); the fallback is exercised by refusing it on purpose.
"""
from __future__ import annotations

import datetime as dt
import errno
import fcntl
import hashlib
import io
import os

from evidence.integrations import direct_io
from evidence.integrations.direct_io import ALIGN, O_DIRECT, DirectFile, aligned_buffer, read_back_equals
from evidence.integrations.store import ChunkPool, HashingReader, LocalStore, PooledReadAhead

UNTIL = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def _pooled_chunks(pool: ChunkPool, payload: bytes) -> list[memoryview]:
    chunks = []
    for start in range(0, len(payload), pool.chunk):
        buf = pool.get()
        piece = payload[start:start + pool.chunk]
        buf[:len(piece)] = piece
        chunks.append(memoryview(buf)[:len(piece)])
    return chunks


def _direct(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & O_DIRECT)


def test_aligned_chunks_bypass_the_cache_and_the_tail_goes_through_it(tmp_path):
    pool = ChunkPool(64 * 1024)
    payload = os.urandom(3 * 64 * 1024 + 1000)
    path = tmp_path / "clip"
    with DirectFile(path) as out:
        assert _direct(out.fileno())
        for chunk in _pooled_chunks(pool, payload):
            out.write(chunk)
        assert out.direct_bytes == 3 * 64 * 1024  # the 1000-byte tail is not a whole block
        assert not _direct(out.fileno())
        os.fsync(out.fileno())
    assert path.read_bytes() == payload


def test_a_callers_bytes_are_written_through_the_cache_whole(tmp_path):
    payload = os.urandom(2 * ALIGN)  # whole blocks, but bytes: no alignment promised
    with DirectFile(tmp_path / "clip") as out:
        out.write(payload[:ALIGN + 7])
        out.write(payload[ALIGN + 7:])
    assert (tmp_path / "clip").read_bytes() == payload


def test_a_file_system_that_refuses_o_direct_gets_cached_writes(tmp_path, monkeypatch):
    real_open = os.open

    def refusing(path, flags, *args):
        if flags & O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_io.os, "open", refusing)
    pool = ChunkPool(64 * 1024)
    payload = os.urandom(2 * 64 * 1024)
    with DirectFile(tmp_path / "clip") as out:
        for chunk in _pooled_chunks(pool, payload):
            out.write(chunk)
        assert out.direct_bytes == 0
    assert (tmp_path / "clip").read_bytes() == payload
    assert read_back_equals(tmp_path / "clip", _pooled_chunks(pool, payload), 64 * 1024) is None


def test_a_write_refused_after_the_open_is_done_again_through_the_cache(tmp_path, monkeypatch):
    real_write = os.write
    refused = []

    def refusing_once(fd, data):
        if _direct(fd) and not refused:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(direct_io.os, "write", refusing_once)
    pool = ChunkPool(64 * 1024)
    payload = os.urandom(2 * 64 * 1024 + 5)
    with DirectFile(tmp_path / "clip") as out:
        for chunk in _pooled_chunks(pool, payload):
            out.write(chunk)
    assert refused == [64 * 1024]
    assert (tmp_path / "clip").read_bytes() == payload


def test_the_read_back_finds_one_changed_bit_on_the_disk_wherever_the_chunks_end(tmp_path):
    pool = ChunkPool(64 * 1024)
    payload = os.urandom(5 * 64 * 1024 + 333)
    path = tmp_path / "clip"
    with DirectFile(path) as out:
        for chunk in _pooled_chunks(pool, payload):
            out.write(chunk)
        os.fsync(out.fileno())
    kept = _pooled_chunks(pool, payload)
    assert read_back_equals(path, kept, 64 * 1024) is True
    # The comparison walks the file in whole blocks whatever the chunks' lengths.
    odd = [payload[:100], payload[100:70_001], payload[70_001:]]
    assert read_back_equals(path, odd, 64 * 1024) is True
    assert read_back_equals(path, [payload[:100], b"", payload[100:]], 4096) is True
    assert read_back_equals(path, kept[:-1], 64 * 1024) is False  # the file is longer
    assert read_back_equals(path, kept + [b"x"], 64 * 1024) is False  # the file is shorter

    damaged = bytearray(payload)
    damaged[4 * 64 * 1024 + 9] ^= 0x10
    with open(path, "r+b") as fh:  # the disk's copy changes, the kept bytes do not
        fh.seek(4 * 64 * 1024 + 9)
        fh.write(bytes([damaged[4 * 64 * 1024 + 9]]))
        fh.flush()
        os.fsync(fh.fileno())
    assert read_back_equals(path, kept, 64 * 1024) is False
    assert read_back_equals(path, [bytes(damaged)], 64 * 1024) is True


def test_a_read_only_view_cannot_be_compared_in_place_and_says_so(tmp_path):
    (tmp_path / "clip").write_bytes(b"abc")
    assert read_back_equals(tmp_path / "clip", [memoryview(b"abc")], ALIGN) is None


def test_the_local_stores_read_back_catches_a_change_made_on_the_disk_after_the_write(tmp_path):
    store = LocalStore(tmp_path / "store")
    pool = ChunkPool(1024 * 1024)
    payload = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "camera.mp4"
    source.write_bytes(payload)
    with open(source, "rb", buffering=0) as fh:
        ahead = PooledReadAhead(fh, pool)
        reader = HashingReader(ahead, keep_up_to=64 * 1024 * 1024)
        try:
            stored = store.put("a/clip.mp4", reader, retain_until=UNTIL)
        finally:
            ahead.close()
    assert stored.sha256 == hashlib.sha256(payload).hexdigest()
    assert store.verify_written(stored, reader.kept, UNTIL)[1] == "byte-for-byte"

    obj = store.objects / "a" / "clip.mp4"
    os.chmod(obj, 0o600)
    with open(obj, "r+b") as fh:
        fh.seek(2 * 1024 * 1024 + 3)
        fh.write(b"\x00" if payload[2 * 1024 * 1024 + 3] else b"\x01")
    assert not store.equals("a/clip.mp4", "", reader.kept)


def test_the_camera_is_read_with_o_direct_into_the_pools_buffers(tmp_path):
    pool = ChunkPool(256 * 1024)
    payload = os.urandom(4 * 256 * 1024 + 4097)
    (tmp_path / "camera.mp4").write_bytes(payload)
    with open(tmp_path / "camera.mp4", "rb", buffering=0) as fh:
        ahead = PooledReadAhead(fh, pool)
        got = []
        while data := ahead.read(pool.chunk):
            got.append(bytes(data))
        ahead.close()
        assert _direct(fh.fileno())
    assert b"".join(got) == payload


def test_a_camera_read_refused_with_einval_carries_on_through_the_cache(tmp_path):
    payload = os.urandom(3 * 65536 + 11)
    (tmp_path / "camera.mp4").write_bytes(payload)

    class Refusing(io.FileIO):
        refused = 0

        def readinto(self, buf):
            if _direct(self.fileno()) and not self.refused:
                Refusing.refused += 1
                raise OSError(errno.EINVAL, "Invalid argument")
            return super().readinto(buf)

    with Refusing(tmp_path / "camera.mp4", "rb") as fh:
        ahead = PooledReadAhead(fh, ChunkPool(65536))
        got = []
        while data := ahead.read(65536):
            got.append(bytes(data))
        ahead.close()
        assert Refusing.refused == 1 and not _direct(fh.fileno())
    assert b"".join(got) == payload


def test_a_buffered_reader_is_left_as_it_is():
    assert direct_io.direct_reads(io.BytesIO(b"abc")) is False
    with open(__file__, "rb") as fh:  # a BufferedReader mixes its own unaligned reads in
        assert direct_io.direct_reads(fh) is False
        assert not _direct(fh.fileno())


def test_pool_buffers_are_not_shared_with_a_forked_child():
    buf = aligned_buffer(ALIGN)
    buf[0] = 1
    pid = os.fork()
    if pid == 0:  # the child writes its copy and leaves at once
        buf[0] = 2
        os._exit(0)
    os.waitpid(pid, 0)
    assert buf[0] == 1
