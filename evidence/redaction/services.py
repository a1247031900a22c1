"""Redaction writes: request, analysis, review, render, approval. Each writes its custody event
in the same transaction (CSI R241-14: every modification and communication is logged).

The original recording is never modified: analysis and render read it; the render writes a new
write-once object, the derivative, with its own SHA-256 and the original's (CSI R241-11 V).
"""
from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import custody_event_append
from evidence.integrations import ffmpeg
from evidence.integrations.store import ObjectExists, StoreError, get_store
from evidence.models import Recording

from . import detection
from .models import Derivative, Mode, RedactionJob, Track
from .selectors import REDACTORS

# Progress is written at most this often (seconds), so that a long job does not hammer the database.
PROGRESS_INTERVAL = 1.0


class RedactionRefused(Exception):
    """The request cannot be carried out; the message says why, in French, for the page."""


def _check_redactor(user: User) -> None:
    # CSI R241-12: only the head of service / authorised agents, legal staff and the DPO.
    if getattr(user, "role", None) not in REDACTORS:
        raise PermissionError("seuls le responsable de service, le service juridique et le DPO peuvent flouter")


# --- Request ---------------------------------------------------------------------------------

def redaction_job_create(*, recording: Recording, by: User, mode: str, motif: str,
                         params: dict | None = None, now: dt.datetime | None = None) -> RedactionJob:
    """Ask for a redacted copy; the analysis is queued once the request is logged."""
    _check_redactor(by)
    if recording.organisation_id != by.organisation_id:
        raise PermissionError("recording of another organisation")
    if mode not in Mode.values:
        raise RedactionRefused("mode de floutage inconnu")
    motif = (motif or "").strip()
    if len(motif) < 3:
        raise RedactionRefused("indiquez le motif du floutage (procédure, demande d'accès, formation…)")
    if recording.status != Recording.Status.READY:
        raise RedactionRefused("l'enregistrement n'a pas de copie de lecture : il ne peut pas être flouté")
    now = now or timezone.now()
    merged = {**detection.DEFAULT_PARAMS, **(params or {})}
    with transaction.atomic():
        job = RedactionJob.objects.create(
            organisation_id=recording.organisation_id, recording=recording, mode=mode, motif=motif[:2000],
            created_by=by, created_at=now, params=merged,
        )
        custody_event_append(action="redaction.requested", subject=job, recording=recording, actor=by,
                             motif=job.motif, details={"job": job.pk, "mode": mode, "params": merged}, now=now)
        transaction.on_commit(lambda: _enqueue("analyse", job.pk))
    return job


def _enqueue(step: str, job_id: int) -> None:
    from . import tasks

    task = {"analyse": tasks.analyse_recording, "render": tasks.render_derivative}[step]
    task.apply_async(args=[job_id], queue="media")


def _progress(job: RedactionJob, value: int) -> None:
    RedactionJob.objects.filter(pk=job.pk).update(progress=max(0, min(100, int(value))))


def _fail(job: RedactionJob, step: str, exc: Exception, now: dt.datetime | None = None) -> RedactionJob:
    detail = getattr(exc, "detail", "")
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().get(pk=job.pk)
        job.status = RedactionJob.Status.FAILED
        job.status_message = f"{exc} {detail}".strip()[:2000]
        job.save(update_fields=["status", "status_message"])
        custody_event_append(action="redaction.failed", subject=job, recording=job.recording,
                             actor_label="system:redaction",
                             details={"job": job.pk, "step": step, "error": str(exc), "detail": detail[:2000]},
                             now=now)
    return job


# --- Analysis: detect every N frames on a downscaled frame, track in between -------------------

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
                                  progress=lambda p: _progress(job, p))
    except ffmpeg.MediaError as exc:  # a StoreError propagates: the task retries it
        return _fail(job, "analyse", exc, now)
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


def analyse_file(src: str | Path, *, params: dict, detector=None,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Run detection + tracking over a video file; returns tracks in the original's pixels."""
    info = ffmpeg.probe(src)
    rate, fps, count = ffmpeg.video_rate(src)
    every = max(1, int(params.get("every", 5)))
    width = min(int(params.get("analysis_width", 640)), info.width)
    detector = detector or detection.HaarDetector()
    tracker = detection.Tracker(max_missed=int(params.get("max_missed", 2)))
    expected = count or int((info.duration or 0) * fps) or 1
    last_report, last_frame, passes = 0.0, 0, 0
    reader = ffmpeg.raw_video_reader(src, width=width, every=every, pix_fmt="gray")
    scale = info.width / float(reader.width)
    with reader:
        for index, data in reader:
            grey = np.frombuffer(data, dtype=np.uint8).reshape(reader.height, reader.width)
            tracker.update(index, detector.detect(grey, scale=scale))
            last_frame, passes = index, passes + 1
            if progress and time.monotonic() - last_report > PROGRESS_INTERVAL:
                progress(min(99, 100 * index // expected))
                last_report = time.monotonic()
    frame_count = count or (last_frame + 1)
    tracks = []
    for t in tracker.tracks():
        frames = [k[0] for k in t.keyframes]
        tracks.append({
            "kind": t.kind, "keyframes": t.keyframes,
            # The face was probably there between this pass and the neighbouring ones: widen.
            "first": max(0, frames[0] - every + 1), "last": min(frame_count - 1, frames[-1] + every - 1),
            "score": float(np.mean(t.scores)) if t.scores else 0.0,
        })
    return {"tracks": tracks, "fps": fps, "rate": rate, "frame_count": frame_count,
            "width": info.width, "height": info.height, "detection_frames": passes}


# --- Review ----------------------------------------------------------------------------------

def _clean_box(box, width: int, height: int) -> list[int]:
    x, y, w, h = (int(round(float(v))) for v in box)
    x, y = max(0, min(x, width - 1)), max(0, min(y, height - 1))
    w, h = max(2, min(w, width - x)), max(2, min(h, height - y))
    return [x, y, w, h]


def _clean_mute_ranges(ranges, duration: float | None) -> list[list[float]]:
    cleaned = []
    for pair in ranges or []:
        try:
            a, b = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            raise RedactionRefused("plage de coupure du son illisible : donnez un début et une fin en secondes")
        if a < 0 or b <= a:
            raise RedactionRefused(f"plage de coupure du son {a:g}–{b:g} s : la fin doit suivre le début")
        if duration and a >= duration:
            raise RedactionRefused(f"plage de coupure du son {a:g}–{b:g} s : au-delà de la fin ({duration:.1f} s)")
        cleaned.append([round(a, 3), round(min(b, duration) if duration else b, 3)])
    cleaned.sort()
    merged: list[list[float]] = []
    for a, b in cleaned:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged


def redaction_review_save(*, job: RedactionJob, by: User, tracks: list[dict] | None = None,
                          decisions: dict[int, dict] | None = None, mute_ranges=None,
                          now: dt.datetime | None = None) -> RedactionJob:
    """Save the reviewer's work.

    ``decisions``: {track number: {"kept": bool, "is_subject": bool}}.
    ``tracks``: the editor's boxes, [{"number": n or None (new), "kind", "keyframes": [[f,x,y,w,h]…]}];
    a known track absent from the list keeps its boxes; a track whose keyframes are empty is removed.
    ``mute_ranges``: [[start, end], …] in seconds, or None to leave them unchanged.
    """
    _check_redactor(by)
    now = now or timezone.now()
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().select_related("recording").get(pk=job.pk)
        if job.status not in (RedactionJob.Status.REVIEW, RedactionJob.Status.RENDERED,
                              RedactionJob.Status.APPROVED):
            raise RedactionRefused("la détection n'est pas terminée : rien à relire pour l'instant")
        existing = {t.number: t for t in job.tracks.all()}
        changes: dict = {"boxes_edited": [], "added": [], "removed": [], "kept": [], "dropped": [],
                         "subject": [], "not_subject": []}
        last_frame = max(0, (job.frame_count or 1) - 1)
        next_number = max(existing, default=0) + 1
        for item in tracks or []:
            raw = item.get("keyframes") or []
            frames = {}
            for k in raw:
                if len(k) != 5:
                    raise RedactionRefused("zone de floutage illisible")
                f = max(0, min(int(k[0]), last_frame))
                frames[f] = [f, *_clean_box(k[1:], job.width or 1, job.height or 1)]
            keyframes = [frames[f] for f in sorted(frames)]
            number = item.get("number")
            track = existing.get(int(number)) if number not in (None, "") else None
            if track is None:
                if not keyframes:
                    continue
                every = int(job.params.get("every", 5))
                track = Track.objects.create(
                    job=job, number=next_number, kind=Track.Kind.MANUAL, keyframes=keyframes,
                    first_frame=keyframes[0][0], last_frame=min(last_frame, keyframes[-1][0] + every - 1),
                    score=1.0)
                existing[track.number] = track
                changes["added"].append(track.number)
                next_number += 1
                continue
            if not keyframes:
                track.delete()
                existing.pop(track.number)
                changes["removed"].append(track.number)
                continue
            if keyframes != track.keyframes:
                track.keyframes = keyframes
                track.first_frame = min(track.first_frame, keyframes[0][0])
                track.last_frame = max(track.last_frame, keyframes[-1][0])
                track.save(update_fields=["keyframes", "first_frame", "last_frame"])
                changes["boxes_edited"].append(track.number)
        for number, decision in (decisions or {}).items():
            track = existing.get(int(number))
            if track is None:
                continue
            kept = bool(decision.get("kept", track.kept))
            subject = bool(decision.get("is_subject", track.is_subject))
            if job.mode == Mode.ALL and subject:
                # LEGAL.md rule 6: a training copy blurs everyone.
                raise RedactionRefused("anonymisation complète : aucune personne ne peut rester nette")
            if kept != track.kept:
                changes["kept" if kept else "dropped"].append(track.number)
            if subject != track.is_subject:
                changes["subject" if subject else "not_subject"].append(track.number)
            if (kept, subject) != (track.kept, track.is_subject):
                track.kept, track.is_subject = kept, subject
                track.save(update_fields=["kept", "is_subject"])
        if mute_ranges is not None:
            cleaned = _clean_mute_ranges(mute_ranges, job.duration)
            if cleaned != job.mute_ranges:
                changes["mute_ranges"] = cleaned
                job.mute_ranges = cleaned
        job.reviewed_by, job.reviewed_at = by, now
        if any(changes.values()) and job.status != RedactionJob.Status.REVIEW:
            # The copies already made no longer match the review: back to review, to be rendered
            # again (they stay as they are, write-once, with their approval if any).
            job.status = RedactionJob.Status.REVIEW
        job.save(update_fields=["mute_ranges", "reviewed_by", "reviewed_at", "status"])
        custody_event_append(action="redaction.reviewed", subject=job, recording=job.recording, actor=by,
                             details={"job": job.pk, **{k: v for k, v in changes.items() if v}}, now=now)
    return job


# --- Render ----------------------------------------------------------------------------------

def redaction_render_request(*, job: RedactionJob, by: User, now: dt.datetime | None = None) -> RedactionJob:
    """Queue the render of the reviewed job (a new derivative; earlier ones stay as they are)."""
    _check_redactor(by)
    now = now or timezone.now()
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().select_related("recording").get(pk=job.pk)
        if job.status not in (RedactionJob.Status.REVIEW, RedactionJob.Status.RENDERED,
                              RedactionJob.Status.APPROVED):
            raise RedactionRefused("la copie ne peut être produite qu'après la détection")
        if job.recording.status != Recording.Status.READY:
            raise RedactionRefused("l'enregistrement n'est plus disponible")
        if job.mode == Mode.OTHERS and not job.tracks.filter(is_subject=True, kept=True).exists():
            # LEGAL.md rule 8: the copy is for one person; say who stays visible.
            raise RedactionRefused("demande d'accès : désignez la piste de la personne concernée, qui restera nette")
        job.status, job.progress, job.status_message = RedactionJob.Status.RENDERING, 0, ""
        job.params = {**job.params, "render_requested_by": by.pk}
        job.save(update_fields=["status", "progress", "status_message", "params"])
        custody_event_append(action="redaction.render_requested", subject=job, recording=job.recording,
                             actor=by, details={"job": job.pk}, now=now)
        transaction.on_commit(lambda: _enqueue("render", job.pk))
    return job


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
    reader = ffmpeg.raw_video_reader(src, pix_fmt="yuv420p")
    writer = ffmpeg.redacted_writer(dst, audio_src=src if has_audio else None, width=reader.width,
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
            has_audio = bool(ffmpeg.probe(src).audio_codec)
            dst = Path(tmp) / "redacted.mp4"
            result = render_file(src, dst, boxes=boxes, width=job.width, height=job.height,
                                 rate=job.params.get("rate") or f"{job.fps}", mute_ranges=job.mute_ranges,
                                 has_audio=has_audio, progress=lambda p: _progress(job, p),
                                 expected_frames=job.frame_count or 0)
            out_info = ffmpeg.probe(dst)
            try:
                obj = store.put_file(key, dst, retain_until=recording.retain_until, content_type="video/mp4")
            except ObjectExists as exc:  # a fresh uuid per render: cannot happen unless reused
                raise StoreError(str(exc)) from exc
        back_sha, back_size = store.digest(obj.key, obj.version_id)
        if back_sha != obj.sha256 or back_size != obj.size:
            raise StoreError("the redacted copy read back from the store differs from what was written")
    except (ffmpeg.MediaError, StoreError) as exc:
        _fail(job, "render", exc, now)
        return None
    now = now or timezone.now()
    by_id = job.params.get("render_requested_by") or job.created_by_id
    details = {
        "tracks_blurred": [t.number for t in tracks if t.blurred],
        "tracks_kept_sharp": [t.number for t in tracks if t.kept and t.is_subject],
        "tracks_dropped": [t.number for t in tracks if not t.kept],
        "mute_ranges": job.mute_ranges, "frames": result["frames"], "blurred_frames": result["blurred_frames"],
        "video_codec": out_info.video_codec, "audio_codec": out_info.audio_codec,
        "seconds": round(time.monotonic() - started, 2),
        "commands": [[a for a in cmd if not a.startswith("/")] for cmd in (result["decode"], result["encode"])],
    }
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().get(pk=job.pk)
        derivative = Derivative.objects.create(
            uuid=derivative_uuid, organisation_id=job.organisation_id, recording=recording, job=job,
            mode=job.mode, store_key=obj.key, store_version_id=obj.version_id, sha256=obj.sha256,
            size=obj.size, original_sha256=recording.sha256, details=details, created_by_id=by_id,
            created_at=now,
        )
        job.status, job.progress = RedactionJob.Status.RENDERED, 100
        job.save(update_fields=["status", "progress"])
        custody_event_append(
            action="redaction.rendered", subject=derivative, recording=recording, actor_label="system:redaction",
            details={"job": job.pk, "derivative": derivative.pk, "mode": job.mode, "key": obj.key,
                     "sha256": obj.sha256, "size": obj.size, "original_sha256": recording.sha256, **details},
            now=now,
        )
    return derivative


# --- Approval --------------------------------------------------------------------------------

def derivative_approve(*, derivative: Derivative, by: User, motif: str = "",
                       now: dt.datetime | None = None) -> Derivative:
    """A supervisor, legal staff or the DPO approves the redacted copy before it can leave."""
    _check_redactor(by)
    now = now or timezone.now()
    with transaction.atomic():
        derivative = Derivative.objects.select_for_update().select_related("job", "recording").get(pk=derivative.pk)
        if derivative.approved_at is not None:
            raise RedactionRefused("cette copie est déjà approuvée")
        if derivative.recording.gone:
            raise RedactionRefused("l'enregistrement a été effacé")
        derivative.approved_by, derivative.approved_at = by, now
        derivative.approval_motif = (motif or "").strip()[:2000]
        derivative.save(update_fields=["approved_by", "approved_at", "approval_motif"])
        job = derivative.job
        job.status = RedactionJob.Status.APPROVED
        job.save(update_fields=["status"])
        custody_event_append(
            action="redaction.approved", subject=derivative, recording=derivative.recording, actor=by,
            motif=derivative.approval_motif,
            details={"job": job.pk, "derivative": derivative.pk, "mode": derivative.mode,
                     "sha256": derivative.sha256, "original_sha256": derivative.original_sha256},
            now=now,
        )
    return derivative
