"""The staging folder of the partners' tus uploads: room before accepting one, abandoned ones swept.

Bytes wait here (``TEMOIN_DATA_DIR/requisitions/staging/<upload id>``) until the last one arrives
and the file is stored write-once (``upload.py``). Two things keep the folder sound:

* **Room first.** An upload is accepted only when its ``Upload-Length``, the bytes still owed by the
  other unfinished uploads of open links, and the store's copy when the local store shares the
  volume, fit in the volume's free space minus ``TEMOIN_STAGING_FREE_MARGIN``; otherwise the
  creation answers 507 and nothing is staged (the partner may try later: nothing is lost).
* **Abandoned uploads swept.** An unfinished upload untouched for ``TEMOIN_UPLOAD_ABANDON_IDLE``
  (7 days), or whose link expired ``TEMOIN_UPLOAD_ABANDON_AFTER`` (1 day) ago, can no longer be
  finished usefully: its partial file is removed, the upload marked failed, and the custody log
  says so (``requisition.upload_abandoned``, with the partial bytes' SHA-256) in the same
  transaction (CSI R241-14). Partial bytes are not evidence yet: nothing was handed over whole.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from audit.services import custody_event_append

from ..models import LIVE_STATUSES
from ..retention.dates import fixed_duration
from .models import RequisitionUpload

log = logging.getLogger(__name__)


class StagingFull(Exception):
    """Not enough free space to accept an upload (the message says how much is missing)."""


def staging_dir() -> Path:
    path = Path(settings.DATA_DIR) / "requisitions" / "staging"
    path.mkdir(parents=True, exist_ok=True)
    return path


def staged_path(upload: RequisitionUpload) -> Path:
    # The upload's own random id names the file: nothing the partner sends becomes a path.
    return staging_dir() / upload.uid


def free_space(path: Path) -> int:
    """Free bytes on the volume holding ``path`` (the one place that asks; tests replace shutil.disk_usage)."""
    return shutil.disk_usage(path).free


def _same_volume_as_store(path: Path) -> bool:
    if settings.STORE_BACKEND != "local":
        return False
    try:
        return os.stat(path).st_dev == os.stat(settings.STORE_LOCAL_ROOT).st_dev
    except OSError:
        return False


def staging_room_check(*, length: int, now: dt.datetime) -> None:
    """StagingFull unless ``length`` more bytes fit (see the module's docstring)."""
    path = staging_dir()
    owed = (RequisitionUpload.objects.filter(status=RequisitionUpload.Status.RECEIVING,
                                             requisition__expires_at__gt=now)
            .aggregate(n=Sum(F("length") - F("offset")))["n"] or 0)
    factor = 2 if _same_volume_as_store(path) else 1  # staged, then copied into the store beside it
    needed = factor * (length + owed) + int(settings.TEMOIN_STAGING_FREE_MARGIN)
    free = free_space(path)
    if needed > free:
        raise StagingFull(
            f"not enough space to receive {length} bytes now: {free} bytes free, {needed} needed "
            f"({owed} still owed to unfinished uploads, a margin of {settings.TEMOIN_STAGING_FREE_MARGIN}); "
            "nothing was received, try again later or ask the requesting service")


def _partial_digest(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while data := fh.read(settings.TEMOIN_CHUNK_SIZE):
            sha.update(data)
            size += len(data)
    return sha.hexdigest(), size


def staging_sweep(*, now: dt.datetime | None = None) -> list[str]:
    """Remove abandoned uploads from staging (see the module's docstring); the ids removed."""
    now = now or timezone.now()
    idle = fixed_duration(settings.TEMOIN_UPLOAD_ABANDON_IDLE)
    after_expiry = fixed_duration(settings.TEMOIN_UPLOAD_ABANDON_AFTER)
    removed = []
    for upload in (RequisitionUpload.objects.filter(status=RequisitionUpload.Status.RECEIVING)
                   .select_related("requisition__organisation")):
        path = staged_path(upload)
        try:
            touched = dt.datetime.fromtimestamp(os.stat(path).st_mtime, tz=dt.timezone.utc)
        except FileNotFoundError:
            touched = None
        last = max(upload.created_at, touched) if touched else upload.created_at
        expired_long_ago = now >= upload.requisition.expires_at + after_expiry
        if not expired_long_ago and now - last < idle:
            continue
        digest, size = _partial_digest(path) if touched else ("", 0)
        reason = (f"link expired at {upload.requisition.expires_at.isoformat()} more than {settings.TEMOIN_UPLOAD_ABANDON_AFTER} ago"
                  if expired_long_ago else f"untouched since {last.isoformat()} ({settings.TEMOIN_UPLOAD_ABANDON_IDLE} or more)")
        with transaction.atomic():
            locked = RequisitionUpload.objects.select_for_update().get(pk=upload.pk)
            if locked.status != RequisitionUpload.Status.RECEIVING or locked.offset != upload.offset:
                continue  # finished or appended meanwhile
            locked.status = RequisitionUpload.Status.FAILED
            locked.message = (f"abandoned: {size} of {locked.length} bytes received, removed from staging "
                              f"({reason})")[:2000]
            locked.completed_at = now
            locked.save(update_fields=["status", "message", "completed_at"])
            custody_event_append(
                action="requisition.upload_abandoned", subject=upload.requisition,
                organisation=upload.requisition.organisation, actor_label="system:staging-sweep",
                details={"upload": upload.uid, "filename": upload.filename, "length": upload.length,
                         "received": size, "partial_sha256": digest or None, "reason": reason})
            transaction.on_commit(lambda p=path: p.unlink(missing_ok=True))
        removed.append(upload.uid)
    if removed:
        log.info("requisitions: %d abandoned upload(s) removed from staging", len(removed))
    return removed


def bundles_requeue(*, older_than: dt.timedelta = dt.timedelta(minutes=10), now: dt.datetime | None = None) -> int:
    """Export bundles stored but never unpacked (the broker was down, a worker died): queued again."""
    from ..dispatch import bundle_enqueue_unpack

    now = now or timezone.now()
    pending = (RequisitionUpload.objects.filter(report__kind="bundle", completed_at__lt=now - older_than,
                                                recording__status__in=LIVE_STATUSES)
               .exclude(report__has_key="unpacked_at").values_list("recording_id", flat=True)[:1000])
    ids = list(pending)
    for pk in ids:
        bundle_enqueue_unpack(recording_id=pk)
    return len(ids)
