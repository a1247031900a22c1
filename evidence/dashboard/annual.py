"""The mayor's yearly summary (issue 20): recordings, consultations, extractions, access requests and
erasures of one year, by month, for the mayor's own organisation.

The mayor answers for the processing to the council and to the CNIL (CSI L241-1 and R241-8: the
mayor's request to the prefect; CSI R241-14 / LIL 101: the register of consultations, extractions and
erasures). Every figure is a selector scoped to the organisation; the PDF uses reportlab, as the
register and the custody report do.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count
from django.db.models.functions import ExtractMonth
from django.utils.formats import date_format
from django.utils.translation import gettext as _, gettext_lazy

from accounts.models import Role, User
from audit.models import CustodyEvent

from .charts import Tick, VBar, VerticalBarChart, _tick_steps, nice_ceiling
from .selectors import organisation_zone_for

# (key, column title) in the order of the page, the table and the PDF; the PDF follows the requester's
# language (issue 20).
COLUMNS = [("recordings", gettext_lazy("Enregistrements")), ("consultations", gettext_lazy("Consultations")),
           ("extractions", gettext_lazy("Extractions")), ("access_requests", gettext_lazy("Demandes d'accès")),
           ("erasures", gettext_lazy("Effacements"))]
SUMMARY_READERS = {Role.MAYOR}


@dataclass
class AnnualSummary:
    organisation: str
    year: int
    zone: str
    months: list[dict] = field(default_factory=list)  # {"month": 1..12, "name": "janvier", key: count...}
    totals: dict = field(default_factory=dict)


def summary_year_choices(*, today: dt.date) -> list[int]:
    return list(range(today.year, today.year - 6, -1))


def annual_summary_for(*, user: User, year: int) -> AnnualSummary:
    """The yearly figures of the user's organisation; only the mayor reads them (PermissionError)."""
    from evidence.disclosure.models import AccessRequest
    from evidence.models import Recording

    if (not user.is_authenticated or not user.is_active or user.role not in SUMMARY_READERS
            or user.organisation_id is None):
        raise PermissionError("le bilan annuel est destiné au maire de l'organisation")
    org_id = user.organisation_id
    zone = organisation_zone_for(user=user)
    start = dt.datetime(year, 1, 1, tzinfo=zone)
    end = dt.datetime(year + 1, 1, 1, tzinfo=zone)

    def per_month(qs, field_name: str, *, date_field: bool = False) -> dict[int, int]:
        month = ExtractMonth(field_name) if date_field else ExtractMonth(field_name, tzinfo=zone)
        return dict(qs.annotate(m=month).values("m").annotate(n=Count("pk")).values_list("m", "n"))

    events = CustodyEvent.objects.filter(organisation_id=org_id, occurred_at__gte=start, occurred_at__lt=end)
    counts = {
        "recordings": per_month(Recording.objects.filter(organisation_id=org_id, started_at__gte=start,
                                                         started_at__lt=end), "started_at"),
        # CSI R241-14: the register's own entries, one per recording consulted, extracted, erased.
        "consultations": per_month(events.filter(action="recording.consulted"), "occurred_at"),
        "extractions": per_month(events.filter(action="recording.extracted"), "occurred_at"),
        "access_requests": per_month(AccessRequest.objects.filter(organisation_id=org_id, received_on__year=year),
                                     "received_on", date_field=True),
        "erasures": per_month(events.filter(action="recording.erased"), "occurred_at"),
    }
    summary = AnnualSummary(organisation=user.organisation.name, year=year, zone=zone.key)
    for m in range(1, 13):
        first = dt.date(year, m, 1)
        # "short": the chart's axis, abbreviated as the language does ("janv.", "févr." / "Jan.", "Feb.").
        summary.months.append({"month": m, "name": date_format(first, "F"), "short": date_format(first, "N"),
                               **{k: counts[k].get(m, 0) for k, _t in COLUMNS}})
    summary.totals = {k: sum(row[k] for row in summary.months) for k, _t in COLUMNS}
    return summary


def annual_chart(summary: AnnualSummary, *, width: int = 720, height: int = 250) -> VerticalBarChart:
    """Recordings per month (the page's table and the PDF give the other figures)."""
    left, top, right_pad, bottom_pad = 52, 14, 10, 46
    plot_w, plot_h = width - left - right_pad, height - top - bottom_pad
    values = [row["recordings"] for row in summary.months]
    top_value = max(nice_ceiling(max(values, default=0)), 1)
    chart = VerticalBarChart(
        title=_("Enregistrements par mois (%(year)d)") % {"year": summary.year},
        desc=_("%(n)d enregistrements en %(year)d, au plus %(peak)d en un mois.") % {
            "n": summary.totals["recordings"], "year": summary.year, "peak": max(values, default=0)},
        width=width, height=height, left=left, top=top, plot_width=plot_w, plot_height=plot_h,
        x_title=_("Mois"), y_title=_("Enregistrements"))
    steps = _tick_steps(top_value)
    for i in range(steps + 1):
        chart.y_ticks.append(Tick(pos=top + plot_h - plot_h * i / steps, label=str(round(top_value * i / steps))))
    slot = plot_w / 12
    bar_w = slot * 0.72
    for i, row in enumerate(summary.months):
        h = plot_h * row["recordings"] / top_value
        chart.bars.append(VBar(x=round(left + i * slot + (slot - bar_w) / 2, 2), y=round(top + plot_h - h, 2),
                               width=round(bar_w, 2), height=round(h, 2),
                               label=f"{row['name']} : {row['recordings']}"))
        chart.rows.append((row["name"], str(row["recordings"])))
        chart.x_ticks.append(Tick(pos=round(left + i * slot + slot / 2, 2), label=row["short"]))
    return chart


def annual_summary_pdf(summary: AnnualSummary, *, generated: str) -> bytes:
    """The summary as an A4 PDF (reportlab, through audit.pdf's fonts and layout)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer, Table, TableStyle

    from audit.pdf import _build, _styles, fonts, p

    s = _styles()
    regular, bold, _mono = fonts()
    story = [p(_("Bilan annuel %(year)s — caméras-piétons") % {"year": summary.year}, s["title"]),
             p(_("%(organisation)s · heure de %(zone)s · édité le %(generated)s") % {
                 "organisation": summary.organisation, "zone": summary.zone, "generated": generated}, s["body"]),
             p(_("Enregistrements réalisés, consultations, extractions et effacements inscrits au registre "
                 "(CSI R241-14), demandes d'accès reçues (CSI R241-15, RGPD art. 15)."), s["small"]),
             Spacer(1, 4 * mm)]
    header = [_("Mois")] + [str(title) for _k, title in COLUMNS]
    data = [header] + [[row["name"]] + [str(row[k]) for k, _t in COLUMNS] for row in summary.months]
    data.append([_("Total")] + [str(summary.totals[k]) for k, _t in COLUMNS])
    table = Table(data, colWidths=[30 * mm] + [31 * mm] * len(COLUMNS), repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), regular), ("FONTSIZE", (0, 0), (-1, -1), 8.5),
        ("FONTNAME", (0, 0), (-1, 0), bold), ("FONTNAME", (0, -1), (-1, -1), bold),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#5b6575")),
        ("LINEABOVE", (0, -1), (-1, -1), 0.6, colors.HexColor("#5b6575")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f3f5f8")]),
    ]))
    story.append(table)
    return _build(story, pagesize=A4, title=_("Bilan annuel %(year)s") % {"year": summary.year},
                  footer=_("Témoin · %(organisation)s · bilan annuel %(year)s") % {
                      "organisation": summary.organisation, "year": summary.year})
