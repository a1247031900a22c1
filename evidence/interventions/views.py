"""The intervention pages (issue #21): list, and one intervention with its timeline, synchronised
players and map. Thin: reads through the selectors, writes through the services. The legal actions
(motif, time correction, confirmation of a suggestion) are plain forms that work without JavaScript."""
from __future__ import annotations


from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from evidence.access.selectors import recordings_visible_to
from evidence.access.services import CONSULTATION_MOTIFS
from . import selectors, services
from .api import intervention_get

# The synchronised player shows up to six videos at once (issue #21); the motif form picks them.
MAX_PLAYERS = 6

ERRORS = {
    "motif": "Indiquez le motif.",
    "seconds": "Indiquez un nombre de secondes (au plus un jour).",
    "recordings": "Choisissez au moins un enregistrement.",
}


@login_required
def intervention_list(request):
    qs = selectors.intervention_search(user=request.user, q=request.GET.get("q", "").replace("\x00", ""))
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(request, "interventions/intervention_list.html", {"page": page, "q": request.GET.get("q", "")})


def _context(request, intervention, *, consulted=None, error=""):
    user = request.user
    recordings = list(selectors.intervention_recordings_visible_to(user=user, intervention=intervention))
    timeline = selectors.intervention_timeline(intervention=intervention, recordings=recordings)
    span = max(((timeline["ended_at"] - timeline["started_at"]).total_seconds() if timeline["rows"] else 0), 1.0)
    media = {rec.pk: url for rec, url in (consulted or [])}
    annotations = list(selectors.annotations_of(recordings=recordings))
    offsets = {row["recording"].pk: row["offset_seconds"] for row in timeline["rows"]}
    cameras = {}
    for row in timeline["rows"]:
        rec = row["recording"]
        row.update(left=100 * row["offset_seconds"] / span, width=max(100 * (row["duration"] or 0) / span, 0.4),
                   media_url=media.get(rec.pk, ""))
        cameras.setdefault(rec.camera.serial, {"serial": rec.camera.serial, "camera_id": rec.camera_id,
                                               "correction": row["clock_correction"], "rows": []})["rows"].append(row)
    notes = [{"recording": a.recording_id, "at": a.at_seconds, "kind": a.kind, "text": a.text,
              "left": 100 * (offsets.get(a.recording_id, 0) + a.at_seconds) / span}
             for a in annotations if a.recording_id in offsets]
    data = {
        "start": timeline["started_at"].isoformat() if timeline["started_at"] else None,
        "span": span,
        "tiles": settings.TEMOIN_MAP_TILES, "attribution": settings.TEMOIN_MAP_ATTRIBUTION,
        "recordings": [{"id": row["recording"].pk, "camera": row["recording"].camera.serial,
                        "offset": row["offset_seconds"], "duration": row["duration"] or 0,
                        "correction": row["clock_correction"], "track": row["recording"].track or [],
                        "location": row["recording"].location, "media": bool(media.get(row["recording"].pk))}
                       for row in timeline["rows"]],
        "annotations": [{k: n[k] for k in ("recording", "at", "kind", "text")} for n in notes],
    }
    suggestions = []
    if user.role in services.SUGGESTION_CONFIRMERS:
        suggestions = selectors.intervention_suggestions_for(user=user, intervention=intervention)
        if user.role == "officer":
            suggestions = [r for r in suggestions if r.wearer_id == user.pk]
    officers = sorted({(r.wearer.get_full_name() or r.wearer.matricule or r.wearer.username)
                       for r in recordings if r.wearer_id})
    return {
        "i": intervention, "timeline": timeline, "cameras": list(cameras.values()), "notes": notes,
        "data": data, "consulted": bool(consulted), "motifs": CONSULTATION_MOTIFS,
        "suggestions": suggestions, "officers": officers, "error": error,
        "can_correct": user.role in services.CLOCK_CORRECTORS, "max_players": MAX_PLAYERS,
        "ticks": _ticks(timeline["started_at"], span),
    }


def _ticks(start, span: float) -> list[dict]:
    """Marks on the time axis every round step (real time, local clock)."""
    import datetime as dt

    from django.utils import timezone

    if start is None:
        return []
    step = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600) if span / s <= 8), 7200)
    first = (int(start.timestamp()) // step + 1) * step
    out, t = [], first
    while t < start.timestamp() + span:
        when = timezone.localtime(dt.datetime.fromtimestamp(t, tz=dt.timezone.utc))
        out.append({"left": 100 * (t - start.timestamp()) / span, "label": when.strftime("%H:%M:%S")})
        t += step
    return out


@login_required
def intervention_detail(request, reference: str):
    intervention = intervention_get(request.user, reference)
    return render(request, "interventions/intervention_detail.html", _context(request, intervention))


@login_required
@require_POST
def intervention_consult(request, reference: str):
    """One motif opens the consultation of every recording shown (one register entry for each)."""
    intervention = intervention_get(request.user, reference)
    choice = request.POST.get("motif_choice", "").strip()
    detail = request.POST.get("motif_detail", "").strip()
    motif = " — ".join(p for p in (choice, detail) if p)
    recordings = list(selectors.intervention_recordings_visible_to(user=request.user, intervention=intervention))
    chosen = {int(v) for v in request.POST.getlist("recordings") if v.isdigit()}
    if chosen:
        recordings = [r for r in recordings if r.pk in chosen]
    if len(recordings) > MAX_PLAYERS:
        context = _context(request, intervention, error=f"Choisissez au plus {MAX_PLAYERS} enregistrements à lire ensemble.")
        return render(request, "interventions/intervention_detail.html", context, status=400)
    try:
        opened = services.intervention_consult(intervention=intervention, by=request.user, recordings=recordings,
                                               motif=motif)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InterventionError as exc:
        context = _context(request, intervention, error=ERRORS.get(exc.field, str(exc)))
        return render(request, "interventions/intervention_detail.html", context, status=400)
    consulted = [(rec, reverse("consultation-media", args=[token, "video"])) for rec, _c, token in opened]
    context = _context(request, intervention, consulted=consulted)
    context["motif"] = motif
    return render(request, "interventions/intervention_detail.html", context)


@login_required
@require_POST
def intervention_clock(request, reference: str):
    """Correct one camera's clock within this intervention, with a motif (logged)."""
    intervention = intervention_get(request.user, reference)
    recordings = selectors.intervention_recordings_visible_to(user=request.user, intervention=intervention)
    camera = next((r.camera for r in recordings if r.camera.serial == request.POST.get("camera")), None)
    try:
        if camera is None:
            raise services.InterventionError("unknown camera", "camera")
        services.intervention_clock_correct(intervention=intervention, camera=camera,
                                            seconds=request.POST.get("seconds", "").replace(",", "."),
                                            by=request.user, motif=request.POST.get("motif", ""))
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InterventionError as exc:
        messages.error(request, ERRORS.get(exc.field, "Caméra inconnue dans cette intervention."))
    else:
        messages.success(request, "Correction d'horloge enregistrée au journal de traçabilité.")
    return redirect("intervention-detail", reference=intervention.reference)


@login_required
@require_POST
def intervention_suggestions_confirm(request, reference: str):
    """A supervisor, or the wearer, confirms suggested recordings: they join the intervention."""
    intervention = intervention_get(request.user, reference)
    ids = [int(v) for v in request.POST.getlist("recordings") if v.isdigit()]
    recordings = list(recordings_visible_to(user=request.user).filter(pk__in=ids))
    try:
        if not recordings:
            raise services.InterventionError("none", "recordings")
        services.intervention_suggestion_confirm(intervention=intervention, by=request.user, recordings=recordings)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InterventionError as exc:
        messages.error(request, ERRORS.get(exc.field, str(exc)))
    else:
        messages.success(request, "Enregistrement(s) rattaché(s) à l'intervention.")
    return redirect("intervention-detail", reference=intervention.reference)
