"""Server-rendered pages. Thin: every read goes through the selectors."""
import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts.selectors import grantees_for
from devices.selectors import offload_sessions_visible_to

from .access import services as access_services
from .access.selectors import ORGANISATION_WIDE, grants_visible_to, recordings_visible_to
from .drafts import draft_keep, draft_take, tag_values
from .models import Consultation, Procedure, Purpose, Recording, ReviewState, TriggerReason
from .pagination import CappedCountPaginator
from .retention import RetentionRefused
from .retention import holds as hold_services
from .retention.selectors import erasures_upcoming_for, holds_for_recording, holds_visible_to
from .review import services as review_services
from .review.selectors import (annotations_for, recordings_review_queue_for, recordings_to_complete_for,
                               to_complete_q)
from .review.services import ReviewRefused
from .search import RecordingSearchForm, with_hold_in_force


@login_required
def recording_list(request):
    """Search, filter, sort and page through the recordings the user may see."""
    qs = recordings_visible_to(user=request.user)
    form = RecordingSearchForm(request.GET or None)
    if form.is_bound and form.is_valid():
        qs = form.apply(qs)
    else:
        qs = qs.order_by("-started_at", "-id")
    page = CappedCountPaginator(with_hold_in_force(qs.defer("media_info", "stream_hashes", "sidecar_errors", "track")),
                                50).get_page(request.GET.get("page"))
    sessions = offload_sessions_visible_to(user=request.user)[:5]
    upcoming = list(erasures_upcoming_for(user=request.user, now=timezone.now(), hours=72)[:10])
    return render(request, "evidence/recording_list.html", {
        "page": page, "form": form, "sort": request.GET.get("sort", "-started_at"),
        "sessions": sessions, "upcoming": upcoming, "shortcuts": _date_shortcuts(request.GET),
    })


def _date_shortcuts(params) -> list[dict]:
    """"Aujourd'hui", "Hier", "7 derniers jours": days in local time, both ends included."""
    today = timezone.localdate()
    spans = [(_("Aujourd'hui"), today, today), (_("Hier"), today - dt.timedelta(days=1), today - dt.timedelta(days=1)),
             (_("7 derniers jours"), today - dt.timedelta(days=6), today)]
    chosen = (params.get("started_after", ""), params.get("started_before", ""))
    return [{"label": label, "after": first.isoformat(), "before": last.isoformat(),
             "current": chosen == (first.isoformat(), last.isoformat())} for label, first, last in spans]


@login_required
def recording_detail(request, pk: int):
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    _with_tag_values(request, recording)
    events = recording.custody_events.order_by("seq")
    holds = list(holds_for_recording(recording=recording))
    from config.maps import recording_map

    return render(request, "evidence/recording_detail.html", {
        "r": recording, "events": events, "holds": holds, "map_data": recording_map(recording),
        # CSI R241-13: a hold in force suspends the erasure; the page says so instead of a date.
        "holds_in_force": [h for h in holds if h.active],
        # The interventions this recording is linked to (issue 21): their pages filter by the same selector.
        "interventions": recording.intervention_links.select_related("intervention").order_by("intervention__reference"),
        "procedures": Procedure.choices,
        "can_place_hold": request.user.role in hold_services.HOLD_PLACERS and not recording.gone,
        "can_release_hold": request.user.role in hold_services.HOLD_RELEASERS,
        "can_tag": _can_tag(request.user, recording), **_tag_choices(),
        "annotations": annotations_for(recording=recording),
        "can_annotate": request.user.role != "admin" and not recording.gone,
        "can_review": request.user.role in review_services.REVIEWERS, "review_states": ReviewState.choices,
    })


def _can_tag(user, recording) -> bool:
    if recording.gone or user.role not in review_services.TAGGERS:
        return False
    return user.role == "supervisor" or recording.wearer_id == user.pk


def _with_tag_values(request, recording):
    draft = draft_take(request, f"tag-{recording.pk}")
    recording.tagv, recording.tag_refused = tag_values(recording, draft), draft is not None
    return recording


def _tag_choices() -> dict:
    return {"trigger_reasons": TriggerReason.choices, "purposes": Purpose.choices}


@login_required
@require_http_methods(["GET", "POST"])
def to_complete(request):
    """The wearer's "to complete" queue: recordings whose tags are missing (CSI L241-2)."""
    if request.user.role not in review_services.TAGGERS:
        raise PermissionDenied("the queue is for the wearers and their supervisor, who tag recordings")
    page = Paginator(recordings_to_complete_for(user=request.user).select_related("camera", "wearer"), 25)
    page = page.get_page(request.GET.get("page") or request.POST.get("page"))
    for r in page:
        _with_tag_values(request, r)
    thumbnails = request.method == "POST" and request.POST.get("action") == "thumbnails"
    if thumbnails:
        # Motif before media (CSI R241-14): showing the posters is a consultation of each recording,
        # logged with this motif, asked for by a button; the posters come through its short-lived URLs.
        for r in page:
            if r.poster_key and r.status in (Recording.Status.READY, Recording.Status.UNPLAYABLE) and r.playback_key:
                _consultation, token = access_services.consultation_open(recording=r, by=request.user, motif=THUMBNAIL_MOTIF)
                r.thumb_url = reverse("consultation-media", args=[token, "poster"])
    return render(request, "evidence/to_complete.html", {"page": page, "thumbnails": thumbnails,
                                                         "batch": draft_take(request, "tag-batch") or {},
                                                         "thumbnail_motif": THUMBNAIL_MOTIF, **_tag_choices()})


THUMBNAIL_MOTIF = "Qualification des enregistrements (file « À compléter », vignettes)"


@login_required
@require_POST
def to_complete_batch(request):
    """Batch tagging from "À compléter": the same trigger reason and answer for the ticked recordings
    (CSI L241-2), one custody event per recording."""

    if request.user.role not in review_services.TAGGERS:
        raise PermissionDenied("the queue is for the wearers and their supervisor, who tag recordings")
    recordings = list(recordings_to_complete_for(user=request.user).filter(pk__in=_ids(request.POST.getlist("ids"))))
    if not recordings:
        messages.error(request, _("Cochez au moins un enregistrement."))
        return redirect("to-complete")
    notified = {"true": True, "false": False}.get(request.POST.get("subject_notified", ""))
    changes = {"trigger_reason": request.POST.get("trigger_reason", ""), "subject_notified": notified,
               "notice_omitted_reason": request.POST.get("notice_omitted_reason", "")}
    if not changes["trigger_reason"] or notified is None:
        messages.error(request, _("Indiquez le motif de déclenchement et si les personnes filmées ont été informées."))
        draft_keep(request, "tag-batch", {**changes, "subject_notified": request.POST.get("subject_notified", ""),
                                          "ids": [r.pk for r in recordings]})
        return redirect("to-complete")
    try:
        done, refused = review_services.recordings_tag_batch(recordings=recordings, by=request.user, changes=changes)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    if done:
        messages.success(request, _("%(n)s enregistrement(s) qualifié(s).") % {"n": len(done)})
    for rec, reason in refused:
        messages.error(request, f"Enregistrement n° {rec.pk} : {_french_tag_error(ValueError(reason))}")
    if refused:
        draft_keep(request, "tag-batch", {**changes, "subject_notified": request.POST.get("subject_notified", ""),
                                          "ids": [r.pk for r, _reason in refused]})
    return redirect("to-complete")


def _ids(values) -> list[int]:
    return [int(v) for v in values if str(v).isdigit()][:200]


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
        review_services.recording_tag(recording=recording, by=request.user, changes=changes)
        messages.success(request, _("Enregistrement n° %(n)s : qualification enregistrée.") % {"n": pk})
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValueError as exc:
        messages.error(request, _("Enregistrement n° %(n)s : %(error)s") % {"n": pk, "error": _french_tag_error(exc)})
        # Issue 20: the motif and the yes/no answer typed stay in the form shown again.
        draft_keep(request, f"tag-{pk}", {**{k: request.POST.get(k, "") for k in review_services.TAG_FIELDS},
                                          "subject_notified": request.POST.get("subject_notified", "")})
    nxt = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect("recording-detail", pk=pk)


def _french_tag_error(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("notice_omitted_reason"):
        return _("indiquez pourquoi les personnes filmées n'ont pas été informées.")
    return text


@login_required
@require_POST
def hold_place(request, pk: int):
    """Plain HTML form (works without JavaScript): a legal action, logged with its motif."""
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    scope = request.POST.get("scope", "recording")
    try:
        hold_services.hold_place(
            by=request.user, procedure=request.POST.get("procedure", ""), reference=request.POST.get("reference", ""),
            motif=request.POST.get("motif", ""),
            recording=recording if scope != "intervention" else None,
            intervention=recording.intervention if scope == "intervention" else "",
        )
        messages.success(request, _("Conservation pour procédure enregistrée."))
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except (ValueError, RetentionRefused) as exc:
        messages.error(request, _("Conservation refusée : %(error)s") % {"error": exc})
    return redirect("recording-detail", pk=pk)


@login_required
@require_POST
def hold_release(request, pk: int):
    hold = get_object_or_404(holds_visible_to(user=request.user), pk=pk)
    try:
        hold_services.hold_release(hold=hold, by=request.user, motif=request.POST.get("motif", ""))
        messages.success(request, _("Conservation levée."))
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValueError as exc:
        messages.error(request, _("Levée refusée : %(error)s") % {"error": exc})
    back = request.POST.get("recording")
    if request.POST.get("next") == "holds":
        return redirect("holds-in-force")
    return redirect("recording-detail", pk=int(back)) if back and back.isdigit() else redirect("erasures-upcoming")


@login_required
def holds_in_force(request):
    """"Conservations en cours": the holds not released, for those who manage or read them (CSI R241-13;
    supervisor and legal staff place them, legal staff release them, the DPO and the mayor read them)."""
    if request.user.role not in ORGANISATION_WIDE:
        raise PermissionDenied("les conservations sont suivies par le service, le juridique, le DPO et le maire")
    rows = (holds_visible_to(user=request.user).filter(released_at__isnull=True)
            .select_related("placed_by", "recording", "recording__camera")
            .annotate(n_covered=Count("covered")).order_by("-placed_at"))
    return render(request, "evidence/holds.html", {
        "rows": rows, "can_release_hold": request.user.role in hold_services.HOLD_RELEASERS})


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
    context = {"r": recording, "motifs": access_services.CONSULTATION_MOTIFS}
    if request.method == "POST":
        choice = request.POST.get("motif_choice", "").strip()
        detail = request.POST.get("motif_detail", "").strip()
        motif = " — ".join(p for p in (choice, detail) if p)
        try:
            consultation, token = access_services.consultation_open(recording=recording, by=request.user, motif=motif)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            context["error"] = _("Indiquez le motif de la consultation.") if str(exc).startswith("motif") else str(exc)
            return render(request, "evidence/recording_play.html", context, status=400)
        context.update(consultation=consultation, annotations=annotations_for(recording=recording),
                       media_url=reverse("consultation-media", args=[token, "video"]),
                       poster_url=reverse("consultation-media", args=[token, "poster"]))
    return render(request, "evidence/recording_play.html", context)


# --- Comments and bookmarks, review, individual grants (issue #4) ------------------------------

ANNOTATION_ERRORS = {"text": gettext_lazy("écrivez le commentaire."),
                     "at_seconds": gettext_lazy("indiquez un instant compris dans la vidéo."),
                     "kind": gettext_lazy("type inconnu.")}


@login_required
@require_POST
def annotation_add(request, pk: int):
    """A timecoded comment or bookmark, from the player (current time) or the recording page."""
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    wants_json = request.headers.get("Accept") == "application/json"  # player.js adds without reloading
    try:
        note = review_services.annotation_add(recording=recording, by=request.user,
                                       at_seconds=_seconds(request.POST.get("at", "")),
                                       text=request.POST.get("text", ""), kind=request.POST.get("kind", "comment"))
        if wants_json:
            return JsonResponse({"id": note.pk, "at_seconds": note.at_seconds, "kind": note.kind, "text": note.text,
                                 "author": request.user.get_full_name() or request.user.username}, status=201)
        messages.success(request, _("Commentaire ajouté."))
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ValueError as exc:
        error = _("Commentaire refusé : %(error)s") % {"error": ANNOTATION_ERRORS.get(str(exc).split(":")[0], exc)}
        if wants_json:
            return JsonResponse({"detail": error}, status=400)
        messages.error(request, error)
    nxt = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect("recording-detail", pk=pk)


def _seconds(value: str):
    """"75", "75.5", "1:15" or "0:01:15" → seconds; anything else is left for the service to refuse."""
    value = (value or "").strip().replace(",", ".")
    if ":" in value:
        try:
            parts = [float(p) for p in value.split(":")]
        except ValueError:
            return value
        total = 0.0
        for p in parts:
            total = total * 60 + p
        return total
    return value


@login_required
@require_POST
def recording_review(request, pk: int):
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    try:
        review_services.recording_review(recording=recording, by=request.user, state=request.POST.get("state", ""),
                                  note=request.POST.get("note", ""))
        messages.success(request, _("Enregistrement n° %(n)s : revue enregistrée.") % {"n": pk})
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except ReviewRefused as exc:  # issue 20: never consulted by the reviewer, or still "À compléter"
        messages.error(request, str(exc))
    except ValueError as exc:
        text = _("indiquez pourquoi l'enregistrement est signalé.") if str(exc).startswith("note") else str(exc)
        messages.error(request, _("Enregistrement n° %(n)s : %(error)s") % {"n": pk, "error": text})
    nxt = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect("recording-detail", pk=pk)


REVIEW_QUEUES = [("unreviewed", gettext_lazy("Non revus")), ("flagged", gettext_lazy("Signalés")),
                 ("sample", gettext_lazy("Échantillon de contrôle"))]


@login_required
def review_queue(request):
    """The supervisor's review queue: unreviewed, flagged, and a weekly random sample."""
    if request.user.role != "supervisor":
        raise PermissionDenied("review is the head of service's task")
    queue = request.GET.get("file", "unreviewed")
    if queue not in dict(REVIEW_QUEUES):
        queue = "unreviewed"
    qs = recordings_review_queue_for(user=request.user, queue=queue).select_related("camera", "wearer")
    # Whether this reviewer consulted each one and whether it is tagged: "Marquer revu" needs both.
    qs = qs.annotate(consulted=Exists(Consultation.objects.filter(recording_id=OuterRef("pk"), user_id=request.user.pk)),
                     untagged=Exists(Recording.objects.filter(pk=OuterRef("pk")).filter(to_complete_q())))
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(request, "evidence/review_queue.html", {"page": page, "queue": queue, "queues": REVIEW_QUEUES})


@login_required
@require_POST
def review_batch(request):
    """Batch review: the ticked recordings marked reviewed, each checked and logged on its own."""

    if request.user.role not in review_services.REVIEWERS:
        raise PermissionDenied("review is the head of service's task")
    recordings = list(recordings_visible_to(user=request.user).filter(pk__in=_ids(request.POST.getlist("ids"))))
    if not recordings:
        messages.error(request, _("Cochez au moins un enregistrement."))
    else:
        done, refused = review_services.recordings_review_batch(recordings=recordings, by=request.user)
        if done:
            messages.success(request, _("%(n)s enregistrement(s) marqué(s) revu(s).") % {"n": len(done)})
        for _rec, reason in refused:
            messages.error(request, reason)
    nxt = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        return redirect(nxt)
    return redirect("review-queue")


@login_required
def grants(request):
    """Individual grants: the head of service lets one person see an intervention until a date."""
    if request.user.role not in access_services.GRANTORS:
        raise PermissionDenied("only the head of service grants access")
    org_users = grantees_for(user=request.user).order_by("last_name", "username")
    if request.method == "POST":
        grantee = get_object_or_404(org_users, pk=request.POST.get("grantee") or 0)
        if request.POST.get("action") == "revoke":
            n = access_services.recording_access_revoke(grantee=grantee, by=request.user, motif=request.POST.get("motif", ""))
            messages.success(request, f"Habilitation de {grantee} retirée ({n} enregistrement(s)).")
            return redirect("grants")
        try:
            until = dt.datetime.fromisoformat(request.POST.get("until", ""))
            if timezone.is_naive(until):
                until = timezone.make_aware(until)
            n = access_services.recording_access_grant(grantee=grantee, by=request.user, until=until,
                                                motif=request.POST.get("motif", ""),
                                                intervention=request.POST.get("intervention", ""))
            messages.success(request, f"{grantee} peut consulter {n} enregistrement(s) jusqu'au "
                                      f"{timezone.localtime(until):%d/%m/%Y %H:%M}.")
        except ValueError as exc:
            messages.error(request, f"Habilitation refusée : {exc}")
        return redirect("grants")
    rows = grants_visible_to(user=request.user).filter(expires_at__gt=timezone.now()).order_by("user__username",
                                                                                            "expires_at")
    return render(request, "evidence/grants.html", {"rows": rows, "org_users": org_users})
