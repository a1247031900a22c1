"""Pages of the journal de traçabilité: the register, its exports, the custody report of a recording,
the integrity page with its alerts, the public key. Thin: reads go through audit.selectors."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _, gettext_lazy
from django.views.decorators.http import require_POST

from evidence.access.selectors import recordings_visible_to

from . import pdf, selectors, services
from .register import REGISTER_KINDS, register_kind_of
from .spreadsheet import csv_writer, row_neutralise
from .integrations import signing

PDF_MAX_ROWS = 5000


def _tz(user) -> ZoneInfo:
    org = getattr(user, "organisation", None)
    return ZoneInfo(org.time_zone if org is not None and org.time_zone else "Europe/Paris")


# --- Register ---------------------------------------------------------------------------------

class RegisterFilters(forms.Form):
    du = forms.DateField(required=False, label=gettext_lazy("Du"))
    au = forms.DateField(required=False, label=gettext_lazy("Au (inclus)"))
    auteur = forms.CharField(required=False, max_length=100, label=gettext_lazy("Auteur"))
    enregistrement = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                        label=gettext_lazy("Enregistrement n°"))
    nature = forms.ChoiceField(required=False, label=gettext_lazy("Nature"),
                               choices=[("", gettext_lazy("toutes"))] + list(REGISTER_KINDS.items()))

    def selector_kwargs(self, tz) -> dict:
        d = self.cleaned_data
        since = dt.datetime.combine(d["du"], dt.time(), tzinfo=tz) if d.get("du") else None
        until = dt.datetime.combine(d["au"] + dt.timedelta(days=1), dt.time(), tzinfo=tz) if d.get("au") else None
        return {"kind": d.get("nature") or "", "since": since, "until": until, "author": d.get("auteur") or "",
                "recording_id": d.get("enregistrement")}

    def describe(self) -> str:
        d = self.cleaned_data
        parts = []
        if d.get("du"):
            parts.append(_("du %(date)s") % {"date": f"{d['du']:%d/%m/%Y}"})
        if d.get("au"):
            parts.append(_("au %(date)s") % {"date": f"{d['au']:%d/%m/%Y}"})
        if d.get("auteur"):
            parts.append(_("auteur « %(author)s »") % {"author": d["auteur"]})
        if d.get("enregistrement"):
            parts.append(_("enregistrement n° %(n)s") % {"n": d["enregistrement"]})
        if d.get("nature"):
            parts.append(_("nature %(kind)s") % {"kind": REGISTER_KINDS[d["nature"]]})
        return ", ".join(parts)


def _register_query(request):
    if not selectors.register_can_read(request.user):
        raise PermissionDenied("registre réservé au maire, au délégué à la protection des données et au service "
                               "juridique (CSI R241-14)")
    form = RegisterFilters(request.GET)
    tz = _tz(request.user)
    if not form.is_valid():
        return form, selectors.register_entries_visible_to(user=request.user).none(), tz
    return form, selectors.register_entries_visible_to(user=request.user, **form.selector_kwargs(tz)), tz


def register_row(event, tz) -> dict:
    return {
        "seq": event.seq,
        "when": event.occurred_at.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S"),
        "author": selectors.author_name(event),
        "kind": str(REGISTER_KINDS.get(register_kind_of(event.action), "")),
        "action": event.action_label,
        "recording": event.recording_id,
        "motif": event.motif,
        "recipients": ", ".join(map(str, event.recipients or [])),
        "details": selectors.details_summary(event.details),
        "hash": event.hash,
    }


@login_required
def register(request):
    form, qs, tz = _register_query(request)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/register.html", {
        "form": form, "page": page, "rows": [register_row(e, tz) for e in page.object_list],
        "query": query.urlencode(), "tz": str(tz),
    })


class _Echo:
    def write(self, value):
        return value


@login_required
def register_export(request, fmt: str):
    form, qs, tz = _register_query(request)
    filters = {k: str(v) for k, v in getattr(form, "cleaned_data", {}).items() if v not in (None, "")}
    count = qs.count()
    services.register_export_record(user=request.user, fmt=fmt, filters=filters, count=count)
    stamp = timezone.now().astimezone(tz)
    name = f"registre-{request.user.organisation.slug}-{stamp:%Y%m%d-%H%M}"
    if fmt == "csv":
        header = [_("n°"), _("date et heure"), _("fuseau"), _("auteur"), _("nature"), _("opération"), _("action"),
                  _("enregistrement"), _("motif"), _("destinataires"), _("précisions"), _("empreinte")]

        language = translation.get_language()

        def lines():
            # Motifs and recipients are typed by users: no cell may reach a spreadsheet as a formula.
            writer = csv_writer(_Echo(), delimiter=";")
            yield "\ufeff" + writer.writerow(header)  # BOM: spreadsheets then read UTF-8
            for event in qs.iterator(chunk_size=2000):
                # The rows are written after the view has returned: in the requester's language still.
                with translation.override(language):
                    r = register_row(event, tz)
                yield writer.writerow(row_neutralise([
                    r["seq"], r["when"], str(tz), r["author"], r["kind"], r["action"], event.action,
                    r["recording"] or "", r["motif"], r["recipients"], r["details"], r["hash"]]))

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    rows = [register_row(e, tz) for e in qs[:PDF_MAX_ROWS]]
    body = pdf.register_pdf(rows=rows, organisation=request.user.organisation.name,
                            generated=_("%(when)s par %(author)s") % {
                                "when": f"{stamp:%d/%m/%Y %H:%M}",
                                "author": request.user.get_full_name() or request.user.username},
                            filters=form.describe() if form.is_valid() else "",
                            truncated=max(0, count - PDF_MAX_ROWS))
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response


# --- Custody report of one recording ------------------------------------------------------------

@login_required
def recording_custody(request, pk: int):
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    report = selectors.recording_custody_report(recording=recording, user=request.user)
    return render(request, "audit/recording_custody.html", {"r": recording, "report": report})


@login_required
def recording_custody_pdf(request, pk: int):
    recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
    report = selectors.recording_custody_report(recording=recording, user=request.user)
    response = HttpResponse(pdf.custody_report_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="tracabilite-enregistrement-{recording.pk}.pdf"'
    return response


# --- Integrity of the journal, alerts ------------------------------------------------------------

def _journal_reader(request):
    if not selectors.journal_can_read(request.user):
        raise PermissionDenied("réservé à l'administrateur technique, au maire et au délégué à la protection "
                               "des données")


@login_required
def journal(request):
    _journal_reader(request)
    alerts = selectors.alerts_visible_to(user=request.user)
    return render(request, "audit/journal.html", {
        "alerts": alerts[:100], "open_alerts": alerts.filter(acknowledged_at__isnull=True).count(),
        "verifications": selectors.verifications_recent(user=request.user),
        "checkpoints": selectors.checkpoints_recent(), "tz": str(_tz(request.user)),
    })


@login_required
@require_POST
def journal_verify(request):
    _journal_reader(request)
    services.custody_verify(triggered_by=f"user:{request.user.username}")
    return redirect("custody-journal")


@login_required
@require_POST
def alert_acknowledge(request, pk: int):
    _journal_reader(request)
    alert = get_object_or_404(selectors.alerts_visible_to(user=request.user), pk=pk)
    services.alert_acknowledge(alert=alert, by=request.user, note=request.POST.get("note", "")[:2000])
    return redirect("custody-journal")


# --- Compliance: the legal invariants, for the DPO and the mayor ---------------------------------------

def _compliance_reader(request):
    if not selectors.compliance_can_read(request.user):
        raise PermissionDenied("réservé au maire, au délégué à la protection des données et à l'administrateur "
                               "technique")


@login_required
def compliance(request):
    from .compliance.invariants import INVARIANTS

    _compliance_reader(request)
    audit, violations = selectors.compliance_latest(user=request.user)
    failing = {v["rule"] for v in violations}
    alerts = selectors.alerts_visible_to(user=request.user).filter(kind__in=["compliance", "erasure_failed"])
    return render(request, "audit/compliance.html", {
        "audit": audit, "violations": violations[:500], "more": max(0, len(violations) - 500),
        "rules": [{"id": i.id, "title": i.title, "articles": i.articles, "holds": i.id not in failing}
                  for i in INVARIANTS],
        "alerts": alerts.filter(acknowledged_at__isnull=True)[:100], "tz": str(_tz(request.user)),
    })


@login_required
@require_POST
def compliance_run(request):
    from .tasks import compliance_audit

    _compliance_reader(request)
    try:
        compliance_audit.apply_async(queue="media")
        messages.success(request, _("Contrôle de conformité demandé : le résultat s'affiche ici dès qu'il est fini."))
    except Exception:  # noqa: BLE001 - the broker being down is shown, nothing else happens
        messages.error(request, _("Le contrôle n'a pas pu être demandé (file de tâches indisponible)."))
    return redirect("compliance")


@login_required
def compliance_report(request, fmt: str):
    from .compliance.pdf import compliance_report_pdf
    from .compliance.services import compliance_report as report

    _compliance_reader(request)
    audit, _violations = selectors.compliance_latest(user=request.user)
    if audit is None or request.user.organisation_id is None:
        raise Http404("aucun contrôle de conformité")
    document = report(audit=audit, organisation=request.user.organisation, by=request.user)
    stamp = audit.checked_at.strftime("%Y%m%d")
    if fmt == "pdf":
        response = HttpResponse(compliance_report_pdf(document), content_type="application/pdf")
    else:
        response = HttpResponse(json.dumps(document, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="temoin-conformite-{request.user.organisation.slug}-'
                                       f'{stamp}.{fmt}"')
    return response


# --- Public key (no login: anyone may check a checkpoint) -------------------------------------------

def public_key(request):
    key = signing.private_key(create=True).public_key()
    return render(request, "audit/public_key.html", {
        "pem": signing.public_key_pem(key), "fingerprint": signing.key_id(key),
        # Counts and times of checkpoints say how busy the service is: only for signed-in users.
        "checkpoints": selectors.checkpoints_recent(limit=5) if request.user.is_authenticated else [],
    })


def public_key_pem(request):
    key = signing.private_key(create=True).public_key()
    response = HttpResponse(signing.public_key_pem(key), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'inline; filename="temoin-custody-ed25519.pub.pem"'
    return response
