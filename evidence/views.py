"""Server-rendered pages. Thin: every read goes through the selectors."""
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from devices.selectors import offload_sessions_visible_to

from . import services
from .models import Procedure, Purpose, Recording, TriggerReason
from .selectors import (
    erasures_upcoming_for,
    holds_for_recording,
    holds_visible_to,
    recordings_to_complete_for,
    recordings_visible_to,
)


@login_required
def recording_list(request):
    qs = recordings_visible_to(user=request.user)
    status = request.GET.get("status", "")
    camera = request.GET.get("camera", "").strip()
    if status in Recording.Status.values:
        qs = qs.filter(status=status)
    if camera:
        qs = qs.filter(camera__serial__icontains=camera)
    page = Paginator(qs.order_by("-started_at", "-id"), 50).get_page(request.GET.get("page"))
    sessions = offload_sessions_visible_to(user=request.user)[:5]
    upcoming = list(erasures_upcoming_for(user=request.user, now=timezone.now(), hours=72)[:10])
    return render(request, "evidence/recording_list.html", {
        "page": page, "statuses": Recording.Status.choices, "status": status, "camera": camera,
        "sessions": sessions, "upcoming": upcoming,
    })


@login_required
def recording_detail(request, pk: int):
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    events = recording.custody_events.order_by("seq")
    return render(request, "evidence/recording_detail.html", {
        "r": recording, "events": events, "holds": holds_for_recording(recording=recording),
        "procedures": Procedure.choices,
        "can_place_hold": request.user.role in services.HOLD_PLACERS and recording.status != Recording.Status.ERASED,
        "can_release_hold": request.user.role in services.HOLD_RELEASERS,
        "can_tag": _can_tag(request.user, recording), **_tag_choices(),
    })


def _can_tag(user, recording) -> bool:
    if recording.status == Recording.Status.ERASED or user.role not in services.TAGGERS:
        return False
    return user.role == "supervisor" or recording.wearer_id == user.pk


def _tag_choices() -> dict:
    return {"trigger_reasons": TriggerReason.choices, "purposes": Purpose.choices}


@login_required
def to_complete(request):
    """The wearer's "to complete" queue: recordings whose tags are missing (CSI L241-2)."""
    page = Paginator(recordings_to_complete_for(user=request.user).select_related("camera", "wearer"), 25)
    return render(request, "evidence/to_complete.html", {"page": page.get_page(request.GET.get("page")),
                                                         **_tag_choices()})


@login_required
@require_POST
def recording_tag(request, pk: int):
    """Plain HTML form: trigger reason, information of the people filmed, purpose, intervention."""
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    notified = {"true": True, "false": False}.get(request.POST.get("subject_notified", ""))
    changes = {
        "trigger_reason": request.POST.get("trigger_reason", ""),
        "subject_notified": notified,
        "notice_omitted_reason": request.POST.get("notice_omitted_reason", ""),
        "purpose": request.POST.get("purpose", recording.purpose),
        "intervention": request.POST.get("intervention", recording.intervention),
    }
    try:
        services.recording_tag(recording=recording, by=request.user, changes=changes)
        messages.success(request, f"Enregistrement n° {pk} : qualification enregistrée.")
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValueError as exc:
        messages.error(request, f"Enregistrement n° {pk} : {_french_tag_error(exc)}")
    nxt = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect("recording-detail", pk=pk)


def _french_tag_error(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("notice_omitted_reason"):
        return "indiquez pourquoi les personnes filmées n'ont pas été informées."
    return text


@login_required
@require_POST
def hold_place(request, pk: int):
    """Plain HTML form (works without JavaScript): a legal action, logged with its motif."""
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    scope = request.POST.get("scope", "recording")
    try:
        services.hold_place(
            by=request.user, procedure=request.POST.get("procedure", ""), reference=request.POST.get("reference", ""),
            motif=request.POST.get("motif", ""),
            recording=recording if scope != "intervention" else None,
            intervention=recording.intervention if scope == "intervention" else "",
        )
        messages.success(request, "Conservation pour procédure enregistrée.")
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except (ValueError, services.RetentionRefused) as exc:
        messages.error(request, f"Conservation refusée : {exc}")
    return redirect("recording-detail", pk=pk)


@login_required
@require_POST
def hold_release(request, pk: int):
    hold = get_object_or_404(holds_visible_to(user=request.user), pk=pk)
    try:
        services.hold_release(hold=hold, by=request.user, motif=request.POST.get("motif", ""))
        messages.success(request, "Conservation levée.")
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValueError as exc:
        messages.error(request, f"Levée refusée : {exc}")
    back = request.POST.get("recording")
    return redirect("recording-detail", pk=int(back)) if back and back.isdigit() else redirect("erasures-upcoming")


@login_required
def erasures_upcoming(request):
    """CSI R241-13: what will be erased in the next 72 hours and 7 days, untagged highlighted."""
    now = timezone.now()
    week = list(erasures_upcoming_for(user=request.user, now=now, hours=7 * 24).select_related("camera", "wearer"))
    soon = [r for r in week if r.retain_until <= now + dt.timedelta(hours=72)]
    later = [r for r in week if r.retain_until > now + dt.timedelta(hours=72)]
    org = request.user.organisation
    return render(request, "evidence/erasures_upcoming.html", {
        "soon": soon, "later": later, "organisation": org,
        "to_complete": sum(1 for r in week if r.to_complete),
    })


@login_required
def recording_play(request, pk: int):
    """Motif before media (CSI R241-14): the consultation is logged, then the player gets a
    short-lived URL bound to it. A plain form, usable without JavaScript."""
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    context = {"r": recording, "motifs": services.CONSULTATION_MOTIFS}
    if request.method == "POST":
        choice = request.POST.get("motif_choice", "").strip()
        detail = request.POST.get("motif_detail", "").strip()
        motif = " — ".join(p for p in (choice, detail) if p)
        try:
            consultation, token = services.consultation_open(recording=recording, by=request.user, motif=motif)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            context["error"] = "Indiquez le motif de la consultation." if str(exc).startswith("motif") else str(exc)
            return render(request, "evidence/recording_play.html", context, status=400)
        context.update(consultation=consultation,
                       media_url=reverse("consultation-media", args=[token, "video"]),
                       poster_url=reverse("consultation-media", args=[token, "poster"]))
    return render(request, "evidence/recording_play.html", context)
