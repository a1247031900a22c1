"""Retention by legal regime (issue 22): body-worn cameras and videoprotection images.

- Body-worn recordings (CSI L241-2, R241-13): one month from the day of recording, the
  organisation's period (``policy.py``, ``dates.retention_decide``); unchanged.
- Videoprotection images (CSI L251-1 ff.) that a partner hands over under a requisition: the
  period the prefectoral authorisation of the partner's system sets, **at most one month**
  (CSI L252-5), counted from the images' own time — the start of the period they cover, as the
  requisition states it — not from the upload. L252-5 keeps such images out of that period when
  they are used in a judicial inquiry: the requisition names its procedure, so images received
  after (or just before) their regime's end are not erased at receipt; they are kept
  ``TEMOIN_LATE_DOCKING_GRACE`` from receipt for the requisition's author to place a hold naming
  the procedure (the hold is what keeps them under the procedure, as for body-worn recordings,
  LEGAL.md rules 4 and 10). Without a hold they go at that end, and no later.
"""
from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _

from ..sources import Regime
from . import RetentionRefused
from .dates import RetentionDecision, _when, fixed_duration, retention_decide, retention_end, retention_period

# CSI L252-5: "ce délai ne peut excéder un mois".
VIDEOPROTECTION_MAX = "P1M"
# The longest a month lasts: a declared "P31D" or "P30D" is one month under the authorisation's
# wording; the end is then capped at one calendar month from the recording day all the same.
_LONGEST_MONTH_FROM = dt.datetime(2001, 1, 1)


def videoprotection_period_check(value: str) -> str:
    """The declared period of a partner's authorisation, or one month when none is given.

    Raises ValueError when malformed, RetentionRefused (French, citing L252-5) above one month.
    """
    value = (value or "").strip().upper() or VIDEOPROTECTION_MAX
    try:
        period = retention_period(value)
        too_long = _LONGEST_MONTH_FROM + period > _LONGEST_MONTH_FROM + retention_period(VIDEOPROTECTION_MAX)
    except OverflowError:  # years beyond the calendar: far above one month
        too_long = True
    if too_long:
        raise RetentionRefused(_(
            "Durée de conservation %(p)s refusée : les images de vidéoprotection sont conservées au plus un mois "
            "(CSI L252-5) ; indiquez la durée fixée par l'autorisation préfectorale du système du partenaire "
            "(par exemple P15D).") % {"p": value})
    return value


def videoprotection_end(*, images_from: dt.datetime, period: str, time_zone: str) -> dt.datetime:
    """The regime's end counted from the images' time: the declared period, never past one month."""
    return min(retention_end(recorded_at=images_from, period=period, time_zone=time_zone),
               retention_end(recorded_at=images_from, period=VIDEOPROTECTION_MAX, time_zone=time_zone))


def videoprotection_retention_decide(*, images_from: dt.datetime | None, received_at: dt.datetime, period: str,
                                     time_zone: str, grace: str | dt.timedelta) -> RetentionDecision:
    """The retention end of videoprotection images received at ``received_at`` (CSI L252-5)."""
    period = videoprotection_period_check(period)
    if images_from is None or images_from > received_at + dt.timedelta(days=1):
        # The images' time is unknown (or impossible): counted from receipt, the latest they can be from.
        end = videoprotection_end(images_from=received_at, period=period, time_zone=time_zone)
        return RetentionDecision(end, f"videoprotection {period} (CSI L252-5) from receipt (images' time unknown)")
    end = videoprotection_end(images_from=images_from, period=period, time_zone=time_zone)
    kept = received_at + fixed_duration(grace)
    if end >= kept:
        return RetentionDecision(end, f"videoprotection {period} (CSI L252-5) from the images' time "
                                      f"({_when(images_from, time_zone)})")
    return RetentionDecision(
        kept, f"videoprotection {period} (CSI L252-5) from the images' time ({_when(images_from, time_zone)}): "
              f"ended {_when(end, time_zone)}, received for a procedure — kept until {_when(kept, time_zone)} "
              f"for a hold naming it (L252-5: images used in a judicial inquiry)", late=end < received_at)


def requisition_retention_decide(*, requisition, received_at: dt.datetime, organisation,
                                 grace: str | dt.timedelta) -> RetentionDecision:
    """The retention end of a file received under ``requisition``, by its regime.

    Body-worn images from a partner keep the rule they had: no recording time Témoin can trust,
    so one organisation period from the upload (CSI R241-13).
    """
    if requisition.regime == Regime.VIDEOPROTECTION:
        return videoprotection_retention_decide(
            images_from=requisition.period_start, received_at=received_at,
            period=requisition.retention or VIDEOPROTECTION_MAX, time_zone=organisation.time_zone, grace=grace)
    return retention_decide(started_at=None, ingested_at=received_at, period=organisation.retention,
                            time_zone=organisation.time_zone)
