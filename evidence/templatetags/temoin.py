"""Template filters for words people read (issue 20: "P1M" was shown raw)."""
from __future__ import annotations

import datetime as dt

from django import template
from django.utils.translation import ngettext

from evidence.retention.dates import retention_period

register = template.Library()


@register.filter
def period_words(value: str) -> str:
    """An ISO 8601 retention period in words: P1M → "1 mois", P31D → "31 jours", P1Y → "1 an"."""
    try:
        period = retention_period(value)
    except (TypeError, ValueError):
        return value
    parts = []
    if isinstance(period, dt.timedelta):
        days, hours = period.days, period.seconds // 3600
    else:
        years, months = int(period.years), int(period.months)
        days, hours = period.tdelta.days, period.tdelta.seconds // 3600
        if years:
            parts.append(ngettext("%(n)d an", "%(n)d ans", years) % {"n": years})
        if months:
            parts.append(ngettext("%(n)d mois", "%(n)d mois", months) % {"n": months})
    if days:
        parts.append(ngettext("%(n)d jour", "%(n)d jours", days) % {"n": days})
    if hours:
        parts.append(ngettext("%(n)d heure", "%(n)d heures", hours) % {"n": hours})
    return " ".join(parts) or value
