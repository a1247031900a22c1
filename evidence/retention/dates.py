"""Retention ends (CSI L241-2, R241-13): erased one calendar month after the day of recording,
counted from a recording time that can be trusted (CSI R241-10)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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


def fixed_duration(value: str | dt.timedelta) -> dt.timedelta:
    """A setting such as P3D or PT2H as a timedelta (no months or years: they have no fixed length)."""
    if isinstance(value, dt.timedelta):
        return value
    try:
        period = isodate.parse_duration(value)
    except (isodate.ISO8601Error, ValueError) as exc:
        raise ValueError(f"invalid duration {value!r} (ISO 8601 in days, hours or minutes, e.g. P3D or PT2H)") from exc
    if not isinstance(period, dt.timedelta) or period < dt.timedelta(0):
        raise ValueError(f"invalid duration {value!r}: days, hours or minutes only, not negative")
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


# --- Which time retention counts from, decided on what the docking tells of the camera's clock ----

# A camera clock within this of the dock's is right; DEVICE.json times and file times are whole seconds.
CLOCK_TOLERANCE = dt.timedelta(minutes=5)
# A clip recorded after the previous docking may carry a time a little before it (clock drift,
# a recording running while the camera was put on its dock).
PREVIOUS_DOCKING_TOLERANCE = dt.timedelta(days=1)


@dataclass(frozen=True)
class CameraClock:
    """What one docking tells of the camera's clock (CSI R241-10: the times must be right).

    ``offset``: the camera's clock minus the dock's, when the camera gave its own time (DEVICE.json
    ``clock``) or when its newest clip ended shortly before the docking. ``previous_docking``: when
    the camera was last offloaded completely; a clip never seen before was recorded after it.
    ``source`` says which: "device_clock", "newest_clip", "axis_system" or "" (nothing to go on).
    """

    source: str = ""
    offset: dt.timedelta | None = None
    previous_docking: dt.datetime | None = None

    @property
    def checked(self) -> bool:
        return self.offset is not None

    def for_clip(self, started_at: dt.datetime | None, file_time: dt.datetime | None) -> "CameraClock":
        """The clock as it vouches for one clip. A newest clip's file time proves the clock right only
        for clips whose own recorded time (sidecar, container) agrees with their file time: a clip
        dated 2011 in a file written yesterday says nothing true of when it was recorded."""
        if (self.source == "newest_clip" and started_at is not None and file_time is not None
                and abs(file_time - started_at) > PREVIOUS_DOCKING_TOLERANCE):
            return CameraClock(previous_docking=self.previous_docking)
        return self

    def as_dict(self) -> dict:
        return {"source": self.source,
                "offset_seconds": self.offset.total_seconds() if self.offset is not None else None,
                "previous_docking": self.previous_docking.isoformat() if self.previous_docking else None}

    @classmethod
    def from_dict(cls, data: dict | None) -> "CameraClock":
        data = data or {}
        offset = data.get("offset_seconds")
        previous = data.get("previous_docking")
        return cls(source=data.get("source", ""),
                   offset=dt.timedelta(seconds=offset) if offset is not None else None,
                   previous_docking=dt.datetime.fromisoformat(previous) if previous else None)


@dataclass(frozen=True)
class RetentionDecision:
    retain_until: dt.datetime
    basis: str  # the text shown beside the date and logged at collection
    late: bool = False  # docked after its legal retention end: kept only for a decision


def _when(value: dt.datetime, time_zone: str) -> str:
    return value.astimezone(ZoneInfo(time_zone)).strftime("%d/%m/%Y %H:%M")


def retention_decide(*, started_at: dt.datetime | None, ingested_at: dt.datetime, period: str, time_zone: str,
                     clock: CameraClock | None = None, late_grace: str | dt.timedelta = dt.timedelta(days=3),
                     new_clip: bool = True) -> RetentionDecision:
    """The retention end of a recording collected at ``ingested_at`` (CSI L241-2, R241-13).

    Retention counts from the true recording time. When the camera's clock was measured off, the
    time is corrected by that offset; when it is known to be wrong but not by how much (dated in
    the future, or before the previous complete docking although never seen then), or cannot be
    checked at all, retention counts from the offload, so that evidence is never erased at ingest
    because of a camera's clock. A recording whose time is right and whose month is already over
    (a camera docked late) is due: it is kept ``late_grace`` for a supervisor to place a hold if a
    procedure needs it, and then erased, visibly (the decision is in the basis text and the log).
    """
    clock = clock or CameraClock()
    if started_at is None:
        return RetentionDecision(_end(ingested_at, period, time_zone), "offload time (recording time unknown)")
    true_start, note = started_at, ""
    if clock.offset is not None and abs(clock.offset) > CLOCK_TOLERANCE:
        true_start = started_at - clock.offset
        note = (f"; camera clock {'ahead' if clock.offset > dt.timedelta(0) else 'behind'} by "
                f"{_duration(abs(clock.offset))} ({clock.source}): recorded at {_when(true_start, time_zone)}")
    if true_start > ingested_at + dt.timedelta(days=1):
        return RetentionDecision(_end(ingested_at, period, time_zone),
                                 f"offload time (camera clock ahead: recording dated {_when(started_at, time_zone)})")
    if (clock.offset is None and new_clip and clock.previous_docking is not None
            and true_start < clock.previous_docking - PREVIOUS_DOCKING_TOLERANCE):
        return RetentionDecision(_end(ingested_at, period, time_zone),
                                 f"offload time (camera clock behind: recording dated {_when(started_at, time_zone)}, "
                                 f"after the previous docking of {_when(clock.previous_docking, time_zone)})")
    legal_end = _end(true_start, period, time_zone)
    if legal_end > ingested_at:
        return RetentionDecision(legal_end, "recording time" + note)
    if not clock.checked:
        # Nothing says the clock is right: a clip dated more than a month ago may be yesterday's.
        return RetentionDecision(_end(ingested_at, period, time_zone),
                                 f"offload time (recording dated {_when(started_at, time_zone)}, camera clock could "
                                 f"not be checked)")
    kept = ingested_at + fixed_duration(late_grace)
    return RetentionDecision(
        kept, f"recording time{note} — docked after its retention end of {_when(legal_end, time_zone)}: "
              f"kept until {_when(kept, time_zone)} for a decision (hold if a procedure needs it)", late=True)


def _end(recorded_at: dt.datetime, period: str, time_zone: str) -> dt.datetime:
    return retention_end(recorded_at=recorded_at, period=period, time_zone=time_zone)


def _duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
