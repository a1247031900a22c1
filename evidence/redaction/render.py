"""Redaction render: the reviewed zones blurred and the sound removed or muted, the copy stored
write-once as a new object with its own SHA-256 and the original's (CSI R241-11 V: the original is
never modified), checked by the second look, and logged in the same transaction (CSI R241-14).
"""
from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

from django.db import transaction
from django.utils import timezone

from audit.services import custody_event_append
from evidence.integrations import ffmpeg, rawvideo
from evidence.integrations.store import ObjectExists, StoreError, get_store

from . import detection
from .jobs import PROGRESS_INTERVAL, job_fail, job_progress
from .models import Audio, Derivative, RedactionJob, Track
from .second_look import second_look


def frame_boxes(tracks: list[Track]) -> dict[int, list[tuple]]:
    """Every frame's boxes to blur: {frame: [(x, y, w, h), …]} for the tracks to blur."""
    boxes: dict[int, list[tuple]] = {}
    for t in tracks:
        if not t.blurred:
            continue
        for f in range(t.first_frame, t.last_frame + 1):
            box = detection.box_at(t.keyframes, f, first=t.first_frame, last=t.last_frame)
            if box is not None:
                boxes.setdefault(f, []).append(box)
    return boxes


def render_file(src: str | Path, dst: str | Path, *, boxes: dict[int, list[tuple]], width: int, height: int,
                rate: str, mute_ranges, has_audio: bool, progress: Callable[[int], None] | None = None,
                expected_frames: int = 0) -> dict:
    """Decode ``src`` to raw YUV frames, blur the boxes of each frame, encode an H.264/AAC MP4."""
    reader = rawvideo.raw_video_reader(src, pix_fmt="yuv420p")
    writer = rawvideo.redacted_writer(dst, audio_src=src if has_audio else None, width=reader.width,
                                    height=reader.height, rate=rate, mute_ranges=mute_ranges)
    blurred_frames, last_report, n = 0, 0.0, 0
    try:
        with reader:
            for index, data in reader:
                frame_boxes_ = boxes.get(index)
                if frame_boxes_:
                    frame = bytearray(data)
                    for box in frame_boxes_:
                        detection.blur_region_yuv420(frame, reader.width, reader.height, box)
                    data = frame
                    blurred_frames += 1
                writer.write(data)
                n += 1
                if progress and time.monotonic() - last_report > PROGRESS_INTERVAL:
                    progress(min(99, 100 * n // max(1, expected_frames)))
                    last_report = time.monotonic()
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return {"frames": n, "blurred_frames": blurred_frames, "decode": reader.args, "encode": writer.args}


def redaction_render(*, job: RedactionJob, now: dt.datetime | None = None) -> Derivative | None:
    """Render the redacted copy, store it write-once, record the derivative. Idempotent per job state."""
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().select_related("recording").get(pk=job.pk)
        if job.status != RedactionJob.Status.RENDERING:
            return None
    recording = job.recording
    tracks = list(job.tracks.all())
    boxes = frame_boxes(tracks)
    store = get_store()
    derivative_uuid = uuid.uuid4()
    # Beside the playback copy's prefix: redactions/<org>/<camera>/<recording uuid>/<derivative>.mp4
    base = recording.store_key.split("/", 1)[1].rsplit(".", 1)[0]
    key = f"redactions/{base}/{derivative_uuid}.mp4"
    started = time.monotonic()
    try:
        with store.local_path(recording.store_key, recording.store_version_id) as src, \
                tempfile.TemporaryDirectory(prefix="temoin-redaction-") as tmp:
            # Voices identify people: no sound unless the review kept it with a stated reason.
            has_audio = job.audio == Audio.KEPT and bool(ffmpeg.probe(src).audio_codec)
            dst = Path(tmp) / "redacted.mp4"
            result = render_file(src, dst, boxes=boxes, width=job.width, height=job.height,
                                 rate=job.params.get("rate") or f"{job.fps}", mute_ranges=job.mute_ranges,
                                 has_audio=has_audio, progress=lambda p: job_progress(job, p * 0.6),
                                 expected_frames=job.frame_count or 0)
            out_info = ffmpeg.probe(dst)
            check_started = time.monotonic()
            check = second_look(src, dst, tracks=tracks, params={**detection.DEFAULT_PARAMS, **job.params},
                                progress=lambda p: job_progress(job, 60 + p * 0.4),
                                expected_frames=job.frame_count or 0)
            check["seconds"] = round(time.monotonic() - check_started, 2)
            try:
                obj = store.put_file(key, dst, retain_until=recording.retain_until, content_type="video/mp4")
            except ObjectExists as exc:  # a fresh uuid per render: cannot happen unless reused
                raise StoreError(str(exc)) from exc
            from evidence.retention.holds import recording_is_held

            if recording_is_held(recording):  # CSI R241-13: a copy is held with its original
                store.set_legal_hold(obj.key, obj.version_id, True)
        back_sha, back_size = store.digest(obj.key, obj.version_id)
        if back_sha != obj.sha256 or back_size != obj.size:
            raise StoreError("the redacted copy read back from the store differs from what was written")
    except (ffmpeg.MediaError, StoreError) as exc:
        job_fail(job, "render", exc, now)
        return None
    now = now or timezone.now()
    by_id = job.params.get("render_requested_by") or job.created_by_id
    details = {
        "tracks_blurred": [t.number for t in tracks if t.blurred],
        "tracks_kept_sharp": [t.number for t in tracks if t.kept and t.is_subject],
        "tracks_dropped": [t.number for t in tracks if not t.kept],
        "mute_ranges": job.mute_ranges, "frames": result["frames"], "blurred_frames": result["blurred_frames"],
        "video_codec": out_info.video_codec, "audio_codec": out_info.audio_codec,
        "audio": job.audio if has_audio else Audio.REMOVED, "audio_reason": job.audio_reason if has_audio else "",
        "seconds": round(time.monotonic() - started, 2),
        "commands": [[a for a in cmd if not a.startswith("/")] for cmd in (result["decode"], result["encode"])],
    }
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().get(pk=job.pk)
        derivative = Derivative.objects.create(
            uuid=derivative_uuid, organisation_id=job.organisation_id, recording=recording, job=job,
            mode=job.mode, store_key=obj.key, store_version_id=obj.version_id, sha256=obj.sha256,
            size=obj.size, original_sha256=recording.sha256, details=details, created_by_id=by_id,
            created_at=now, check_passed=check["passed"], second_look=check,
        )
        job.status, job.progress = RedactionJob.Status.RENDERED, 100
        job.save(update_fields=["status", "progress"])
        custody_event_append(
            action="redaction.rendered", subject=derivative, recording=recording, actor_label="system:redaction",
            details={"job": job.pk, "derivative": derivative.pk, "mode": job.mode, "key": obj.key,
                     "sha256": obj.sha256, "size": obj.size, "original_sha256": recording.sha256, **details},
            now=now,
        )
        custody_event_append(
            action="redaction.checked", subject=derivative, recording=recording, actor_label="system:redaction",
            details={"job": job.pk, "derivative": derivative.pk, "passed": check["passed"],
                     "faces_left": len(check["faces_left"]), "frames_left": check["ranges"],
                     "frames": check["frames"], "detector_frames": check["detector_frames"],
                     "boxes_measured": check["boxes_measured"], "seconds": check["seconds"]},
            now=now,
        )
    return derivative
