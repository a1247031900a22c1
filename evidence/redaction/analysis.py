"""Redaction analysis: detect faces and plates every N frames on a downscaled frame, track them in
between, and hand the job over for review, logged (CSI R241-14). The original is only read (CSI
R241-11 V: it is never modified).
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from django.db import transaction
from django.utils import timezone

from audit.services import custody_event_append
from evidence.integrations import ffmpeg, rawvideo
from evidence.integrations.store import get_store

from . import detection
from .jobs import PROGRESS_INTERVAL, job_fail, job_progress
from .models import RedactionJob, Track


def redaction_analyse(*, job: RedactionJob, now: dt.datetime | None = None,
                      detector=None) -> RedactionJob:
    """Detect faces and plates, build tracks, and hand the job over for review. Idempotent."""
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().select_related("recording").get(pk=job.pk)
        if job.status not in (RedactionJob.Status.QUEUED, RedactionJob.Status.ANALYSING):
            return job
        job.status, job.progress = RedactionJob.Status.ANALYSING, 0
        job.save(update_fields=["status", "progress"])
    recording = job.recording
    params = {**detection.DEFAULT_PARAMS, **job.params}
    started = time.monotonic()
    try:
        with get_store().local_path(recording.store_key, recording.store_version_id) as src:
            result = analyse_file(src, params=params, detector=detector,
                                  progress=lambda p: job_progress(job, p))
    except ffmpeg.MediaError as exc:  # a StoreError propagates: the task retries it
        return job_fail(job, "analyse", exc, now)
    elapsed = time.monotonic() - started
    now = now or timezone.now()
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().get(pk=job.pk)
        job.tracks.all().delete()  # a retried analysis starts over
        Track.objects.bulk_create([
            Track(job=job, number=i, kind=t["kind"], keyframes=t["keyframes"], first_frame=t["first"],
                  last_frame=t["last"], score=t["score"])
            for i, t in enumerate(result["tracks"], start=1)
        ])
        job.fps, job.frame_count = result["fps"], result["frame_count"]
        job.width, job.height = result["width"], result["height"]
        job.params = {**params, "rate": result["rate"]}
        job.status, job.progress, job.analysed_at = RedactionJob.Status.REVIEW, 100, now
        job.save()
        kinds: dict = {}
        for t in result["tracks"]:
            kinds[t["kind"]] = kinds.get(t["kind"], 0) + 1
        custody_event_append(
            action="redaction.analysed", subject=job, recording=recording, actor_label="system:redaction",
            details={"job": job.pk, "tracks": kinds, "frames": result["frame_count"],
                     "detection_frames": result["detection_frames"], "detector": params["detector"],
                     "every": params["every"], "seconds": round(elapsed, 2)},
            now=now,
        )
    return job


QUEUED_PER_WORKER = 6


def detection_workers(params: dict) -> int:
    """Frames detected at once: one per core by default (TEMOIN_DETECTOR_WORKERS), each with one
    onnxruntime thread — on two cores, two frames at once are faster than one frame on two threads
    (docs/redaction.md)."""
    value = params.get("workers") or os.environ.get("TEMOIN_DETECTOR_WORKERS") or min(2, os.cpu_count() or 1)
    return max(1, int(value))


def analyse_file(src: str | Path, *, params: dict, detector=None,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Run detection + tracking over a video file; returns tracks in the original's pixels.

    Every track covers its frames from ``every + lead - 1`` frames before its first detection to
    as many after its last: a face is on screen before the pass that finds it and after the one
    that loses it (issue 16: the Carphone face was left sharp after its track ended early).
    """
    info = ffmpeg.probe(src)
    rate, fps, count = rawvideo.video_rate(src)
    every = max(1, int(params.get("every", detection.DEFAULT_PARAMS["every"])))
    lead = max(0, int(params.get("lead", detection.DEFAULT_PARAMS["lead"])))
    width = min(int(params.get("analysis_width", detection.DEFAULT_PARAMS["analysis_width"])), info.width)
    tracker = detection.Tracker(max_missed=int(params.get("max_missed", detection.DEFAULT_PARAMS["max_missed"])),
                                frame_size=(info.width, info.height))
    expected = count or int((info.duration or 0) * fps) or 1
    last_report, last_frame, passes, fine_passes = 0.0, 0, 0, 0
    # From 2× down (720p and up at 512 px), the decoder skips its loop filter: the downscale averages
    # the block edges away (rawvideo). Nearer the clip's size they stay, and moved the small-face
    # pass on bikes at 640 px (one face-frame lost): there the frames are decoded whole.
    reader = rawvideo.raw_video_reader(src, width=width, every=every, pix_fmt="rgb24",
                                       deblock=info.width < 2 * width)
    scale = info.width / float(reader.width)
    plates_every = -(-max(every, int(params.get("plates_every", every))) // every) * every
    fine_every = int(params.get("fine_every", detection.DEFAULT_PARAMS["fine_every"]))
    fine_every = -(-max(every, fine_every) // every) * every if fine_every > 0 else 0
    fine_params = {key: params.get(f"fine_{key}", detection.DEFAULT_PARAMS[f"fine_{key}"])
                   for key in ("scale", "threshold", "max_face")}
    workers = detection_workers(params) if detector is None else 1  # a given detector may not be thread-safe
    local = threading.local()

    # One detector per thread (the Haar baseline's cascades are not thread-safe); the ORT sessions are shared.
    def detect(rgb, plates, fine):
        if not hasattr(local, "detector"):
            local.detector = detector or detection.make_detector(params)
        return local.detector.detect(rgb, scale=scale, plates=plates, fine=fine_params if fine else None)

    # The small-face pass costs four main passes more: it runs on one frame in ``fine_every``, and on every
    # pass while a small face is being tracked or just after a cut (a new shot may hold a small face
    # that the next periodic pass would find too late for a short shot). Decisions use the tracker
    # as settled so far (a few frames behind: the passes in flight).
    small_limit = float(fine_params["max_face"]) * scale
    cut_level = float(params.get("fine_cut", detection.DEFAULT_PARAMS["fine_cut"]))
    last_fine, dense_until, thumb = -fine_every, -1, None

    def small_face_tracked() -> bool:
        return any(t.kind == "face" and max(t.last_box[2:]) <= small_limit for t in tracker.active)

    # Detection runs on ``workers`` frames at once (onnxruntime releases the GIL: one frame per core),
    # the tracker takes the results in frame order. A small-face pass takes five normal passes' time:
    # with only 2 × workers frames in flight the other worker ran dry behind it, so up to
    # ``QUEUED_PER_WORKER`` × workers frames (400 KB each at 512x288) are in flight. The frames
    # submitted before the tracker knew of a small face get their small-face pass when they are
    # settled (``late_fine``): the pass runs on every frame after the one that found it, however
    # deep the queue (bikes at 720p lost frames 117–120 to a queue of 12 without it).
    pending: deque = deque()
    late_fine = 0

    def settle() -> None:
        nonlocal late_fine
        index, plates, fine, rgb, future = pending.popleft()
        found = future.result()
        if not fine and fine_every and small_face_tracked():
            faces = pool.submit(detect, rgb, False, True).result()
            found = faces + [d for d in found if d.kind != "face"]
            fine, late_fine = True, late_fine + 1
        tracker.update(index, found, searched=("face", "plate") if plates else ("face",), fine=fine)

    with reader, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redaction-detect") as pool:
        for index, data in reader:
            rgb = np.frombuffer(data, dtype=np.uint8).reshape(reader.height, reader.width, 3)
            plates = index % plates_every == 0
            if fine_every and cut_level:
                now_thumb = detection.thumbnail(rgb)
                if thumb is not None and detection.thumbnail_change(thumb, now_thumb) > cut_level:
                    dense_until = index + fine_every  # a new shot: the passes in flight do not know it yet
                thumb = now_thumb
            fine = bool(fine_every) and (index - last_fine >= fine_every or index <= dense_until
                                         or small_face_tracked())
            last_fine = index if fine else last_fine
            pending.append((index, plates, fine, rgb, pool.submit(detect, rgb, plates, fine)))
            if len(pending) >= QUEUED_PER_WORKER * workers:
                settle()
            last_frame, passes = index, passes + 1
            fine_passes += fine
            if progress and time.monotonic() - last_report > PROGRESS_INTERVAL:
                progress(min(99, 100 * index // expected))
                last_report = time.monotonic()
        while pending:
            settle()
    frame_count = count or (last_frame + every)
    tracks = []
    for t in tracker.tracks():
        step = plates_every if t.kind == "plate" else fine_every if t.fine_only else every
        reach = step - 1 + lead
        frames = [k[0] for k in t.keyframes]
        tracks.append({
            "kind": t.kind, "keyframes": t.keyframes,
            "first": max(0, frames[0] - reach), "last": min(frame_count - 1, frames[-1] + reach),
            "score": float(np.mean(t.scores)) if t.scores else 0.0,
        })
    return {"tracks": tracks, "fps": fps, "rate": rate, "frame_count": frame_count,
            "width": info.width, "height": info.height, "detection_frames": passes,
            "small_face_passes": fine_passes + late_fine}
