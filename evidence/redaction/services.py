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
from evidence.dispatch import task_enqueue
from evidence.integrations import ffmpeg
from evidence.integrations.store import ObjectExists, StoreError, get_store
from evidence.models import Recording

from . import detection
from .models import Audio, CopyViewing, Derivative, Mode, RedactionJob, Track
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
    # Tasks call services, services queue by registered name (evidence/dispatch.py): no cycle.
    task_enqueue({"analyse": "redaction.analyse", "render": "redaction.render"}[step], args=[job_id], queue="media")


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
    """Run detection + tracking over a video file; returns tracks in the original's pixels.

    Every track covers its frames from ``every + lead - 1`` frames before its first detection to
    as many after its last: a face is on screen before the pass that finds it and after the one
    that loses it (issue 16: the Carphone face was left sharp after its track ended early).
    """
    info = ffmpeg.probe(src)
    rate, fps, count = ffmpeg.video_rate(src)
    every = max(1, int(params.get("every", detection.DEFAULT_PARAMS["every"])))
    lead = max(0, int(params.get("lead", detection.DEFAULT_PARAMS["lead"])))
    width = min(int(params.get("analysis_width", detection.DEFAULT_PARAMS["analysis_width"])), info.width)
    detector = detector or detection.make_detector(params)
    tracker = detection.Tracker(max_missed=int(params.get("max_missed", detection.DEFAULT_PARAMS["max_missed"])))
    expected = count or int((info.duration or 0) * fps) or 1
    last_report, last_frame, passes = 0.0, 0, 0
    reader = ffmpeg.raw_video_reader(src, width=width, every=every, pix_fmt="rgb24")
    scale = info.width / float(reader.width)
    plates_every = -(-max(every, int(params.get("plates_every", every))) // every) * every
    fine_every = int(params.get("fine_every", detection.DEFAULT_PARAMS["fine_every"]))
    fine_every = -(-max(every, fine_every) // every) * every if fine_every > 0 else 0
    fine_params = {key: params.get(f"fine_{key}", detection.DEFAULT_PARAMS[f"fine_{key}"])
                   for key in ("scale", "threshold", "max_face")}
    with reader:
        for index, data in reader:
            rgb = np.frombuffer(data, dtype=np.uint8).reshape(reader.height, reader.width, 3)
            plates = index % plates_every == 0
            fine = bool(fine_every) and index % fine_every == 0
            tracker.update(index, detector.detect(rgb, scale=scale, plates=plates, fine=fine_params if fine else None),
                           searched=("face", "plate") if plates else ("face",), fine=fine)
            last_frame, passes = index, passes + 1
            if progress and time.monotonic() - last_report > PROGRESS_INTERVAL:
                progress(min(99, 100 * index // expected))
                last_report = time.monotonic()
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
                          audio: str | None = None, audio_reason: str | None = None,
                          cover_from: Derivative | None = None,
                          now: dt.datetime | None = None) -> RedactionJob:
    """Save the reviewer's work.

    ``audio``: "removed" (the default of every job) or "kept", which needs ``audio_reason``
    (CSI R241-13 for training copies; for a data subject's copy, that the requester asked for it).
    ``cover_from``: the derivative whose second look gave the new ``tracks`` (logged).

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
                every = int(job.params.get("every", detection.DEFAULT_PARAMS["every"]))
                reach = max(0, min(50, int(item.get("reach") or 0)))
                track = Track.objects.create(
                    job=job, number=next_number, kind=Track.Kind.MANUAL, keyframes=keyframes,
                    first_frame=max(0, keyframes[0][0] - reach),
                    last_frame=min(last_frame, keyframes[-1][0] + max(every - 1, reach)), score=1.0)
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
        if audio is not None:
            if audio not in Audio.values:
                raise RedactionRefused("choix du son inconnu")
            reason = (audio_reason or "").strip()[:2000] if audio == Audio.KEPT else ""
            if audio == Audio.KEPT and len(reason) < 3:
                raise RedactionRefused(
                    "son conservé : indiquez pourquoi (besoin de la formation, demande de la personne concernée…)"
                    if job.mode == Mode.ALL else
                    "son conservé : indiquez que la personne concernée l'a demandé")
            if (audio, reason) != (job.audio, job.audio_reason):
                changes["audio"] = audio
                if reason:
                    changes["audio_reason"] = reason
                job.audio, job.audio_reason = audio, reason
        if cover_from is not None:
            changes["covered_from_second_look"] = cover_from.pk
        job.reviewed_by, job.reviewed_at = by, now
        if any(changes.values()) and job.status != RedactionJob.Status.REVIEW:
            # The copies already made no longer match the review: back to review, to be rendered
            # again (they stay as they are, write-once, with their approval if any).
            job.status = RedactionJob.Status.REVIEW
        job.save(update_fields=["mute_ranges", "audio", "audio_reason", "reviewed_by", "reviewed_at", "status"])
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
            # Voices identify people: no sound unless the review kept it with a stated reason.
            has_audio = job.audio == Audio.KEPT and bool(ffmpeg.probe(src).audio_codec)
            dst = Path(tmp) / "redacted.mp4"
            result = render_file(src, dst, boxes=boxes, width=job.width, height=job.height,
                                 rate=job.params.get("rate") or f"{job.fps}", mute_ranges=job.mute_ranges,
                                 has_audio=has_audio, progress=lambda p: _progress(job, p * 0.6),
                                 expected_frames=job.frame_count or 0)
            out_info = ffmpeg.probe(dst)
            check_started = time.monotonic()
            check = second_look(src, dst, tracks=tracks, params={**detection.DEFAULT_PARAMS, **job.params},
                                progress=lambda p: _progress(job, 60 + p * 0.4),
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


# --- Second look: the rendered copy checked before anyone may approve it -------------------------

def _exempt(box, sharp_boxes) -> bool:
    """A face found on the copy inside a box kept sharp on purpose (the requester, mode others)."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    return any(sx <= cx <= sx + sw and sy <= cy <= sy + sh for sx, sy, sw, sh in sharp_boxes)


def second_look(original: str | Path, copy: str | Path, *, tracks: list[Track], params: dict,
                progress: Callable[[int], None] | None = None, expected_frames: int = 0) -> dict:
    """Look at the rendered copy for any face left recognisable (issue 16).

    Two independent measures, frame by frame, original and copy decoded side by side:
    - the detail left in every box that was to be blurred (variance of the Laplacian in the copy
      over the same in the original): a box whose detail survived means the blur missed its face
      (a frame offset, a render fault);
    - CenterFace on the copy itself, on the frames the analysis did not look at (with a detection
      every other frame, analysis and second look together see every frame), at a higher
      threshold: a face it finds outside the boxes kept sharp on purpose is a face left.
    Returns {"passed", "faces_left": [{"frame", "box", "why", "score"}…], "frames", …}.
    """
    every = max(1, int(params.get("every", detection.DEFAULT_PARAMS["every"])))
    offset = every // 2
    threshold = float(params.get("check_threshold", detection.DEFAULT_PARAMS["check_threshold"]))
    ratio_max = float(params.get("check_detail_ratio", detection.DEFAULT_PARAMS["check_detail_ratio"]))
    info = ffmpeg.probe(original)
    width = min(int(params.get("analysis_width", detection.DEFAULT_PARAMS["analysis_width"])), info.width)
    detector = detection.CenterFaceDetector(threshold=threshold, plates=False)
    blurred = [t for t in tracks if t.blurred]
    sharp = [t for t in tracks if t.kept and t.is_subject]
    faces_left: list[dict] = []
    frames = detector_frames = boxes_measured = blurred_hits = 0
    last_report = 0.0
    orig_reader = ffmpeg.raw_video_reader(original, width=width, pix_fmt="rgb24")
    copy_reader = ffmpeg.raw_video_reader(copy, width=width, pix_fmt="rgb24")
    scale = info.width / float(orig_reader.width)
    shape = (orig_reader.height, orig_reader.width, 3)
    with orig_reader, copy_reader:
        for (index, a), (_, b) in zip(orig_reader, copy_reader):
            frames += 1
            orig = np.frombuffer(a, np.uint8).reshape(shape)
            out = np.frombuffer(b, np.uint8).reshape(shape)
            greys: list = []

            def detail_left(box) -> float | None:
                """Detail in the copy over detail in the original inside ``box`` (None: nothing to measure)."""
                if not greys:
                    greys.extend(detection.cv2.cvtColor(f, detection.cv2.COLOR_RGB2GRAY) for f in (orig, out))
                x, y, w, h = (int(round(v / scale)) for v in box)
                x, y = max(0, x), max(0, y)
                before = detection.detail(greys[0][y:y + h, x:x + w])
                if before < 20:  # a flat region (dark, out of focus): no detail to lose
                    return None
                return detection.detail(greys[1][y:y + h, x:x + w]) / before

            for t in blurred:
                box = detection.box_at(t.keyframes, index, first=t.first_frame, last=t.last_frame)
                if box is None:
                    continue
                boxes_measured += 1
                left = detail_left(box)
                if left is not None and left > ratio_max:
                    faces_left.append({"frame": index, "box": list(box), "why": "detail", "score": round(left, 3),
                                       "track": t.number})
            if index % every == offset:
                detector_frames += 1
                sharp_boxes = [b_ for b_ in (detection.box_at(t.keyframes, index, first=t.first_frame,
                                                              last=t.last_frame) for t in sharp) if b_]
                for box, score in detector.faces(np.ascontiguousarray(out)):
                    box = detection._rescale(box, scale)
                    if _exempt(box, sharp_boxes):
                        continue
                    # A blurred head still looks like a head to a detector; it is a face left only
                    # if its detail survived.
                    left = detail_left(box)
                    if left is not None and left <= ratio_max:
                        blurred_hits += 1
                        continue
                    faces_left.append({"frame": index, "box": list(box), "why": "detector",
                                       "score": round(score, 3)})
            if progress and time.monotonic() - last_report > PROGRESS_INTERVAL:
                progress(min(99, 100 * frames // max(1, expected_frames)))
                last_report = time.monotonic()
    frames_left = sorted({f["frame"] for f in faces_left})
    return {
        "passed": not faces_left, "frames": frames, "detector_frames": detector_frames,
        "boxes_measured": boxes_measured, "blurred_faces_seen": blurred_hits,
        "faces_left": faces_left[:2000], "frames_left": frames_left,
        "ranges": _ranges(frames_left), "detector": detector.name, "threshold": threshold,
        "detail_ratio_max": ratio_max, "width": width,
    }


def _ranges(frames: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for f in frames:
        if out and f <= out[-1][1] + 1:
            out[-1][1] = f
        else:
            out.append([f, f])
    return out


# --- Approval --------------------------------------------------------------------------------

# The approver must have played at least this share of the copy (seeking past parts does not count).
WATCHED_SHARE = 0.95


def _refuse_approval(derivative: Derivative, by: User, code: str, message: str, now: dt.datetime | None,
                     **details) -> None:
    """Log the refused approval (its own transaction: the refusal is kept), then refuse."""
    with transaction.atomic():
        custody_event_append(
            action="redaction.approval_refused", subject=derivative, recording=derivative.recording, actor=by,
            details={"job": derivative.job_id, "derivative": derivative.pk, "reason": code, "message": message,
                     **details},
            now=now)
    raise RedactionRefused(message)


def derivative_watched(*, derivative: Derivative, by: User, consultation, played_seconds: float,
                       now: dt.datetime | None = None) -> CopyViewing:
    """Record that ``by`` played the copy (``played_seconds`` of it) under ``consultation``."""
    _check_redactor(by)
    if consultation.recording_id != derivative.recording_id or consultation.user_id != by.pk:
        raise PermissionError("consultation of another recording or user")
    duration = float(derivative.job.duration or 0) or float(derivative.details.get("frames", 0)) / 25.0
    played = max(0.0, min(float(played_seconds), duration))
    now = now or timezone.now()
    with transaction.atomic():
        viewing = CopyViewing.objects.create(derivative=derivative, user=by, consultation=consultation,
                                             played_seconds=round(played, 3), duration=round(duration, 3), at=now)
        custody_event_append(
            action="redaction.copy_watched", subject=derivative, recording=derivative.recording, actor=by,
            motif=consultation.motif,
            details={"job": derivative.job_id, "derivative": derivative.pk, "consultation": consultation.pk,
                     "played_seconds": viewing.played_seconds, "duration": viewing.duration},
            now=now)
    return viewing


def derivative_watched_by(*, derivative: Derivative, user: User) -> bool:
    """Whether ``user`` played (nearly) all of the copy."""
    return any(v.coverage >= WATCHED_SHARE for v in CopyViewing.objects.filter(derivative=derivative, user=user))


def derivative_approve(*, derivative: Derivative, by: User, motif: str = "",
                       now: dt.datetime | None = None) -> Derivative:
    """A supervisor, legal staff or the DPO approves the redacted copy before it can leave.

    Refused, with a custody entry for the refusal (issue 15):
    - to the person who requested the copy: four eyes on what leaves;
    - while the second look found a face left on the copy (LEGAL.md rules 6 and 8);
    - to an approver who has not played the copy through.
    """
    _check_redactor(by)
    derivative = Derivative.objects.select_related("job", "recording").get(pk=derivative.pk)
    if derivative.approved_at is not None:
        raise RedactionRefused("cette copie est déjà approuvée")
    if derivative.recording.gone:
        raise RedactionRefused("l'enregistrement a été effacé")
    if by.pk == derivative.job.created_by_id:
        _refuse_approval(derivative, by, "requester",
                         "vous avez demandé cette copie : une autre personne habilitée doit l'approuver "
                         "(contrôle à quatre yeux)", now)
    if derivative.check_passed is not True:
        ranges = (derivative.second_look or {}).get("ranges") or []
        shown = ", ".join(f"{a}–{b}" if a != b else f"{a}" for a, b in ranges[:8]) + ("…" if len(ranges) > 8 else "")
        _refuse_approval(
            derivative, by, "faces_left",
            f"la vérification automatique a trouvé un visage encore reconnaissable sur {len(set(f['frame'] for f in derivative.faces_left))} "
            f"image(s) de la copie ({shown}) : couvrez-les puis produisez une nouvelle copie"
            if derivative.check_passed is False else "la vérification automatique de la copie n'a pas eu lieu",
            now, frames_left=ranges[:50])
    if not derivative_watched_by(derivative=derivative, user=by):
        _refuse_approval(derivative, by, "not_watched",
                         "visionnez la copie en entier avant de l'approuver", now)
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
                     "sha256": derivative.sha256, "original_sha256": derivative.original_sha256,
                     "second_look": "passed", "audio": derivative.details.get("audio", "")},
            now=now,
        )
    return derivative


# --- One click: cover what the second look found ----------------------------------------------

def redaction_cover_faces_left(*, derivative: Derivative, by: User, now: dt.datetime | None = None) -> RedactionJob:
    """Turn the faces the second look found on ``derivative`` into zones to blur (one track per face
    followed across frames), and send the job back to review for a new copy."""
    _check_redactor(by)
    faces = derivative.faces_left
    if not faces:
        raise RedactionRefused("la vérification n'a trouvé aucun visage à couvrir sur cette copie")
    job = derivative.job
    every = int(job.params.get("every", detection.DEFAULT_PARAMS["every"]))
    reach = every + int(job.params.get("lead", detection.DEFAULT_PARAMS["lead"]))
    tracker = detection.Tracker(max_missed=max(2, reach))
    by_frame: dict[int, list] = {}
    for f in faces:
        by_frame.setdefault(int(f["frame"]), []).append(detection.Detection("face", tuple(f["box"])))
    for frame in sorted(by_frame):
        tracker.update(frame, by_frame[frame])
    return redaction_review_save(
        job=job, by=by, now=now, cover_from=derivative,
        tracks=[{"number": None, "keyframes": t.keyframes, "reach": reach} for t in tracker.tracks()])


