"""Geometry of the dashboard's charts, rendered as inline SVG by the templates.

No JavaScript and no style attributes (a Content-Security-Policy without 'unsafe-inline' applies):
positions are SVG attributes, colours are classes in dashboard/dashboard.css. Every chart has a
title, a description and the same figures as a table for screen readers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .selectors import DayHours, TaggedShare

# Below this share of fully tagged recordings a bar is drawn as a warning.
TAGGED_TARGET = 0.9


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^n that is >= value (an axis maximum a person reads easily)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10 ** exponent
        if candidate >= value - 1e-12:
            return float(candidate)
    return float(10 ** (exponent + 1))


def _tick_steps(top_value: float) -> int:
    """Intervals that divide the axis into round values: 5 → 0, 1, …, 5; 2.5 → 0, 0.5, …; 2 → 0, 0.5, …; 10 → 0, 2, …"""
    mantissa = round(top_value / 10 ** math.floor(math.log10(top_value)), 2)
    return {2.0: 4}.get(mantissa, 5)


def _number(value: float, decimals: int = 1) -> str:
    return number_format(round(value, decimals), decimal_pos=decimals if value % 1 else 0)


def _distinct_decimals(values: Sequence[float]) -> int:
    """The fewest decimals that keep every tick label different (an officer's 5 minutes a day gave an
    axis of 0 to 0.1 h whose ticks all read "0,0", issue 20)."""
    for decimals in range(1, 4):
        if len({round(v, decimals) for v in values}) == len(values):
            return decimals
    return 3


@dataclass(frozen=True)
class Tick:
    pos: float  # y for the vertical axis, x for the horizontal one
    label: str


@dataclass(frozen=True)
class VBar:
    x: float
    y: float
    width: float
    height: float
    label: str  # full text for the tooltip and the data table
    css: str = "bar"


@dataclass
class VerticalBarChart:
    title: str
    desc: str
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    plot_height: float
    bars: list[VBar] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    x_title: str = ""
    y_title: str = ""
    rows: list[tuple[str, str]] = field(default_factory=list)  # (label, value) for the data table

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def x_title_x(self) -> float:
        return self.left + self.plot_width / 2

    @property
    def y_title_y(self) -> float:
        return self.top + self.plot_height / 2

    @property
    def y_label_x(self) -> float:
        return self.left - 6

    @property
    def x_label_y(self) -> float:
        return self.bottom + 16

    @property
    def x_title_y(self) -> float:
        return self.height - 4


def hours_chart(days: Sequence[DayHours], *, title: str, width: int = 720, height: int = 250) -> VerticalBarChart:
    """Bar chart of hours recorded per day, with an hour axis and a date every few days."""
    left, top, right_pad, bottom_pad = 52, 14, 10, 46
    plot_w, plot_h = width - left - right_pad, height - top - bottom_pad
    peak = max((d.hours for d in days), default=0.0)
    top_value = nice_ceiling(peak)
    total_hours = sum(d.hours for d in days)
    total_recordings = sum(d.recordings for d in days)
    desc = ngettext(
        "%(hours)s heures enregistrées en %(n)d jour (%(count)s enregistrements), au plus %(peak)s h en un jour.",
        "%(hours)s heures enregistrées en %(n)d jours (%(count)s enregistrements), au plus %(peak)s h en un jour.",
        len(days),
    ) % {"hours": _number(total_hours), "n": len(days), "count": number_format(total_recordings),
         "peak": _number(peak)}
    chart = VerticalBarChart(title=title, desc=desc, width=width, height=height, left=left, top=top,
                             plot_width=plot_w, plot_height=plot_h, x_title=_("Jour"), y_title=_("Heures"))
    steps = _tick_steps(top_value)
    values = [top_value * i / steps for i in range(steps + 1)]
    decimals = _distinct_decimals(values)
    for i, value in enumerate(values):
        chart.y_ticks.append(Tick(pos=top + plot_h - plot_h * i / steps, label=_number(value, decimals)))
    if not days:
        return chart
    slot = plot_w / len(days)
    bar_w = max(slot * 0.72, 1.0)
    label_every = max(1, math.ceil(len(days) / 8))
    for i, d in enumerate(days):
        h = plot_h * d.hours / top_value
        x = left + i * slot + (slot - bar_w) / 2
        day = date_format(d.day, "SHORT_DATE_FORMAT")
        text = ngettext("%(day)s : %(hours)s h (%(n)d enregistrement)", "%(day)s : %(hours)s h (%(n)d enregistrements)",
                        d.recordings) % {"day": day, "hours": _number(d.hours, 2), "n": d.recordings}
        css = "bar" if d.day.weekday() < 5 else "bar bar-weekend"
        chart.bars.append(VBar(x=round(x, 2), y=round(top + plot_h - h, 2), width=round(bar_w, 2),
                               height=round(h, 2), label=text, css=css))
        chart.rows.append((day, _("%(hours)s h (%(n)d)") % {"hours": _number(d.hours, 2), "n": d.recordings}))
        # Dates read from the most recent day backwards, so that "today" is always labelled.
        if (len(days) - 1 - i) % label_every == 0:
            chart.x_ticks.append(Tick(pos=round(left + i * slot + slot / 2, 2), label=date_format(d.day, "d/m")))
    return chart


@dataclass(frozen=True)
class HBar:
    y: float
    width: float
    height: float
    label: str
    value_label: str
    detail: str
    css: str

    @property
    def text_y(self) -> float:
        return round(self.y + self.height / 2 + 4, 2)


@dataclass
class HorizontalBarChart:
    title: str
    desc: str
    width: int
    height: int
    left: int
    top: int
    plot_width: float
    bar_height: float
    bars: list[HBar] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    x_title: str = ""

    @property
    def bottom(self) -> float:
        return self.height - 34

    @property
    def right(self) -> float:
        return self.left + self.plot_width

    @property
    def label_x(self) -> float:
        return self.left - 8

    @property
    def value_x(self) -> float:
        return self.left + self.plot_width + 8

    @property
    def x_title_x(self) -> float:
        return self.left + self.plot_width / 2

    @property
    def x_label_y(self) -> float:
        return self.bottom + 14

    @property
    def x_title_y(self) -> float:
        return self.height - 4

    @property
    def target_x(self) -> float:
        return round(self.left + self.plot_width * TAGGED_TARGET, 2)


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tagged_share_chart(shares: Sequence[TaggedShare], *, title: str, service: TaggedShare | None = None,
                       width: int = 720) -> HorizontalBarChart:
    """Horizontal bars: share of recordings fully tagged, the whole service first, then one bar per wearer."""
    left, top, right_pad, row = 230, 10, 130, 30
    height_rows = len(shares) + (1 if service else 0)
    height = top + row * max(height_rows, 1) + 40
    plot_w = width - left - right_pad
    total = service.total if service else sum(s.total for s in shares)
    tagged = service.tagged if service else sum(s.tagged for s in shares)
    shares = ([service] if service else []) + list(shares)
    desc = (_("%(tagged)s enregistrements sur %(total)s sont entièrement qualifiés (%(share)s %%).")
            % {"tagged": number_format(tagged), "total": number_format(total),
               "share": _number(100 * tagged / total if total else 0)})
    chart = HorizontalBarChart(title=title, desc=desc, width=width, height=height, left=left, top=top,
                               plot_width=plot_w, bar_height=round(row * 0.6, 2), x_title=_("Part entièrement qualifiée (%)"))
    for pct in (0, 25, 50, 75, 100):
        chart.x_ticks.append(Tick(pos=round(left + plot_w * pct / 100, 2), label=f"{pct}"))
    for i, s in enumerate(shares):
        css = "hbar" if s.share >= TAGGED_TARGET else "hbar hbar-low"
        if service is not None and i == 0:
            css += " hbar-service"
        detail = (_("%(label)s : %(tagged)s sur %(total)s entièrement qualifiés, %(todo)s à compléter")
                  % {"label": s.label, "tagged": number_format(s.tagged), "total": number_format(s.total),
                     "todo": number_format(s.to_complete)})
        chart.bars.append(HBar(y=round(top + i * row + row * 0.2, 2), width=round(plot_w * s.share, 2),
                               height=round(row * 0.6, 2),
                               label=_shorten(s.label), value_label=f"{_number(100 * s.share)} % ({s.tagged}/{s.total})",
                               detail=detail, css=css))
    return chart
