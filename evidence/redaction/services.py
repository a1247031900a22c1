"""Redaction writes by people: request, review, render request, approval, covering the faces the
second look found. Only the roles of CSI R241-12 may redact; each write logs its custody event in
the same transaction (CSI R241-14: every modification and communication is logged). The machine
steps are analysis.py, render.py and second_look.py.

The original recording is never modified: analysis and render read it; the render writes a new
write-once object, the derivative, with its own SHA-256 and the original's (CSI R241-11 V).
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import custody_event_append
from evidence.dispatch import task_enqueue
from evidence.models import Recording

from . import detection
from .models import Audio, CopyViewing, Derivative, Mode, RedactionJob, Track
from .selectors import REDACTORS


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


# --- Review ----------------------------------------------------------------------------------

def _clean_box(box, width: int, height: int) -> list[int]:
    """A box at most the frame's size, with at least 2 pixels inside the frame: a face leaving the
    frame keeps its size beyond the edge (detection._unclipped), and a review saved from the
    editor must not shrink it back."""
    x, y, w, h = (int(round(float(v))) for v in box)
    w, h = max(2, min(w, width)), max(2, min(h, height))
    x, y = max(2 - w, min(x, width - 2)), max(2 - h, min(y, height - 2))
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


# --- Render request (the render itself: render.py) -------------------------------------------

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
    tracker = detection.Tracker(max_missed=max(2, reach), frame_size=(job.width, job.height) if job.width else None)
    by_frame: dict[int, list] = {}
    for f in faces:
        by_frame.setdefault(int(f["frame"]), []).append(detection.Detection("face", tuple(f["box"])))
    for frame in sorted(by_frame):
        tracker.update(frame, by_frame[frame])
    return redaction_review_save(
        job=job, by=by, now=now, cover_from=derivative,
        tracks=[{"number": None, "keyframes": t.keyframes, "reach": reach} for t in tracker.tracks()])
