"""The dashboard (tableau de bord), one per role. Thin: every figure comes from a selector."""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from django.http import HttpResponse

from . import annual, charts, selectors

ERASURE_WINDOW_HOURS = 72


@login_required
@require_GET
def dashboard(request):
    """Officer: their own figures. Supervisor, legal, DPO, mayor: the organisation's. Admin: the fleet."""
    user = request.user
    kind = selectors.dashboard_kind_for(user=user)
    if not kind:
        raise PermissionDenied(_("Votre compte n'est rattaché à aucune organisation."))
    now = timezone.now()
    context = {"kind": kind, "now": now, "zone": selectors.organisation_zone_for(user=user),
               "sessions": selectors.offloads_in_progress_for(user=user, now=now)}
    if kind == "fleet":
        # ARCHITECTURE.md §1: the technical administrator never sees media nor recording metadata.
        context["health"] = selectors.fleet_health_for(user=user, now=now)
        return render(request, "dashboard/dashboard.html", context)

    days = selectors.hours_per_day_for(user=user, now=now, days=30)
    title = _("Heures enregistrées par jour (30 derniers jours)") if kind != "officer" else \
        _("Mes heures enregistrées par jour (30 derniers jours)")
    context["hours_chart"] = charts.hours_chart(days, title=title)
    context["hours_total"] = sum(d.hours for d in days)
    if kind == "officer":
        # The officer's own recordings: the same count as their "to complete" queue.
        service = selectors.tagged_share_for_service_for(user=user)
    else:
        service, wearers = selectors.tagged_shares_for(user=user)
        context["wearer_chart"] = charts.tagged_share_chart(
            wearers, service=service,
            title=_("Part des enregistrements entièrement qualifiés : le service, puis chaque agent porteur"))
        context["health"] = selectors.fleet_health_for(user=user, now=now)
    context["service_share"] = service
    context["to_complete"] = service.to_complete
    context["erasures"] = selectors.erasures_outlook_for(user=user, now=now, hours=ERASURE_WINDOW_HOURS)
    # GDPR art. 12(3): the DPO sees the access requests' deadlines first (None for other roles).
    context["deadlines"] = selectors.access_request_deadlines_for(user=user, now=now)
    return render(request, "dashboard/dashboard.html", context)


@login_required
@require_GET
def dashboard_offloads(request):
    """The docks-and-offloads panel alone: htmx refreshes it in place every few seconds."""
    if not selectors.dashboard_kind_for(user=request.user):
        raise PermissionDenied(_("Votre compte n'est rattaché à aucune organisation."))
    now = timezone.now()
    return render(request, "dashboard/_offloads.html", {
        "sessions": selectors.offloads_in_progress_for(user=request.user, now=now), "now": now,
    })


@login_required
@require_GET
def annual_summary(request):
    """The mayor's yearly summary, by month, with a chart; ``?format=pdf`` downloads it."""
    today = timezone.localdate()
    try:
        year = int(request.GET.get("annee") or today.year)
    except ValueError:
        year = today.year
    year = min(max(year, 2000), today.year)
    try:
        summary = annual.annual_summary_for(user=request.user, year=year)
    except PermissionError as exc:
        raise PermissionDenied(_("Le bilan annuel est destiné au maire.")) from exc
    if request.GET.get("format") == "pdf":
        generated = timezone.localtime(timezone.now(), selectors.organisation_zone_for(user=request.user))
        response = HttpResponse(annual.annual_summary_pdf(summary, generated=generated.strftime("%d/%m/%Y %H:%M")),
                                content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="bilan-annuel-{year}.pdf"'
        return response
    return render(request, "dashboard/annual_summary.html", {
        "s": summary, "chart": annual.annual_chart(summary), "columns": annual.COLUMNS,
        "years": annual.summary_year_choices(today=today),
    })
