"""Media: the playback copy and poster of a stored recording (ARCHITECTURE.md §3).

LEGAL.md rule 2 (CSI R241-11 V): the original is never changed; a remuxed copy is checked stream by
stream against it. LEGAL.md rule 4 (CSI R241-13): derivatives follow the original's fate (same
retention end, same legal hold). LEGAL.md rule 7 (CSI R241-14): the outcome is logged.
"""
from __future__ import annotations

import datetime as dt
import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import custody_event_append

from ..dispatch import recording_enqueue_media
from ..integrations import ffmpeg
from ..integrations.store import ObjectExists, StoredObject, get_store
from ..models import Recording
from ..retention.holds import recording_is_held
from ..retention.objects import media_keys_for

log = logging.getLogger(__name__)


def recording_process_media(*, recording: Recording) -> Recording:
    """ffprobe, stream hashes, playback copy (remux or H.264 transcode), poster → ready/unplayable."""
    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        if recording.status not in (Recording.Status.STORED, Recording.Status.PROCESSING):
            return recording  # idempotent
        recording.status = Recording.Status.PROCESSING
        recording.save(update_fields=["status"])
    store = get_store()
    playback_key, poster_key = media_keys_for(recording.store_key)
    details: dict = {}
    try:
        with store.local_path(recording.store_key, recording.store_version_id) as src, \
                tempfile.TemporaryDirectory(prefix="temoin-media-") as tmp:
            info = ffmpeg.probe(src)
            details["media_info"] = info.as_dict()
            dst = Path(tmp) / "playback.mp4"
            method = "remux" if info.browser_ready else "transcode"
            try:
                command, original_hashes = ffmpeg.playback_copy(src, dst, remux=method == "remux", hash_original=True)
            except ffmpeg.MediaError:
                if method != "remux":
                    raise
                method = "transcode"
                command, original_hashes = ffmpeg.playback_copy(src, dst, remux=False, hash_original=True)
            copy_info = ffmpeg.probe(dst)
            copy_hashes = ffmpeg.stream_hashes(dst)
            if method == "remux" and copy_hashes != original_hashes:
                raise ffmpeg.MediaError("remuxed copy's stream hashes differ from the original's")
            poster = Path(tmp) / "poster.jpg"
            ffmpeg.poster(dst, poster, at=min(1.0, (copy_info.duration or 0) / 2))
            p_obj = _put_derivative(store, playback_key, dst, recording.retain_until, "video/mp4")
            s_obj = _put_derivative(store, poster_key, poster, recording.retain_until, "image/jpeg")
            if recording_is_held(recording):  # copies follow the original's legal hold too
                for obj in (p_obj, s_obj):
                    store.set_legal_hold(obj.key, obj.version_id, True)
    except ffmpeg.MediaError as exc:
        with transaction.atomic():
            recording = Recording.objects.select_for_update().get(pk=recording.pk)
            recording.status = Recording.Status.UNPLAYABLE
            recording.status_message = f"{exc} {exc.detail}".strip()[:2000]
            recording.media_info = details.get("media_info", {})
            recording.save(update_fields=["status", "status_message", "media_info"])
            custody_event_append(action="recording.unplayable", subject=recording, actor_label="system:media",
                                 details={"error": str(exc), "detail": exc.detail[:2000]})
        return recording

    with transaction.atomic():
        recording = Recording.objects.select_for_update().get(pk=recording.pk)
        recording.media_info = info.as_dict()
        recording.duration = info.duration
        if recording.started_at and not recording.ended_at and info.duration:
            recording.ended_at = recording.started_at + dt.timedelta(seconds=info.duration)
        recording.stream_hashes = {"original": original_hashes, "playback": copy_hashes}
        recording.playback_key, recording.playback_version_id = p_obj.key, p_obj.version_id
        recording.poster_key, recording.poster_version_id = s_obj.key, s_obj.version_id
        recording.playback_method = method
        recording.status = Recording.Status.READY
        recording.status_message = ""
        recording.save()
        custody_event_append(
            action="recording.playback_ready", subject=recording, actor_label="system:media",
            details={"method": method, "playback_key": p_obj.key, "playback_sha256": p_obj.sha256,
                     "poster_key": s_obj.key, "stream_hashes": recording.stream_hashes,
                     "command": [a for a in command if not a.startswith("/")]},
        )
    return recording


def _put_derivative(store, key, path, retain_until, content_type):
    """Derivatives follow the original's fate: same retention end. Idempotent on a fixed key (a copy
    written by an attempt that died is taken over, its lock extended if the end moved since)."""
    try:
        return store.put_file(key, path, retain_until=retain_until, content_type=content_type)
    except ObjectExists:
        head = store.head(key)
        if head.retain_until is None or head.retain_until < retain_until:
            store.extend_retention(key, head.version_id, retain_until)
        sha, size = store.digest(key)
        return StoredObject(key, head.version_id, size, sha)


def recordings_requeue_stale(*, older_than: dt.timedelta = dt.timedelta(minutes=10), now=None) -> int:
    """Re-queue media work for recordings left stored/processing (broker was down, worker died)."""
    now = now or timezone.now()
    running_limit = dt.timedelta(seconds=settings.TEMOIN_TASK_TIME_LIMIT)
    stale = Recording.objects.filter(
        Q(status=Recording.Status.STORED, verified_at__lt=now - older_than)
        | Q(status=Recording.Status.PROCESSING, verified_at__lt=now - running_limit)
    ).values_list("pk", flat=True)[:1000]
    ids = list(stale)
    for pk in ids:
        recording_enqueue_media(recording_id=pk)
    return len(ids)

