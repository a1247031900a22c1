"""Pages for people: extractions and exports, shares, access requests. Plain HTML forms that work
without JavaScript (STYLE.md: legal actions never depend on scripts). Thin: selectors and services.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from audit.throttle import rate_limit
from evidence.access.selectors import access_request_search_base, recordings_visible_to
from evidence.drafts import draft_keep, draft_take
from evidence.sources import Regime

from . import access_requests, selectors, services, shares
from .api import searcher_of, search_candidates
from .models import AccessRequest, Export, ExtractionPurpose, Redaction


def _tz(user) -> ZoneInfo:
    org = getattr(user, "organisation", None)
    return ZoneInfo(org.time_zone if org is not None and org.time_zone else "Europe/Paris")


def _form_errors(request, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for e in errors:
            messages.error(request, f"{label} : {e}" if label else e)


def _service(http_request, fn, /, **kwargs):
    """Run a service from a page: a refusal becomes a message; returns (result, ok)."""
    try:
        return fn(**kwargs), True
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.DisclosureError as exc:
        messages.error(http_request, str(exc))
        return None, False


# --- Extractions and exports ----------------------------------------------------------------------

@login_required
def disclosure_list(request):
    if request.user.role not in selectors.EXPORT_READERS:
        raise PermissionDenied(_("Les extractions sont visibles du responsable de service, du service juridique, du "
                                 "maire et du délégué à la protection des données."))
    return render(request, "disclosure/list.html", {
        "exports": selectors.exports_visible_to(user=request.user).prefetch_related("items")[:200],
        "extractions": selectors.extractions_visible_to(user=request.user)[:200],
        "can_extract": request.user.role in selectors.EXTRACTORS,
    })


class ExtractionForm(forms.Form):
    purpose = forms.ChoiceField(label=gettext_lazy("Finalité"), choices=ExtractionPurpose.choices)
    recipient = forms.CharField(label=gettext_lazy("Destinataire"), max_length=300)
    motif = forms.CharField(label=gettext_lazy("Motif"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    redaction = forms.ChoiceField(label=gettext_lazy("Floutage"), choices=Redaction.choices, initial=Redaction.NONE)
    scope = forms.ChoiceField(label=gettext_lazy("Enregistrements"), initial="recording", choices=[
        ("recording", gettext_lazy("cet enregistrement")),
        ("intervention", gettext_lazy("tous les enregistrements de l'intervention"))])
    kind = forms.ChoiceField(label=gettext_lazy("Forme"), initial="package", choices=[
        ("package", gettext_lazy("paquet vérifiable (ZIP : fichiers, manifeste signé, rapport, verify.py)")),
        ("file", gettext_lazy("fichier seul, lien de téléchargement de 30 minutes"))])
    # Issue 20: a procedure has a reference (n° de PV, réquisition) and, while it runs, the recording
    # must not be erased (CSI R241-13): the form asks for it and proposes the hold, ticked.
    reference = forms.CharField(label=gettext_lazy("Référence de la procédure (n° de PV, réquisition)"),
                                max_length=200, required=False)
    place_hold = forms.BooleanField(label=gettext_lazy("Conserver pour cette procédure (suspend l'effacement)"),
                                    required=False, initial=True)


PROCEDURES = ("judicial", "administrative", "disciplinary")


@login_required
def recording_extract(request, pk: int):
    """The extraction form of a recording (CSI R241-12): purpose, recipient, motif — logged first."""
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    if request.user.role not in selectors.EXTRACTORS:
        raise PermissionDenied(_("L'extraction est réservée au responsable de service, aux agents habilités et au "
                                 "service juridique (CSI R241-12)."))
    form = ExtractionForm(request.POST or None)
    if request.method == "POST":
        if not form.is_valid():
            _form_errors(request, form)
        else:
            d = form.cleaned_data
            if d["purpose"] in PROCEDURES and d["reference"].strip():
                d["motif"] = f"{d['motif']} — réf. {d['reference'].strip()}"  # in the register with the motif
                if d["place_hold"] and not _hold_for_extraction(request, recording, d):
                    return render(request, "disclosure/extract_form.html", {"r": recording, "form": form})
            if d["kind"] == "file":
                result, ok = _service(request, services.extraction_create, recording=recording, by=request.user,
                                      purpose=d["purpose"], recipient=d["recipient"], motif=d["motif"],
                                      redaction=d["redaction"])
                if ok:
                    extraction, token = result
                    return render(request, "disclosure/extraction_ready.html", {
                        "r": recording, "extraction": extraction,
                        "url": reverse("extraction-download", args=[token])})
            else:
                recordings = [recording]
                if d["scope"] == "intervention" and recording.intervention:
                    recordings = list(recordings_visible_to(user=request.user).filter(
                        intervention=recording.intervention).order_by("started_at", "id"))
                export, ok = _service(request, services.export_create, recordings=recordings, by=request.user,
                                      purpose=d["purpose"], recipient=d["recipient"], motif=d["motif"],
                                      redaction=d["redaction"])
                if ok:
                    messages.success(request, _("Extraction inscrite au registre ; le paquet est en préparation."))
                    return redirect("export-detail", pk=export.pk)
    return render(request, "disclosure/extract_form.html", {"r": recording, "form": form})


def _hold_for_extraction(request, recording, d) -> bool:
    """Place the hold the extraction form proposed (its own transaction and custody event)."""
    from evidence.retention import RetentionRefused
    from evidence.retention.holds import hold_place

    whole = d["scope"] == "intervention" and bool(recording.intervention) and d["kind"] != "file"
    try:
        hold_place(by=request.user, procedure=d["purpose"], reference=d["reference"].strip(), motif=d["motif"],
                   recording=None if whole else recording, intervention=recording.intervention if whole else "")
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except (ValueError, RetentionRefused) as exc:
        messages.error(request, _("Conservation refusée : %(e)s") % {"e": exc})
        return False
    messages.success(request, _("Conservation pour procédure enregistrée (réf. %(ref)s) : effacement suspendu.")
                     % {"ref": d["reference"].strip()})
    return True


class ShareForm(forms.Form):
    recipient = forms.CharField(label=gettext_lazy("Destinataire"), max_length=300)
    expires_on = forms.DateField(label=gettext_lazy("Expire le (inclus)"),
                                 widget=forms.DateInput(attrs={"type": "date"}))
    max_downloads = forms.IntegerField(label=gettext_lazy("Téléchargements autorisés"), min_value=1,
                                       max_value=shares.SHARE_MAX_DOWNLOADS, initial=3)


@login_required
def export_detail(request, pk: int):
    export = get_object_or_404(selectors.exports_visible_to(user=request.user), pk=pk)
    new_url = request.session.pop(f"share-url-{export.pk}", None)
    return render(request, "disclosure/export_detail.html", {
        "export": export, "items": export.items.select_related("recording__camera"),
        "shares": export.shares.select_related("created_by", "revoked_by"),
        "share_form": ShareForm(initial={"recipient": export.recipient,
                                         "expires_on": timezone.localdate() + dt.timedelta(days=7)}),
        "can_share": request.user.role in shares.SHARERS and export.status == Export.Status.READY,
        "refresh": export.status in (Export.Status.QUEUED, Export.Status.RUNNING),
        "new_url": new_url, "now": timezone.now(),
    })


@login_required
def export_status(request, pk: int):
    """The progress fragment alone (htmx polling); the page itself refreshes without JavaScript."""
    export = get_object_or_404(selectors.exports_visible_to(user=request.user), pk=pk)
    return render(request, "disclosure/_export_status.html", {"export": export})


@login_required
@require_POST
def share_create(request, pk: int):
    export = get_object_or_404(selectors.exports_visible_to(user=request.user), pk=pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        _form_errors(request, form)
        return redirect("export-detail", pk=export.pk)
    d = form.cleaned_data
    tz = _tz(request.user)
    expires_at = dt.datetime.combine(d["expires_on"] + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    result, ok = _service(request, shares.share_create, export=export, by=request.user, recipient=d["recipient"],
                          expires_at=expires_at, max_downloads=d["max_downloads"])
    if ok:
        share, token = result
        # Shown once on the next page: only the token's hash is kept.
        request.session[f"share-url-{export.pk}"] = request.build_absolute_uri(reverse("share-public", args=[token]))
        messages.success(request, _("Lien de partage créé pour %(r)s.") % {"r": share.recipient})
    return redirect("export-detail", pk=export.pk)


@login_required
@require_POST
def share_revoke(request, pk: int):
    share = get_object_or_404(selectors.shares_visible_to(user=request.user), pk=pk)
    _result, ok = _service(request, shares.share_revoke, share=share, by=request.user,
                           motif=request.POST.get("motif", ""))
    if ok:
        messages.success(request, _("Partage révoqué : le lien ne fonctionne plus."))
    return redirect("export-detail", pk=share.export_id)


# --- Access requests (CSI R241-15, LIL 105 and 107, GDPR 12(3)) ---------------------------------------

def _ar_reader(request):
    if request.user.role not in selectors.ACCESS_REQUEST_READERS:
        raise PermissionDenied(_("Les demandes d'accès sont réservées au délégué à la protection des données et au "
                                 "maire."))


class AccessRequestForm(forms.Form):
    requester_name = forms.CharField(label=gettext_lazy("Identité du demandeur"), max_length=300)
    requester_contact = forms.CharField(label=gettext_lazy("Coordonnées"), max_length=500, required=False)
    identity_checked = forms.ChoiceField(label=gettext_lazy("Identité vérifiée"), widget=forms.RadioSelect,
                                         choices=[("yes", gettext_lazy("oui")), ("no", gettext_lazy("non"))])
    identity_check_method = forms.CharField(label=gettext_lazy("Comment"), max_length=500, required=False)
    # Issue 20: date inputs only accept ISO values (2026-12-07), whatever the language of the page.
    received_on = forms.DateField(label=gettext_lazy("Reçue le"),
                                  widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    description = forms.CharField(label=gettext_lazy("Demande (moment, lieu, agent)"),
                                  widget=forms.Textarea(attrs={"rows": 4}))
    window_start = forms.DateTimeField(label=gettext_lazy("Période : début"), required=False,
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                  format="%Y-%m-%dT%H:%M"))
    window_end = forms.DateTimeField(label=gettext_lazy("Période : fin"), required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"},
                                                                format="%Y-%m-%dT%H:%M"))
    lat = forms.FloatField(label=gettext_lazy("Lieu : latitude"), required=False)
    lon = forms.FloatField(label=gettext_lazy("Lieu : longitude"), required=False)
    radius_m = forms.IntegerField(label=gettext_lazy("Rayon (m)"), required=False, min_value=1, initial=200)
    officer = forms.CharField(label=gettext_lazy("Agent (matricule ou nom)"), max_length=100, required=False)


@login_required
def access_request_list(request):
    _ar_reader(request)
    show_all = request.GET.get("toutes") == "1"
    qs = (selectors.access_requests_visible_to(user=request.user).order_by("closed_at", "deadline", "id")
          if show_all else selectors.access_requests_open(user=request.user))
    return render(request, "disclosure/access_request_list.html", {
        "requests": qs[:500], "today": timezone.localdate(), "show_all": show_all,
        "can_handle": request.user.role in selectors.ACCESS_REQUEST_HANDLERS,
    })


@login_required
def access_request_create(request):
    _ar_reader(request)
    if request.user.role not in selectors.ACCESS_REQUEST_HANDLERS:
        raise PermissionDenied(_("Les demandes d'accès sont enregistrées par le délégué à la protection des données."))
    form = AccessRequestForm(request.POST or None, initial={"received_on": timezone.localdate()})
    if request.method == "POST":
        if not form.is_valid():
            _form_errors(request, form)
        else:
            d = form.cleaned_data
            place = [d["lat"], d["lon"]] if d.get("lat") is not None and d.get("lon") is not None else None
            r, ok = _service(request, access_requests.access_request_register, by=request.user,
                             requester_name=d["requester_name"], requester_contact=d["requester_contact"],
                             identity_checked=d["identity_checked"] == "yes",
                             identity_check_method=d["identity_check_method"], received_on=d["received_on"],
                             description=d["description"], window_start=d.get("window_start"),
                             window_end=d.get("window_end"), place=place, radius_m=d.get("radius_m"),
                             officer=d["officer"])
            if ok:
                messages.success(request, _("Demande enregistrée : réponse due le %(d)s.")
                                 % {"d": f"{r.deadline:%d/%m/%Y}"})
                return redirect("access-request-detail", pk=r.pk)
    return render(request, "disclosure/access_request_form.html", {"form": form})


@login_required
@rate_limit("access_request.search", setting="TEMOIN_RATE_ACCESS_REQUEST_SEARCH", source=searcher_of)
def access_request_detail(request, pk: int):
    _ar_reader(request)
    r = get_object_or_404(selectors.access_requests_visible_to(user=request.user), pk=pk)
    handler = request.user.role in selectors.ACCESS_REQUEST_HANDLERS
    candidates, criteria = None, None
    if handler and request.GET.get("rechercher") and r.closed_at is None:
        params = {k: v for k, v in request.GET.items() if k in ("lat", "lon", "radius_m", "officer")}
        tz = _tz(request.user)
        for name in ("start", "end"):
            if request.GET.get(name):
                try:
                    value = dt.datetime.fromisoformat(request.GET[name])
                except ValueError:
                    messages.error(request, _("Date et heure invalides."))
                    continue
                params[name] = (value if value.tzinfo else value.replace(tzinfo=tz)).isoformat()
        try:
            candidates, criteria = search_candidates(request_row=r, user=request.user, params=params)
        except Exception as exc:  # noqa: BLE001 - DRF validation errors from the shared helper
            detail = getattr(exc, "detail", None)
            if detail is None:
                raise
            messages.error(request, str(detail))
    derivatives = {}
    if r.decision in (AccessRequest.Decision.FULL, AccessRequest.Decision.PARTIAL):
        for rec in r.recordings.all():
            derivatives[rec.pk] = services.approved_derivative(rec, Redaction.OTHERS)
    selected = list(r.recordings.select_related("camera", "wearer"))
    grounds_basis, grounds = access_requests.access_request_grounds(r)
    from config.maps import access_request_map

    return render(request, "disclosure/access_request_detail.html", {
        "r": r, "map_data": access_request_map(r), "handler": handler, "today": timezone.localdate(), "candidates": candidates, "criteria": criteria,
        "selected": selected, "selected_ids": {x.pk for x in selected},
        "missing_copies": [rec for rec in selected if derivatives.get(rec.pk) is None] if derivatives else [],
        "decisions": AccessRequest.Decision.choices,
        "initial_deadline": access_requests.access_request_deadline(r.received_on),
        # Issue 22: the right of access by regime (CSI L253-5 for videoprotection images).
        "legal_basis": access_requests.access_request_legal_basis(r, translated=True),
        "ground_text": access_requests.access_request_ground_text(r),
        # The choices follow the regime of the selection: CSI L253-5's grounds for videoprotection images.
        "grounds_basis": grounds_basis, "grounds": grounds,
        "grounds_videoprotection": any(rec.regime == Regime.VIDEOPROTECTION for rec in selected),
        "exports": r.exports.all(), "tz": str(_tz(request.user)),
        "decision_draft": draft_take(request, f"ar-decision-{r.pk}"),
        "extend_draft": draft_take(request, f"ar-extend-{r.pk}"),
    })


def _ar_for_action(request, pk):
    _ar_reader(request)
    return get_object_or_404(selectors.access_requests_visible_to(user=request.user), pk=pk)


def _date(request, name):
    try:
        return dt.date.fromisoformat(request.POST.get(name, ""))
    except ValueError:
        return None


@login_required
@require_POST
def access_request_extend(request, pk: int):
    r = _ar_for_action(request, pk)
    _res, ok = _service(request, access_requests.access_request_extend, request=r, by=request.user,
                        notice_on=_date(request, "notice_on"), notice=request.POST.get("notice", ""))
    if ok:
        messages.success(request, _("Délai prolongé de deux mois."))
    else:
        draft_keep(request, f"ar-extend-{r.pk}", {k: request.POST.get(k, "") for k in ("notice_on", "notice")})
    return redirect("access-request-detail", pk=r.pk)


@login_required
@require_POST
def access_request_select(request, pk: int):
    r = _ar_for_action(request, pk)
    try:
        ids = [int(x) for x in request.POST.getlist("recordings")]
    except ValueError:
        ids = []
    recordings = list(access_request_search_base(user=request.user).filter(pk__in=ids))
    _res, ok = _service(request, access_requests.access_request_select, request=r, by=request.user, recordings=recordings)
    if ok:
        messages.success(request, _("Sélection enregistrée (%(n)s enregistrement(s)).") % {"n": len(recordings)})
    return redirect("access-request-detail", pk=r.pk)


@login_required
@require_POST
def access_request_decide(request, pk: int):
    r = _ar_for_action(request, pk)
    _res, ok = _service(request, access_requests.access_request_decide, request=r, by=request.user,
                        decision=request.POST.get("decision", ""), legal_ground=request.POST.get("legal_ground", ""),
                        note=request.POST.get("note", ""))
    if ok:
        messages.success(request, _("Décision enregistrée."))
    else:  # issue 20: the decision, its ground and the note typed are shown again, not lost
        draft_keep(request, f"ar-decision-{r.pk}",
                   {k: request.POST.get(k, "") for k in ("decision", "legal_ground", "note")})
    return redirect("access-request-detail", pk=r.pk)


@login_required
@require_POST
def access_request_copy(request, pk: int):
    r = _ar_for_action(request, pk)
    export, ok = _service(request, access_requests.access_request_copy, request=r, by=request.user)
    if ok:
        messages.success(request, _("Copie inscrite au registre ; le paquet est en préparation."))
        return redirect("export-detail", pk=export.pk)
    return redirect("access-request-detail", pk=r.pk)


@login_required
@require_POST
def access_request_deliver(request, pk: int):
    r = _ar_for_action(request, pk)
    _res, ok = _service(request, access_requests.access_request_deliver, request=r, by=request.user,
                        delivered_on=_date(request, "delivered_on"), means=request.POST.get("means", ""))
    if ok:
        messages.success(request, _("Remise enregistrée ; la demande est close."))
    return redirect("access-request-detail", pk=r.pk)
