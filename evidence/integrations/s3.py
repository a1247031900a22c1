"""S3 Object Lock backend (MinIO in production; moto's server in tests). The only boto3 user.

Every original is written in COMPLIANCE mode with RetainUntilDate = the recording's retention end.
Some S3 implementations ignore lock headers on multipart uploads (moto 5.2.5 does), so after every
upload the version's retention is set explicitly and checked with HEAD before the upload counts.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from .store_base import (
    HashingReader,
    ListedObject,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    ObjectStore,
    RetentionViolation,
    StoredObject,
    StoreError,
    _aware,
    _check_key,
)

LOCK_MODE = "COMPLIANCE"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _read_full(reader, size: int) -> bytes:
    """Read exactly ``size`` bytes unless the stream ends first (file reads may return less)."""
    parts, remaining = [], size
    while remaining > 0:
        data = reader.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


class _Body:
    """A response body whose network errors (connection reset mid-read…) are StoreErrors."""

    def __init__(self, raw, key: str):
        self.raw, self.key = raw, key

    def read(self, n: int = -1) -> bytes:
        try:
            return self.raw.read() if n is None or n < 0 else self.raw.read(n)
        except (BotoCoreError, OSError, ValueError) as exc:  # urllib3's errors derive from these or HTTPError
            raise StoreError(f"S3 read of {self.key} interrupted: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - urllib3.exceptions.ProtocolError and friends
            if type(exc).__module__.startswith("urllib3"):
                raise StoreError(f"S3 read of {self.key} interrupted: {exc}") from exc
            raise

    def readinto(self, buf) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()


def _refusal(key: str, what: str, exc: Exception) -> StoreError:
    """The store's own answer as one of ours: a lock it enforces is a RetentionViolation."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        if code in ("AccessDenied", "InvalidRequest", "ObjectLocked", "InvalidArgument"):
            return RetentionViolation(f"{key}: {what} refused by the store ({code}: {message})")
        return StoreError(f"{key}: {what} failed in the store ({code}: {message})")
    return StoreError(f"{key}: {what} failed: {exc}")


class S3Store(ObjectStore):
    def __init__(self, *, endpoint_url: str, bucket: str, access_key: str, secret_key: str,
                 region: str = "us-east-1", part_size: int = 16 * 1024 * 1024):
        self.bucket = bucket
        self.part_size = max(part_size, 5 * 1024 * 1024)
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                s3={"addressing_style": "path"},
                connect_timeout=10,
                read_timeout=120,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    @classmethod
    def from_settings(cls) -> "S3Store":
        return cls(
            endpoint_url=settings.S3_ENDPOINT_URL,
            bucket=settings.S3_BUCKET,
            access_key=settings.S3_ACCESS_KEY_ID,
            secret_key=settings.S3_SECRET_ACCESS_KEY,
            region=settings.S3_REGION,
            part_size=settings.S3_PART_SIZE,
        )

    # -- bucket -------------------------------------------------------------------------------
    def ensure_bucket(self, *, default_retention_days: int = 1) -> None:
        """Create the bucket with Object Lock (and so versioning) if it does not exist.

        The default retention is only a safety net: it must stay below the legal retention or
        the legal erasure would become impossible; each object's retention is set explicitly.
        """
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})
        self.client.put_object_lock_configuration(
            Bucket=self.bucket,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": LOCK_MODE, "Days": default_retention_days}},
            },
        )

    # -- writes -------------------------------------------------------------------------------
    def put(self, key, source, *, retain_until, content_type="application/octet-stream"):
        _check_key(key)
        retain_until = _aware(retain_until)
        if self.exists(key):
            # Write-once: with versioning S3 would silently add a newer version under the key.
            raise ObjectExists(f"{key} already exists in the write-once store")
        reader = source if isinstance(source, HashingReader) else HashingReader(source)
        lock = {"ObjectLockMode": LOCK_MODE, "ObjectLockRetainUntilDate": retain_until}
        try:
            first = _read_full(reader, self.part_size)
            nxt = _read_full(reader, self.part_size) if len(first) == self.part_size else b""
            if not nxt:
                resp = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=first, ContentType=content_type,
                    ChecksumAlgorithm="SHA256", ChecksumSHA256=_b64(hashlib.sha256(first).digest()),
                    # Object Lock puts need Content-MD5 on older MinIO / S3 servers.
                    ContentMD5=_b64(hashlib.md5(first).digest()), **lock,
                )
                version_id = resp.get("VersionId", "")
            else:
                version_id = self._multipart(key, reader, first, nxt, content_type, lock)
            self._lock_at_least(key, version_id, retain_until)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"S3 upload of {key} failed: {exc}") from exc
        return StoredObject(key=key, version_id=version_id or "", size=reader.size,
                            sha256=reader.sha256.hexdigest())

    def _lock_at_least(self, key: str, version_id: str, retain_until) -> None:
        """Lock the new version in COMPLIANCE mode until ``retain_until``, unless it already is.

        Lock headers on multipart uploads are ignored (moto, Ceph RGW 16): the version then has
        no lock (moto) or the bucket's default retention (Ceph), which may end later than
        ``retain_until``; a real server refuses to shorten it, so a later end is kept.
        """
        head = self.client.head_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockMode") == LOCK_MODE and until and _aware(until) >= retain_until:
            return
        self.client.put_object_retention(
            Bucket=self.bucket, Key=key, VersionId=version_id,
            Retention={"Mode": LOCK_MODE, "RetainUntilDate": retain_until},
            BypassGovernanceRetention=False,
        )

    def _multipart(self, key, reader, first, nxt, content_type, lock) -> str:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type, ChecksumAlgorithm="SHA256", **lock
        )
        upload_id = upload["UploadId"]
        parts = []
        try:
            number, data = 1, first
            while data:
                resp = self.client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=_b64(hashlib.sha256(data).digest()),
                )
                parts.append({"PartNumber": number, "ETag": resp["ETag"],
                              "ChecksumSHA256": resp.get("ChecksumSHA256") or _b64(hashlib.sha256(data).digest())})
                number += 1
                data, nxt = nxt, (_read_full(reader, self.part_size) if nxt else b"")
            resp = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return resp.get("VersionId", "")
        except BaseException:
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    # -- reads --------------------------------------------------------------------------------
    def _version(self, version_id: str) -> dict:
        return {"VersionId": version_id} if version_id else {}

    def open(self, key, version_id=""):
        _check_key(key)
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NoSuchVersion"):
                raise ObjectMissing(f"no object {key}") from exc
            raise StoreError(f"S3 read of {key} failed: {exc}") from exc
        except BotoCoreError as exc:  # endpoint unreachable, timeouts: the caller retries
            raise StoreError(f"S3 read of {key} failed: {exc}") from exc
        return _Body(resp["Body"], key)

    def read_range(self, key, version_id, start, length, chunk=1 << 20):
        if length <= 0:
            return
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}",
                                          **self._version(version_id))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"S3 read of {key} failed: {exc}") from exc
        body = _Body(resp["Body"], key)
        try:
            while data := body.read(chunk):
                yield data
        finally:
            body.close()

    def head(self, key, version_id=""):
        _check_key(key)
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NoSuchVersion", "405"):
                raise ObjectMissing(f"no object {key}") from exc
            raise StoreError(f"S3 HEAD of {key} failed: {exc}") from exc
        except BotoCoreError as exc:  # endpoint unreachable, timeouts: the caller retries
            raise StoreError(f"S3 HEAD of {key} failed: {exc}") from exc
        until = resp.get("ObjectLockRetainUntilDate")
        return ObjectInfo(
            key=key,
            version_id=resp.get("VersionId", version_id) or "",
            size=resp["ContentLength"],
            retain_until=_aware(until) if until else None,
            mode=resp.get("ObjectLockMode", "") or "",
            legal_hold=resp.get("ObjectLockLegalHoldStatus") == "ON",
        )

    def versions(self, key: str, *, markers: bool = True) -> list[str]:
        found, kwargs = [], {"Bucket": self.bucket, "Prefix": key}
        try:
            while True:
                resp = self.client.list_object_versions(**kwargs)
                for v in resp.get("Versions", []) + (resp.get("DeleteMarkers", []) if markers else []):
                    if v["Key"] == key:
                        found.append(v["VersionId"])
                if not resp.get("IsTruncated"):
                    return found
                kwargs.update(KeyMarker=resp["NextKeyMarker"], VersionIdMarker=resp["NextVersionIdMarker"])
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"S3 listing of the versions of {key} failed: {exc}") from exc

    def iter_objects(self, prefix=""):
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        try:
            while True:
                resp = self.client.list_object_versions(**kwargs)
                for v in resp.get("Versions", []):
                    yield ListedObject(key=v["Key"], version_id=v.get("VersionId") or "", size=v.get("Size", 0),
                                       modified=_aware(v["LastModified"]))
                if not resp.get("IsTruncated"):
                    return
                kwargs.update(KeyMarker=resp["NextKeyMarker"], VersionIdMarker=resp["NextVersionIdMarker"])
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"S3 listing of {self.bucket}/{prefix} failed: {exc}") from exc

    def clock(self):
        """The time in the store's answers (HTTP Date, whole seconds): its locks follow it."""
        import email.utils

        try:
            resp = self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"S3 clock of {self.bucket} unreadable: {exc}") from exc
        date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if not date:
            return super().clock()
        return email.utils.parsedate_to_datetime(date).astimezone(dt.timezone.utc)

    # -- lock management ----------------------------------------------------------------------
    def extend_retention(self, key, version_id, retain_until):
        retain_until = _aware(retain_until)
        info = self.head(key, version_id)
        # Our own rule, whatever the server allows (moto lets retention be shortened).
        if info.retain_until and retain_until < info.retain_until:
            raise RetentionViolation(
                f"{key}: retention can only be extended ({info.retain_until.isoformat()} → "
                f"{retain_until.isoformat()} refused)"
            )
        try:
            self.client.put_object_retention(
                Bucket=self.bucket, Key=key, VersionId=info.version_id,
                Retention={"Mode": LOCK_MODE, "RetainUntilDate": retain_until},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _refusal(key, "retention change", exc) from exc

    def set_legal_hold(self, key, version_id, on):
        """Legal hold on one version, or on every version of the key when none is named (a version
        hidden behind a delete marker is still bytes in the store: it is held too)."""
        _check_key(key)
        targets = [version_id] if version_id else [v for v in self.versions(key, markers=False)]
        if not targets:
            raise ObjectMissing(f"no object {key}")
        for vid in targets:
            try:
                self.client.put_object_legal_hold(
                    Bucket=self.bucket, Key=key, VersionId=vid, LegalHold={"Status": "ON" if on else "OFF"})
            except ClientError as exc:
                if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NoSuchVersion"):
                    raise ObjectMissing(f"no object {key}") from exc
                raise _refusal(key, "legal hold", exc) from exc
            except BotoCoreError as exc:
                raise StoreError(f"S3 legal hold of {key} failed: {exc}") from exc

    def sweep_incomplete(self, *, older_than):
        # Multipart uploads a killed worker never completed nor aborted: their parts take space
        # (and are billed) until aborted. A completed object is never a pending upload.
        cutoff = _aware(older_than)
        count, kwargs = 0, {"Bucket": self.bucket}
        try:
            while True:
                resp = self.client.list_multipart_uploads(**kwargs)
                for upload in resp.get("Uploads", []):
                    if _aware(upload["Initiated"]) < cutoff:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                           UploadId=upload["UploadId"])
                        count += 1
                if not resp.get("IsTruncated"):
                    return count, 0
                kwargs.update(KeyMarker=resp["NextKeyMarker"], UploadIdMarker=resp["NextUploadIdMarker"])
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"S3 listing of incomplete uploads failed: {exc}") from exc

    def delete(self, key, *, now):
        versions = self.versions(key)
        for vid in versions:
            try:
                info = self.head(key, vid)
            except ObjectMissing:
                continue  # a delete marker
            self._check_deletable(info, now)
        for vid in versions:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key, VersionId=vid)
            except (ClientError, BotoCoreError) as exc:
                # The store's own refusal (still locked by its clock, a skewed request, access
                # denied) is reported like ours: the recording waits for the next sweep.
                raise _refusal(key, "deletion", exc) from exc
        return len(versions)

    @contextlib.contextmanager
    def local_path(self, key, version_id=""):
        suffix = Path(key).suffix
        fd, name = tempfile.mkstemp(prefix="temoin-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as out, contextlib.closing(self.open(key, version_id)) as body:
                while data := body.read(8 * 1024 * 1024):
                    out.write(data)
            yield Path(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
