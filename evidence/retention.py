"""Retention ends (CSI L241-2, R241-13): erased one calendar month after the day of recording."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import isodate


def retention_period(value: str):
    """An ISO 8601 duration: P1M (France), P31D, P90D…; raises ValueError when malformed."""
    try:
        period = isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise ValueError(f"invalid retention period {value!r} (ISO 8601, e.g. P1M or P31D)") from exc
    if isinstance(period, dt.timedelta):
        positive = period > dt.timedelta(0)
    else:  # isodate.Duration with years/months
        base = dt.date(2000, 1, 1)
        positive = base + period > base
    if not positive:
        raise ValueError(f"retention period {value!r} must be positive")
    return period


def retention_end(*, recorded_at: dt.datetime, period: str, time_zone: str) -> dt.datetime:
    """Local midnight after the last day kept.

    CSI R241-13 counts from the day of recording: a recording made on 31 January with P1M is kept
    through 28 (or 29) February and is erasable from 1 March 00:00 local time.
    """
    tz = ZoneInfo(time_zone)
    day = recorded_at.astimezone(tz).date()
    last_day = day + retention_period(period)  # isodate clamps 31 Jan + 1 month to 28/29 Feb
    if isinstance(last_day, dt.datetime):
        last_day = last_day.date()
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time.min, tzinfo=tz)


def retention_basis_time(*, started_at: dt.datetime | None, ingested_at: dt.datetime, period: str) -> tuple[dt.datetime, str]:
    """The time retention counts from, and why.

    A camera clock that is wrong (years off, or in the future) must not get evidence erased at
    ingest: when the recording time is implausible, retention counts from the offload instead.
    """
    if started_at is None:
        return ingested_at, "offload time (recording time unknown)"
    earliest = ingested_at - (ingested_at.date() + retention_period(period) - ingested_at.date())
    if started_at > ingested_at + dt.timedelta(days=1) or started_at < earliest:
        return ingested_at, "offload time (recording time implausible)"
    return started_at, "recording time"
