"""The write-once object store (ARCHITECTURE.md §4) on both backends.

The local store runs on a temporary directory; the S3 store talks to moto's standalone server over
real HTTP. moto does not enforce every Object Lock rule, so the tests that matter for evidence
(no overwrite, no shortening, no early deletion) check what *our* store layer does.

Note on names: the ``s3_store`` fixture derives the bucket name from the test's node name cut to
40 characters; a parametrised test with a short name would put "[" in the bucket name. Test names
here are long sentences, so the cut always falls before the parameter id.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import os
import stat
import time
import uuid

import pytest

from evidence.integrations.store import ObjectExists, RetentionViolation, StoreError

UTC = dt.timezone.utc

# Retention ends in the past of the wall clock: moto enforces COMPLIANCE against its own clock, so
# an object can only really be deleted (after our layer allowed it) once that date has passed.
# Every "now" given to the store is explicit.
RETAIN_UNTIL = dt.datetime(2021, 3, 1, tzinfo=UTC)
BEFORE_RETENTION_END = dt.datetime(2021, 2, 28, 23, 59, tzinfo=UTC)
AFTER_RETENTION_END = dt.datetime(2021, 3, 1, 0, 1, tzinfo=UTC)
LATER = dt.datetime(2021, 6, 1, tzinfo=UTC)
EARLIER = dt.datetime(2021, 2, 1, tzinfo=UTC)
FUTURE = dt.datetime(2031, 1, 1, tzinfo=UTC)

BOTH = pytest.mark.parametrize("backend", ["local_store", "s3_store"])


def _key(name: str = "clip.mp4") -> str:
    # Unique per call: buckets may be shared by tests whose names share their first 40 characters.
    return f"originals/BWC-0042/{uuid.uuid4().hex}/{name}"


def _read(store, key, version_id=""):
    with contextlib.closing(store.open(key, version_id)) as fh:
        return fh.read()


class Trickle(io.RawIOBase):
    """A source that hands out at most ``step`` bytes per read, as an unbuffered device file may."""

    def __init__(self, data: bytes, step: int):
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            n = len(self.data) - self.pos
        chunk = self.data[self.pos:self.pos + min(n, self.step)]
        self.pos += len(chunk)
        return chunk


# --- Bytes in, bytes out ---------------------------------------------------------------------

@BOTH
def test_an_object_put_in_the_store_reads_back_byte_for_byte(backend, request):
    store = request.getfixturevalue(backend)
    data = os.urandom(100_000)
    key = _key()

    stored = store.put(key, io.BytesIO(data), retain_until=RETAIN_UNTIL)

    assert _read(store, key, stored.version_id) == data
    assert _read(store, key) == data


@BOTH
def test_digest_of_a_stored_object_equals_an_independent_sha256(backend, request):
    store = request.getfixturevalue(backend)
    data = os.urandom(70_000)
    key = _key()
    stored = store.put(key, io.BytesIO(data), retain_until=RETAIN_UNTIL)

    assert store.digest(key, stored.version_id) == (hashlib.sha256(data).hexdigest(), len(data))


@BOTH
def test_put_reports_the_sha256_and_size_of_the_bytes_it_was_given(backend, request):
    store = request.getfixturevalue(backend)
    data = os.urandom(33_333)

    stored = store.put(_key(), io.BytesIO(data), retain_until=RETAIN_UNTIL)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)


@BOTH
def test_a_source_that_returns_short_reads_is_stored_whole(backend, request):
    store = request.getfixturevalue(backend)
    data = os.urandom(6 * 1024 * 1024 + 123)  # more than one S3 part of 5 MiB
    key = _key()

    stored = store.put(key, Trickle(data, 64 * 1024), retain_until=RETAIN_UNTIL)

    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert _read(store, key, stored.version_id) == data


@BOTH
def test_a_large_object_reads_back_identically_and_is_locked_until_its_retention_end(backend, request):
    store = request.getfixturevalue(backend)
    data = os.urandom(12 * 1024 * 1024)
    key = _key()

    stored = store.put(key, io.BytesIO(data), retain_until=FUTURE)

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert _read(store, key, stored.version_id) == data
    info = store.head(key, stored.version_id)
    assert info.size == len(data)
    assert info.mode == "COMPLIANCE"
    assert info.retain_until == FUTURE


def test_a_large_object_goes_through_multipart_on_s3_and_still_ends_in_compliance_mode(s3_store):
    # ARCHITECTURE.md §4: moto ignores lock headers on multipart uploads; the store must set the
    # version's retention explicitly after the upload.
    data = os.urandom(12 * 1024 * 1024)  # 3 parts of at most 5 MiB (S3_PART_SIZE in the fixture)
    key = _key()

    stored = s3_store.put(key, io.BytesIO(data), retain_until=FUTURE)

    raw = s3_store.client.head_object(Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id)
    assert raw["ETag"].strip('"').endswith("-3"), "expected a 3-part multipart upload"
    info = s3_store.head(key, stored.version_id)
    assert info.mode == "COMPLIANCE"
    assert info.retain_until == FUTURE
    assert stored.version_id and info.version_id == stored.version_id
    assert s3_store.digest(key, stored.version_id) == (hashlib.sha256(data).hexdigest(), len(data))


@BOTH
def test_a_small_object_is_locked_in_compliance_mode_until_its_retention_end(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()

    stored = store.put(key, io.BytesIO(b"evidence"), retain_until=FUTURE)

    info = store.head(key, stored.version_id)
    assert (info.mode, info.retain_until, info.legal_hold) == ("COMPLIANCE", FUTURE, False)


# --- Write once ------------------------------------------------------------------------------

def test_local_store_refuses_to_write_an_existing_key_and_keeps_the_original(local_store):
    key = _key()
    local_store.put(key, io.BytesIO(b"original bytes"), retain_until=LATER)

    with pytest.raises(ObjectExists):
        local_store.put(key, io.BytesIO(b"forged bytes"), retain_until=EARLIER)

    assert _read(local_store, key) == b"original bytes"
    info = local_store.head(key)
    assert info.retain_until == LATER
    assert info.size == len(b"original bytes")


def test_s3_store_refuses_to_write_an_existing_key_and_keeps_the_original(s3_store):
    key = _key()
    s3_store.put(key, io.BytesIO(b"original bytes"), retain_until=LATER)

    with pytest.raises(ObjectExists):
        s3_store.put(key, io.BytesIO(b"forged bytes"), retain_until=LATER)

    assert _read(s3_store, key) == b"original bytes"


def test_local_store_object_file_is_read_only_on_disk(local_store):
    key = _key()
    local_store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)

    with local_store.local_path(key) as path:
        mode = stat.S_IMODE(path.stat().st_mode)

    assert mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0, oct(mode)


# --- Retention only ever extended ------------------------------------------------------------

@BOTH
def test_retention_can_be_extended_to_a_later_date_on_either_backend(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    stored = store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)

    store.extend_retention(key, stored.version_id, LATER)

    info = store.head(key, stored.version_id)
    assert (info.mode, info.retain_until) == ("COMPLIANCE", LATER)


@BOTH
def test_retention_cannot_be_shortened_and_the_original_date_stays(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    stored = store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)

    with pytest.raises(RetentionViolation):
        store.extend_retention(key, stored.version_id, EARLIER)

    assert store.head(key, stored.version_id).retain_until == RETAIN_UNTIL


def test_moto_lets_retention_be_shortened_so_only_our_s3_layer_refuses_it(s3_store):
    key = _key()
    stored = s3_store.put(key, io.BytesIO(b"evidence"), retain_until=LATER)

    # Our layer refuses...
    with pytest.raises(RetentionViolation):
        s3_store.extend_retention(key, stored.version_id, EARLIER)
    assert s3_store.head(key, stored.version_id).retain_until == LATER

    # ...while moto itself accepts the very same change: the guarantee is ours, not the server's.
    s3_store.client.put_object_retention(
        Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": EARLIER},
    )
    assert s3_store.head(key, stored.version_id).retain_until == EARLIER


# --- Deletion --------------------------------------------------------------------------------

@BOTH
def test_deletion_before_the_retention_end_is_refused_and_the_object_stays_readable(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    stored = store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)

    with pytest.raises(RetentionViolation):
        store.delete(key, now=BEFORE_RETENTION_END)

    assert store.exists(key)
    assert _read(store, key, stored.version_id) == b"evidence"


@BOTH
def test_deletion_under_a_legal_hold_is_refused_even_after_the_retention_end(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    stored = store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)
    store.set_legal_hold(key, stored.version_id, True)

    with pytest.raises(RetentionViolation):
        store.delete(key, now=AFTER_RETENTION_END)

    assert store.head(key, stored.version_id).legal_hold is True
    assert _read(store, key, stored.version_id) == b"evidence"


@BOTH
def test_releasing_the_legal_hold_makes_the_object_deletable_after_its_retention_end(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    stored = store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)
    store.set_legal_hold(key, stored.version_id, True)

    store.set_legal_hold(key, stored.version_id, False)
    store.delete(key, now=AFTER_RETENTION_END)

    assert not store.exists(key)


@BOTH
def test_deletion_after_the_retention_end_without_hold_removes_the_object(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)

    deleted = store.delete(key, now=AFTER_RETENTION_END)

    assert deleted >= 1
    assert not store.exists(key)


def test_s3_deletion_after_the_retention_end_removes_every_version_of_the_key(s3_store):
    key = _key()
    s3_store.put(key, io.BytesIO(b"first"), retain_until=RETAIN_UNTIL)
    # A second version written behind the store's back, locked the same way.
    body = b"second"
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=key, Body=body,
        ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=RETAIN_UNTIL,
    )
    assert len(s3_store.versions(key)) == 2

    assert s3_store.delete(key, now=AFTER_RETENTION_END) == 2

    assert s3_store.versions(key) == []
    listing = s3_store.client.list_object_versions(Bucket=s3_store.bucket, Prefix=key)
    assert [v for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []) if v["Key"] == key] == []
    assert not s3_store.exists(key)


def test_s3_deletion_is_refused_when_an_older_version_is_under_legal_hold(s3_store):
    key = _key()
    first = s3_store.put(key, io.BytesIO(b"first"), retain_until=RETAIN_UNTIL)
    s3_store.set_legal_hold(key, first.version_id, True)
    body = b"second"
    s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=key, Body=body,
        ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=RETAIN_UNTIL,
    )

    with pytest.raises(RetentionViolation):
        s3_store.delete(key, now=AFTER_RETENTION_END)

    assert len(s3_store.versions(key)) == 2
    assert _read(s3_store, key, first.version_id) == b"first"


def test_local_store_refuses_to_delete_an_object_whose_metadata_file_is_missing(local_store):
    # A crash between writing the object and its metadata leaves no known retention end.
    key = _key()
    local_store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)
    (local_store.meta / f"{key}.json").unlink()

    with pytest.raises(RetentionViolation):
        local_store.delete(key, now=FUTURE)

    assert _read(local_store, key) == b"evidence"


# --- Refused input ---------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("bad_key", ["../x", "/abs", "a//b", "a/../../b", "", "a/./b", "a/"])
def test_keys_that_could_leave_the_store_or_are_ambiguous_are_refused(backend, request, bad_key):
    store = request.getfixturevalue(backend)

    with pytest.raises(StoreError):
        store.put(bad_key, io.BytesIO(b"x"), retain_until=RETAIN_UNTIL)
    with pytest.raises(StoreError):
        store.open(bad_key)


def test_local_store_refuses_an_invalid_key_without_writing_outside_its_objects(local_store):
    with pytest.raises(StoreError):
        local_store.put("../escaped", io.BytesIO(b"x"), retain_until=RETAIN_UNTIL)

    assert not (local_store.root / "escaped").exists()
    assert not (local_store.root.parent / "escaped").exists()


@BOTH
def test_a_naive_retention_date_is_refused_when_writing(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()

    with pytest.raises(StoreError):
        store.put(key, io.BytesIO(b"x"), retain_until=dt.datetime(2031, 1, 1))

    assert not store.exists(key)


@BOTH
def test_a_naive_retention_date_is_refused_when_extending(backend, request):
    store = request.getfixturevalue(backend)
    key = _key()
    stored = store.put(key, io.BytesIO(b"x"), retain_until=RETAIN_UNTIL)

    with pytest.raises(StoreError):
        store.extend_retention(key, stored.version_id, dt.datetime(2031, 1, 1))

    assert store.head(key, stored.version_id).retain_until == RETAIN_UNTIL


@pytest.mark.parametrize("backend", ["local_store", "s3_store"])
def test_byte_for_byte_read_back_detects_a_single_different_byte(backend, request):
    import io

    from evidence.integrations.store import HashingReader

    store = request.getfixturevalue(backend)
    payload = os.urandom(6 * 1024 * 1024 + 123)
    reader = HashingReader(io.BytesIO(payload), keep_up_to=64 * 1024 * 1024)
    store.put("readback/a.bin", reader, retain_until=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    tampered = bytearray(payload)
    tampered[4_000_000] ^= 1

    assert store.equals("readback/a.bin", "", reader.kept)
    assert not store.equals("readback/a.bin", "", [bytes(tampered)])
    assert not store.equals("readback/a.bin", "", [payload[:-1]])
    assert not store.equals("readback/a.bin", "", [payload + b"x"])


@pytest.mark.parametrize("backend", ["local_store", "s3_store"])
def test_pooled_chunks_are_stored_whole_and_the_read_back_catches_one_changed_byte(backend, request):
    """Issue 19: chunks read into reused buffers (short last chunk included) are stored whole and
    the read-back (mapped in place on the local store) compares every byte with them."""
    import io

    from evidence.integrations.store import ChunkPool, HashingReader, PooledReadAhead

    store = request.getfixturevalue(backend)
    pool = ChunkPool(1024 * 1024, limit=8 * 1024 * 1024)
    payload = os.urandom(5 * 1024 * 1024 + 321)
    ahead = PooledReadAhead(io.BytesIO(payload), pool)
    reader = HashingReader(ahead, keep_up_to=64 * 1024 * 1024)
    try:
        stored = store.put("pooled/a.bin", reader, retain_until=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    finally:
        ahead.close()

    assert (stored.sha256, stored.size) == (hashlib.sha256(payload).hexdigest(), len(payload))
    assert [len(c) for c in reader.kept] == [1024 * 1024] * 5 + [321]
    assert store.equals("pooled/a.bin", stored.version_id, reader.kept)
    reader.kept[3].obj[17] ^= 1  # the kept bytes differ from the stored ones by one bit
    assert not store.equals("pooled/a.bin", stored.version_id, reader.kept)
    reader.kept[3].obj[17] ^= 1
    reader.kept[-1].obj[320] ^= 1  # in the short last chunk
    assert not store.equals("pooled/a.bin", stored.version_id, reader.kept)
    reader.kept[-1].obj[320] ^= 1
    assert not store.equals("pooled/a.bin", stored.version_id, reader.kept[:-1])

    pool.release(reader.kept)
    assert len(pool.free) == 6 and pool.get() is reader.kept[-1].obj  # reused, not reallocated


def test_the_reader_stops_keeping_bytes_beyond_its_limit():
    import io

    from evidence.integrations.store import HashingReader

    reader = HashingReader(io.BytesIO(b"x" * 3000), keep_up_to=2048)
    while reader.read(1000):
        pass

    assert reader.kept is None and reader.size == 3000


# --- Leftovers of writes a killed worker never finished -------------------------------------

def test_local_store_sweep_removes_only_old_staging_files_and_never_an_object(local_store):
    key = _key()
    local_store.put(key, io.BytesIO(b"evidence" * 1000), retain_until=FUTURE)
    old_orphan = local_store.staging / "dead-before-its-link"
    old_orphan.write_bytes(b"x" * 4096)
    # Died after linking the object, before removing its staging name: the same file twice.
    old_linked = local_store.staging / "dead-after-its-link"
    os.link(local_store.objects / key, old_linked)
    fresh = local_store.staging / "upload-in-progress"
    fresh.write_bytes(b"y" * 100)
    week_ago = (dt.datetime.now(UTC) - dt.timedelta(days=7)).timestamp()
    for path in (old_orphan, old_linked):
        os.utime(path, (week_ago, week_ago), follow_symlinks=False)

    count, freed = local_store.sweep_incomplete(older_than=dt.datetime.now(UTC) - dt.timedelta(days=1))

    assert (count, freed) == (2, 4096)  # the linked one freed nothing: the object keeps its bytes
    assert sorted(p.name for p in local_store.staging.iterdir()) == ["upload-in-progress"]
    assert _read(local_store, key) == b"evidence" * 1000 and local_store.head(key).retain_until == FUTURE


def test_s3_store_sweep_aborts_only_multipart_uploads_started_before_the_cutoff(s3_store):
    key = _key()
    s3_store.put(key, io.BytesIO(b"evidence"), retain_until=FUTURE)
    dead_key = _key("killed.mp4")  # a worker killed after sending one part
    dead = s3_store.client.create_multipart_upload(Bucket=s3_store.bucket, Key=dead_key)["UploadId"]
    s3_store.client.upload_part(Bucket=s3_store.bucket, Key=dead_key, UploadId=dead, PartNumber=1, Body=b"z" * 1024)

    # moto reports every upload as initiated on 2010-11-10 (checked with moto 5): the cutoffs are
    # placed around that date.
    initiated = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)["Uploads"][0]["Initiated"]
    assert s3_store.sweep_incomplete(older_than=initiated - dt.timedelta(seconds=1)) == (0, 0)
    count, _ = s3_store.sweep_incomplete(older_than=initiated + dt.timedelta(seconds=1))

    assert count == 1
    assert s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []
    assert _read(s3_store, key) == b"evidence"


# --- Durability of a local write ---------------------------------------------------------------

def _fsynced_paths(monkeypatch) -> list[str]:
    synced: list[str] = []
    real = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    return synced


def test_local_store_makes_the_bytes_the_metadata_and_both_directory_entries_durable(local_store, monkeypatch):
    key = _key()
    synced = _fsynced_paths(monkeypatch)

    local_store.put(key, io.BytesIO(b"evidence"), retain_until=RETAIN_UNTIL)

    obj, meta = local_store.objects / key, local_store.meta / f"{key}.json"
    # The bytes under their staging name (the same file as the object), the metadata under its
    # temporary name before the rename, then both directories after the link and the rename.
    assert len(synced) == 4
    data = [p for p in synced if p.startswith(str(local_store.staging))]
    assert len(data) == 1 and not os.path.exists(data[0])  # linked as the object, then unlinked
    assert [p for p in synced if p.startswith(str(meta.parent / f".{meta.name}."))]
    assert str(obj.parent) in synced and str(meta.parent) in synced
    assert sorted(p.name for p in meta.parent.iterdir()) == [meta.name]  # no temporary left


def test_local_store_leaves_nothing_behind_when_another_writer_linked_the_key_first(local_store, monkeypatch):
    key = _key()

    def taken(src, dst):  # another writer linked the same key between our check and our link
        raise FileExistsError(dst)

    monkeypatch.setattr(os, "link", taken)
    with pytest.raises(ObjectExists):
        local_store.put(key, io.BytesIO(b"second"), retain_until=FUTURE)

    assert not list(local_store.staging.iterdir())
    assert not (local_store.meta / f"{key}.json").parent.exists() or \
        not list((local_store.meta / f"{key}.json").parent.iterdir())


def test_local_store_writes_from_a_forked_child(local_store):
    # The fsyncs run in a thread pool: a child forked after the parent used it gets its own.
    local_store.put(_key(), io.BytesIO(b"parent"), retain_until=RETAIN_UNTIL)
    key = _key()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            local_store.put(key, io.BytesIO(b"child"), retain_until=RETAIN_UNTIL)
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's write never finished (its fsync pool has no thread)")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert _read(local_store, key) == b"child"
