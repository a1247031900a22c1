"""Write-once evidence on a server that enforces Object Lock (Ceph RGW) and on moto.

Every test runs on both servers (``s3_store`` parametrised). Where they differ, the test says what
each server does and shows that Témoin's store refuses what Ceph refuses, including what moto
would have allowed (ARCHITECTURE.md §4). Ceph checks retention against its own clock and refuses
a retain-until date in the past, so the dates here are in the real future; a version whose
retention has really ended cannot be made without waiting, and its deletion is covered on moto
(tests/evidence/test_store.py).
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import io
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from evidence.integrations.store import ObjectExists, RetentionViolation, StoreError

UTC = dt.timezone.utc
ON_BOTH = pytest.mark.parametrize("s3_store", ["moto", "ceph"], indirect=True)
MULTIPART_SIZE = 11 * 1024 * 1024  # three parts of at most 5 MiB (S3_PART_SIZE in the fixture)


def _future(**delta) -> dt.datetime:
    # Whole seconds: servers keep retain-until dates at different precisions.
    return (dt.datetime.now(UTC) + dt.timedelta(**delta)).replace(microsecond=0)


def _key(name: str = "clip.mp4") -> str:
    return f"originals/BWC-0042/{uuid.uuid4().hex}/{name}"


def _read(store, key, version_id=""):
    with contextlib.closing(store.open(key, version_id)) as fh:
        return fh.read()


def _server_allows(call) -> bool:
    """True when the S3 server accepted the call; False when it answered AccessDenied."""
    try:
        call()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("AccessDenied", "InvalidRequest"), exc.response["Error"]
        return False
    return True


@pytest.fixture
def server(s3_store, request):
    """Which server the test runs on: "moto" or "ceph"."""
    return request.node.callspec.params["s3_store"]


# --- Deletion ------------------------------------------------------------------------------

@ON_BOTH
def test_a_locked_version_cannot_be_deleted_before_its_retention_end_by_the_store_or_the_server(s3_store):
    key = _key()
    stored = s3_store.put(key, io.BytesIO(b"evidence"), retain_until=_future(days=1))

    with pytest.raises(RetentionViolation):
        s3_store.delete(key, now=dt.datetime.now(UTC))
    assert not _server_allows(lambda: s3_store.client.delete_object(
        Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id))

    assert _read(s3_store, key, stored.version_id) == b"evidence"


# --- Retention only ever extended ------------------------------------------------------------

@ON_BOTH
def test_shortening_a_retention_is_refused_by_the_store_and_by_ceph_while_moto_allows_it(s3_store, server):
    key = _key()
    until, earlier = _future(days=2), _future(days=1)
    stored = s3_store.put(key, io.BytesIO(b"evidence"), retain_until=until)

    with pytest.raises(RetentionViolation):
        s3_store.extend_retention(key, stored.version_id, earlier)
    assert s3_store.head(key, stored.version_id).retain_until == until

    # The same change asked of the server directly: a real Object Lock refuses it, moto does not.
    allowed = _server_allows(lambda: s3_store.client.put_object_retention(
        Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id,
        Retention={"Mode": "COMPLIANCE", "RetainUntilDate": earlier}))
    assert allowed is {"moto": True, "ceph": False}[server]
    assert s3_store.head(key, stored.version_id).retain_until == {"moto": earlier, "ceph": until}[server]


@ON_BOTH
def test_a_retention_is_extended_on_either_server(s3_store):
    key = _key()
    stored = s3_store.put(key, io.BytesIO(b"evidence"), retain_until=_future(days=1))
    later = _future(days=40)

    s3_store.extend_retention(key, stored.version_id, later)

    info = s3_store.head(key, stored.version_id)
    assert (info.mode, info.retain_until) == ("COMPLIANCE", later)


@ON_BOTH
def test_switching_compliance_to_governance_is_refused_by_ceph_and_caught_by_the_store_on_moto(s3_store, server):
    key = _key()
    until = _future(days=1)
    stored = s3_store.put(key, io.BytesIO(b"evidence"), retain_until=until)

    # GOVERNANCE can be lifted by an account allowed to bypass it: it is not write-once.
    allowed = _server_allows(lambda: s3_store.client.put_object_retention(
        Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until}))

    assert allowed is {"moto": True, "ceph": False}[server]
    mode = s3_store.head(key, stored.version_id).mode
    assert mode == {"moto": "GOVERNANCE", "ceph": "COMPLIANCE"}[server]
    if server == "moto":
        # The version no longer counts as stored: the read-back check refuses anything but COMPLIANCE.
        with pytest.raises(StoreError, match="not locked"):
            s3_store.verify_written(stored, [b"evidence"], until)
    else:
        assert s3_store.verify_written(stored, [b"evidence"], until)[2].mode == "COMPLIANCE"


# --- Legal hold ------------------------------------------------------------------------------

@ON_BOTH
def test_a_legal_hold_is_kept_by_the_server_and_blocks_deletion_until_released(s3_store):
    key = _key()
    stored = s3_store.put(key, io.BytesIO(b"evidence"), retain_until=_future(days=1))

    s3_store.set_legal_hold(key, stored.version_id, True)

    assert s3_store.head(key, stored.version_id).legal_hold is True
    raw = s3_store.client.get_object_legal_hold(Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id)
    assert raw["LegalHold"]["Status"] == "ON"
    # Even at a date after the retention end, the hold alone refuses the deletion.
    with pytest.raises(RetentionViolation, match="legal hold"):
        s3_store.delete(key, now=_future(days=3))
    assert not _server_allows(lambda: s3_store.client.delete_object(
        Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id))

    s3_store.set_legal_hold(key, stored.version_id, False)
    assert s3_store.head(key, stored.version_id).legal_hold is False
    assert _read(s3_store, key, stored.version_id) == b"evidence"


# --- Multipart uploads -------------------------------------------------------------------------

@ON_BOTH
@pytest.mark.parametrize("days", [30, 0.25], ids=["after-the-bucket-default", "before-the-bucket-default"])
def test_an_original_sent_in_parts_is_locked_until_at_least_its_retention_end(s3_store, days):
    # Both servers ignore lock headers on a multipart upload; Ceph applies the bucket's default
    # retention (one day, deploy/minio-init.sh and ensure_bucket) to the completed object, which
    # may end after the recording's own retention end: the store keeps that later end, since a
    # real server refuses to shorten it (a clip docked a few hours before its retention end).
    data = os.urandom(MULTIPART_SIZE)
    key = _key()
    until = _future(days=days)

    stored = s3_store.put(key, io.BytesIO(data), retain_until=until)

    raw = s3_store.client.head_object(Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id)
    assert raw["ETag"].strip('"').endswith("-3"), "expected a 3-part multipart upload"
    back_sha, _method, info = s3_store.verify_written(stored, None, until)
    assert back_sha == hashlib.sha256(data).hexdigest()
    assert info.mode == "COMPLIANCE" and info.retain_until >= until
    if days > 1:
        assert info.retain_until == until
    assert not _server_allows(lambda: s3_store.client.delete_object(
        Bucket=s3_store.bucket, Key=key, VersionId=stored.version_id))


# --- Versions ----------------------------------------------------------------------------------

@ON_BOTH
def test_the_store_never_writes_a_second_version_and_refuses_to_delete_any_locked_one(s3_store):
    key = _key()
    until = _future(days=1)
    first = s3_store.put(key, io.BytesIO(b"original"), retain_until=until)

    with pytest.raises(ObjectExists):
        s3_store.put(key, io.BytesIO(b"forged"), retain_until=until)
    # A second version written behind the store's back, locked the same way.
    body = b"second"
    second = s3_store.client.put_object(
        Bucket=s3_store.bucket, Key=key, Body=body,
        ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)["VersionId"]

    assert sorted(s3_store.versions(key)) == sorted([first.version_id, second])
    with pytest.raises(RetentionViolation):
        s3_store.delete(key, now=dt.datetime.now(UTC))
    # Without a version id the server only adds a delete marker: every version stays readable.
    s3_store.client.delete_object(Bucket=s3_store.bucket, Key=key)
    assert not _server_allows(lambda: s3_store.client.delete_object(
        Bucket=s3_store.bucket, Key=key, VersionId=first.version_id))
    assert _read(s3_store, key, first.version_id) == b"original"
    assert _read(s3_store, key, second) == b"second"
