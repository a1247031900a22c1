"""Redaction pages: request, progress, review editor, render, approval. Thin: services and
selectors do the work. Every page 404s for a recording the user may not redact (CSI R241-12).

Media (editor frames, the redacted copy) is served only under a live consultation, logged with
its motif first (CSI R241-14), exactly as playback is: the token lives in the user's session.
"""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from evidence.access.services import CONSULTATION_MOTIFS, consultation_for_token, consultation_open
from evidence.integrations import ffmpeg
from evidence.integrations.store import StoreError, get_store

from . import services
from .models import Audio, Mode, RedactionJob
from .selectors import derivatives_visible_to, redaction_jobs_visible_to, redaction_recordings_for

SESSION_KEY = "redaction-consultation-{}"
RUNNING = (RedactionJob.Status.QUEUED, RedactionJob.Status.ANALYSING, RedactionJob.Status.RENDERING)


def _job(request, pk: int) -> RedactionJob:
    return get_object_or_404(redaction_jobs_visible_to(user=request.user), pk=pk)


def _live_consultation(request, recording):
    token = request.session.get(SESSION_KEY.format(recording.pk))
    if not token:
        return None, None
    consultation = consultation_for_token(token=token, user=request.user)
    if consultation is None or consultation.recording_id != recording.pk:
        return None, None
    return consultation, token


@login_required
def job_list(request):
    jobs = redaction_jobs_visible_to(user=request.user)
    if request.user.role not in {"supervisor", "legal", "dpo"}:
        raise Http404()
    return render(request, "redaction/job_list.html", {"jobs": jobs[:200]})


@login_required
def job_create(request, pk: int):
    recording = get_object_or_404(redaction_recordings_for(user=request.user), pk=pk)
    context = {"r": recording, "modes": Mode.choices, "mode": request.POST.get("mode", Mode.ALL),
               "motif": request.POST.get("motif", "")}
    if request.method == "POST":
        try:
            job = services.redaction_job_create(recording=recording, by=request.user,
                                                mode=request.POST.get("mode", ""), motif=request.POST.get("motif", ""))
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.RedactionRefused as exc:
            context["error"] = str(exc)
            return render(request, "redaction/job_create.html", context, status=400)
        messages.success(request, _("Demande de floutage enregistrée : la détection des visages et des plaques commence."))
        return redirect("redaction-job", pk=job.pk)
    return render(request, "redaction/job_create.html", context)


@login_required
def job_detail(request, pk: int):
    job = _job(request, pk)
    consultation, token = _live_consultation(request, job.recording)
    derivatives = list(derivatives_visible_to(user=request.user).filter(job=job))
    for d in derivatives:
        d.preview_url = reverse("redaction-derivative-media", args=[token, d.pk]) if token else ""
        d.watched = services.derivative_watched_by(derivative=d, user=request.user)
        d.requested_by_me = job.created_by_id == request.user.pk
        d.left_ranges = [{"first": a, "last": b} for a, b in (d.second_look or {}).get("ranges", [])]
    tracks = list(job.tracks.all())
    return render(request, "redaction/job_detail.html", {
        "job": job, "r": job.recording, "tracks": tracks, "derivatives": derivatives,
        "running": job.status in RUNNING, "consultation": consultation,
        "motifs": CONSULTATION_MOTIFS,
        "counts": {"blurred": sum(t.blurred for t in tracks), "sharp": sum(t.kept and t.is_subject for t in tracks),
                   "dropped": sum(not t.kept for t in tracks)},
        "can_review": job.status in (RedactionJob.Status.REVIEW, RedactionJob.Status.RENDERED,
                                     RedactionJob.Status.APPROVED),
    })


@login_required
@require_POST
def consultation_start(request, pk: int):
    """Motif before media (CSI R241-14): log the consultation, keep its token in the session."""
    job = _job(request, pk)
    choice = request.POST.get("motif_choice", "").strip()
    detail = request.POST.get("motif_detail", "").strip()
    motif = " — ".join(p for p in (choice, detail) if p)
    try:
        _, token = consultation_open(recording=job.recording, by=request.user, motif=motif)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValueError as exc:
        messages.error(request, _("Indiquez le motif de la consultation.") if str(exc).startswith("motif") else str(exc))
        return redirect("redaction-job", pk=job.pk)
    request.session[SESSION_KEY.format(job.recording_id)] = token
    nxt = request.POST.get("next", "")
    return redirect("redaction-editor" if nxt == "editor" else "redaction-job", pk=job.pk)


@login_required
def editor(request, pk: int):
    job = _job(request, pk)
    if job.status not in (RedactionJob.Status.REVIEW, RedactionJob.Status.RENDERED, RedactionJob.Status.APPROVED):
        messages.error(request, _("La détection n'est pas terminée : la relecture n'est pas encore possible."))
        return redirect("redaction-job", pk=job.pk)
    consultation, token = _live_consultation(request, job.recording)
    tracks = list(job.tracks.all())
    context = {"job": job, "r": job.recording, "tracks": tracks, "consultation": consultation,
               "motifs": CONSULTATION_MOTIFS, "audio_choices": Audio.choices,
               "mute_rows": job.mute_ranges + [["", ""]] * 3}
    if consultation is not None:
        frame_url = reverse("redaction-frame", args=[token, job.pk, 0])
        try:
            start = max(0, min(int(request.GET.get("image", 0)), (job.frame_count or 1) - 1))
        except ValueError:
            start = 0
        context["editor_data"] = {
            "fps": job.fps, "frameCount": job.frame_count, "width": job.width, "height": job.height,
            "every": int(job.params.get("every", 5)), "mode": job.mode, "start": start,
            "frameUrl": frame_url[: -len("0.jpg")],
            "tracks": [{"number": t.number, "kind": t.kind, "label": t.get_kind_display(), "keyframes": t.keyframes,
                        "first": t.first_frame, "last": t.last_frame, "kept": t.kept, "subject": t.is_subject}
                       for t in tracks],
        }
    return render(request, "redaction/editor.html", context)


def _decisions(post, tracks) -> dict:
    out = {}
    for t in tracks:
        if f"seen_{t.number}" not in post:
            continue  # the track was not on the form (added since): leave it as it is
        out[t.number] = {"kept": f"kept_{t.number}" in post, "is_subject": f"subject_{t.number}" in post}
    return out


def _mute_ranges(post) -> list:
    ranges = []
    for a, b in zip(post.getlist("mute_start"), post.getlist("mute_end")):
        a, b = a.strip().replace(",", "."), b.strip().replace(",", ".")
        if a or b:
            ranges.append([a or "x", b or "x"])
    return ranges


@login_required
@require_POST
def review_save(request, pk: int):
    """Plain form: keep/drop and subject checkboxes, mute ranges; the editor's boxes as JSON."""
    job = _job(request, pk)
    raw = request.POST.get("boxes", "").strip()
    try:
        edits = json.loads(raw) if raw else None
        if edits is not None and not isinstance(edits, list):
            raise ValueError
    except ValueError:
        messages.error(request, _("Les zones dessinées n'ont pas pu être lues ; rien n'a été modifié."))
        return redirect("redaction-editor", pk=job.pk)
    try:
        services.redaction_review_save(job=job, by=request.user, tracks=edits,
                                       decisions=_decisions(request.POST, job.tracks.all()),
                                       mute_ranges=_mute_ranges(request.POST),
                                       audio=request.POST.get("audio") or None,
                                       audio_reason=request.POST.get("audio_reason", ""))
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.RedactionRefused as exc:
        messages.error(request, _("Relecture non enregistrée : %(reason)s.") % {"reason": exc})
        return redirect("redaction-editor", pk=job.pk)
    messages.success(request, _("Relecture enregistrée."))
    if request.POST.get("then") == "render":
        return render_request(request, pk)
    return redirect("redaction-editor", pk=job.pk)


@login_required
@require_POST
def render_request(request, pk: int):
    job = _job(request, pk)
    try:
        services.redaction_render_request(job=job, by=request.user)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.RedactionRefused as exc:
        messages.error(request, _("Copie non produite : %(reason)s.") % {"reason": exc})
        return redirect("redaction-editor", pk=job.pk)
    messages.success(request, _("Production de la copie floutée lancée."))
    return redirect("redaction-job", pk=job.pk)


@login_required
@require_POST
def derivative_approve(request, pk: int):
    derivative = get_object_or_404(derivatives_visible_to(user=request.user), pk=pk)
    try:
        services.derivative_approve(derivative=derivative, by=request.user, motif=request.POST.get("motif", ""))
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.RedactionRefused as exc:
        messages.error(request, _("Approbation refusée : %(reason)s.") % {"reason": exc})
    else:
        messages.success(request, _("Copie floutée approuvée : elle peut être communiquée."))
    return redirect("redaction-job", pk=derivative.job_id)


@login_required
@require_POST
def derivative_cover(request, pk: int):
    """One click: the faces the second look found on this copy become zones to blur."""
    derivative = get_object_or_404(derivatives_visible_to(user=request.user), pk=pk)
    try:
        services.redaction_cover_faces_left(derivative=derivative, by=request.user)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.RedactionRefused as exc:
        messages.error(request, _("Rien n'a été ajouté : %(reason)s.") % {"reason": exc})
        return redirect("redaction-job", pk=derivative.job_id)
    messages.success(request, _("Les visages trouvés par la vérification sont ajoutés aux zones floutées : "
                                "relisez-les, puis produisez une nouvelle copie."))
    first = derivative.faces_left[0]["frame"] if derivative.faces_left else 0
    return redirect(reverse("redaction-editor", args=[derivative.job_id]) + f"?image={first}")


@login_required
@require_POST
def derivative_watched(request, pk: int):
    """The job page's player reports that the copy was played through (seconds actually played)."""
    derivative = get_object_or_404(derivatives_visible_to(user=request.user), pk=pk)
    consultation, _token = _live_consultation(request, derivative.recording)
    if consultation is None:
        raise Http404("aucune consultation en cours")
    try:
        played = float(request.POST.get("played", ""))
    except ValueError:
        return HttpResponse(status=400)
    try:
        viewing = services.derivative_watched(derivative=derivative, by=request.user, consultation=consultation,
                                              played_seconds=played)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    return HttpResponse(json.dumps({"coverage": round(viewing.coverage, 3)}), content_type="application/json")


# --- Media under a consultation --------------------------------------------------------------

def _consulted_job(request, token: str, pk: int) -> RedactionJob:
    if not request.user.is_authenticated:
        raise Http404()
    job = get_object_or_404(redaction_jobs_visible_to(user=request.user), pk=pk)
    consultation = consultation_for_token(token=token, user=request.user)
    if consultation is None or consultation.recording_id != job.recording_id:
        raise Http404("lien de consultation inconnu ou expiré")
    return job


def frame_image(request, token: str, pk: int, frame: int):
    """One frame of the playback copy as JPEG, for the editor's canvas."""
    job = _consulted_job(request, token, pk)
    if frame >= (job.frame_count or 0):
        raise Http404("image hors de l'enregistrement")
    rec = job.recording
    try:
        with get_store().local_path(rec.playback_key, rec.playback_version_id) as path:
            data = ffmpeg.frame_jpeg_index(path, index=frame, fps=job.fps or 25)
    except (StoreError, ffmpeg.MediaError) as exc:
        raise Http404("image indisponible") from exc
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=600"
    return response


def derivative_media(request, token: str, pk: int):
    """The redacted copy itself (for the approver to watch), with HTTP Range."""
    from evidence.media.views import range_bounds, range_refused, stored_response, stored_size

    if not request.user.is_authenticated:
        raise Http404()
    derivative = get_object_or_404(derivatives_visible_to(user=request.user), pk=pk)
    _consulted_job(request, token, derivative.job_id)
    size = stored_size(derivative.store_key, derivative.store_version_id, missing="copie indisponible")
    bounds = range_bounds(request, size)
    if bounds is None:
        return range_refused(size)
    return stored_response(key=derivative.store_key, version=derivative.store_version_id, content_type="video/mp4",
                           bounds=bounds, size=size)