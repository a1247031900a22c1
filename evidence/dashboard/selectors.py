"""Reads behind the dashboard, always scoped to the requesting user (CSI R241-12, ARCHITECTURE.md §1).

Anything about recordings starts from ``recordings_visible_to``: the wearer gets their own figures,
supervisors, legal staff, DPO and mayor their organisation's, the technical administrator nothing
(an empty queryset). Figures are aggregated by the database (one grouped query per chart), so
that the page costs the same at a thousand recordings or at a million.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils.translation import gettext as _

from accounts.models import Role, User
from devices.models import CameraAssignment, OffloadItem, OffloadSession
from devices.selectors import (
    cameras_not_docked_q,
    cameras_visible_to,
    docks_visible_to,
    offload_sessions_visible_to,
)
from evidence.models import Recording
from evidence.sources import Regime
from evidence.access.selectors import ORGANISATION_WIDE, recordings_visible_to
from evidence.retention.selectors import erasures_upcoming_for
from evidence.review.selectors import to_complete_q

# Recordings that are not (or no longer) evidence to qualify: the "to complete" queue leaves them
# out too (evidence.review.selectors.recordings_to_complete_for).
NOT_QUALIFIABLE = (Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.FAILED, Recording.Status.RECEIVING)
# Offload sessions finished within this window still show on the dashboard, with their outcome.
RECENT_OFFLOADS = dt.timedelta(hours=24)


def dashboard_kind_for(*, user: User) -> str:
    """Which dashboard a user gets: ``officer``, ``organisation`` or ``fleet`` (admin); "" for none."""
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return ""
    if user.role == Role.OFFICER:
        return "officer"
    if user.role in ORGANISATION_WIDE:
        return "organisation"
    if user.role == Role.ADMIN:
        return "fleet"
    return ""


def organisation_zone_for(*, user: User) -> ZoneInfo:
    """The organisation's time zone: days in the charts are the service's own calendar days."""
    name = getattr(user.organisation, "time_zone", "") or settings.TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


# --- Hours recorded per day ------------------------------------------------------------------------

@dataclass(frozen=True)
class DayHours:
    day: dt.date
    hours: float
    recordings: int


def hours_per_day_for(*, user: User, now: dt.datetime, days: int = 30) -> list[DayHours]:
    """Hours recorded on each of the last ``days`` calendar days (organisation time zone), oldest first.

    A day is the organisation's local day: across a change to or from summer time a day lasts 23 or
    25 hours, and a recording belongs to the local date on which it started. Days without a recording
    are present with zero. Durations come from the probed media (``Recording.duration``).
    """
    zone = organisation_zone_for(user=user)
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    # Local midnight of the first day, as an aware instant (zoneinfo resolves the UTC offset).
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    rows = (_own_or_visible(user)
            .filter(started_at__gte=start, started_at__lt=end)
            .exclude(status=Recording.Status.FAILED)
            .order_by()
            .annotate(day=TruncDate("started_at", tzinfo=zone))
            .values("day")
            .annotate(seconds=Sum("duration"), n=Count("id")))
    by_day = {row["day"]: row for row in rows}
    out = []
    for i in range(days):
        day = first + dt.timedelta(days=i)
        row = by_day.get(day)
        out.append(DayHours(day=day, hours=(row["seconds"] or 0) / 3600 if row else 0.0,
                            recordings=row["n"] if row else 0))
    return out


# --- Share of recordings fully tagged ----------------------------------------------------------

@dataclass(frozen=True)
class TaggedShare:
    label: str
    total: int
    tagged: int
    wearer_id: int | None = None

    @property
    def share(self) -> float:
        return self.tagged / self.total if self.total else 0.0

    @property
    def percent(self) -> float:
        return 100 * self.share

    @property
    def to_complete(self) -> int:
        return self.total - self.tagged


def _own_or_visible(user: User) -> QuerySet[Recording]:
    """What the figures count: for an officer, the recordings they wore (not those they were only
    granted to see); for the other roles, everything visible to them."""
    qs = recordings_visible_to(user=user)
    return qs.filter(wearer=user) if user.role == Role.OFFICER else qs


def _qualifiable(user: User) -> QuerySet[Recording]:
    # Tagging figures count body-worn recordings only: a partner's videoprotection images have no
    # wearer or trigger reason to tag (CSI L241-2 applies to body-worn cameras; issue 22).
    return _own_or_visible(user).exclude(status__in=NOT_QUALIFIABLE).filter(regime=Regime.BODY_WORN)


def tagged_share_by_wearer_for(*, user: User) -> list[TaggedShare]:
    """Per wearer: recordings kept (not erased) and how many are fully tagged (CSI L241-2).

    "Fully tagged" is the complement of ``to_complete_q`` (trigger reason, information of the
    people filmed, the reason it was omitted, the wearer). Lowest share first: who needs a reminder.
    """
    rows = (_qualifiable(user).order_by()
            .values("wearer_id", "wearer__first_name", "wearer__last_name", "wearer__username", "wearer__matricule")
            .annotate(total=Count("id"), tagged=Count("id", filter=~to_complete_q())))
    out = []
    for row in rows:
        if row["wearer_id"] is None:
            label = _("Agent porteur inconnu")
        else:
            name = f"{row['wearer__first_name']} {row['wearer__last_name']}".strip() or row["wearer__username"]
            label = f"{name} ({row['wearer__matricule']})" if row["wearer__matricule"] else name
        out.append(TaggedShare(label=label, total=row["total"], tagged=row["tagged"], wearer_id=row["wearer_id"]))
    out.sort(key=lambda s: (s.share, s.label))
    return out


def tagged_share_for_service_for(*, user: User) -> TaggedShare:
    """The whole service (the user's organisation, or the wearer's own recordings for an officer)."""
    figures = _qualifiable(user).order_by().aggregate(total=Count("id"), tagged=Count("id", filter=~to_complete_q()))
    return TaggedShare(label=_service_label(user), total=figures["total"] or 0, tagged=figures["tagged"] or 0)


def tagged_shares_for(*, user: User) -> tuple[TaggedShare, list[TaggedShare]]:
    """The service's share and each wearer's, from one grouped query (the service is their sum)."""
    wearers = tagged_share_by_wearer_for(user=user)
    service = TaggedShare(label=_service_label(user), total=sum(s.total for s in wearers),
                          tagged=sum(s.tagged for s in wearers))
    return service, wearers


def _service_label(user: User) -> str:
    return user.organisation.name if user.organisation_id else ""


def to_complete_count_for(*, user: User) -> int:
    return _qualifiable(user).filter(to_complete_q()).count()


# --- Upcoming erasures (CSI R241-13) --------------------------------------------------------------

@dataclass(frozen=True)
class ErasureOutlook:
    total: int
    to_complete: int
    first: list  # the soonest few recordings, with camera and wearer
    by_day: list  # [(hours_from, hours_to, count)] in 24-hour steps


def erasures_outlook_for(*, user: User, now: dt.datetime, hours: int = 72, first: int = 8) -> ErasureOutlook:
    """Recordings the user may see that will be erased within ``hours``, holds excluded.

    The untagged ones are counted apart: a mis-tagged recording erased unnoticed is the failure
    reported most about commercial systems.
    """
    qs = erasures_upcoming_for(user=user, now=now, hours=hours)
    step = 24
    buckets = {f"b{i}": Count("id", filter=Q(retain_until__lt=now + dt.timedelta(hours=step * (i + 1)))
                                                & Q(retain_until__gte=now + dt.timedelta(hours=step * i)))
               for i in range(1, hours // step)}
    figures = qs.order_by().aggregate(total=Count("id"), to_complete=Count("id", filter=to_complete_q()),
                                      overdue_or_first=Count("id", filter=Q(retain_until__lt=now + dt.timedelta(hours=step))),
                                      **buckets)
    by_day = [(0, step, figures["overdue_or_first"])]
    by_day += [(step * i, step * (i + 1), figures[f"b{i}"]) for i in range(1, hours // step)]
    return ErasureOutlook(total=figures["total"], to_complete=figures["to_complete"],
                          first=list(qs.select_related("camera", "wearer")[:first]), by_day=by_day)


# --- Docks and offloads ------------------------------------------------------------------------

def offloads_in_progress_for(*, user: User, now: dt.datetime) -> list[OffloadSession]:
    """Offload sessions running now, then those finished in the last 24 hours, with clip counts.

    Device metadata only (camera, dock, bytes, clip counts): the technical administrator sees it
    too, never the recordings. An officer sees the sessions of the cameras issued to them.
    """
    kind = dashboard_kind_for(user=user)
    if not kind:
        return []
    qs = offload_sessions_visible_to(user=user)
    if kind == "officer":
        issued = CameraAssignment.objects.filter(officer=user, ends_at__isnull=True).values("camera_id")
        qs = qs.filter(camera_id__in=issued)
    done = (OffloadItem.Status.VERIFIED, OffloadItem.Status.DUPLICATE)
    problems = (OffloadItem.Status.FAILED, OffloadItem.Status.MISMATCH)
    qs = (qs.filter(Q(status=OffloadSession.Status.RUNNING) | Q(finished_at__gte=now - RECENT_OFFLOADS))
          .annotate(items_total=Count("items"),
                    items_done=Count("items", filter=Q(items__status__in=done)),
                    items_problem=Count("items", filter=Q(items__status__in=problems)))
          .order_by("-started_at"))
    sessions = list(qs[:20])
    running = [s for s in sessions if s.status == OffloadSession.Status.RUNNING]
    return running + [s for s in sessions if s.status != OffloadSession.Status.RUNNING]


@dataclass(frozen=True)
class FleetHealth:
    cameras_active: int
    cameras_inactive: int
    cameras_issued: int
    cameras_not_docked: int
    docks: int
    slots: int
    sessions_running: int
    sessions_week: int
    sessions_incomplete_week: int
    items_failed_week: int
    bytes_offloaded_week: int


def fleet_health_for(*, user: User, now: dt.datetime) -> FleetHealth | None:
    """Counts on cameras, docks and offloads of the user's organisation; no recording metadata.

    ARCHITECTURE.md §1: the technical administrator manages devices and never sees evidence, so
    this is what the administrator's dashboard is made of.
    """
    if dashboard_kind_for(user=user) not in ("fleet", "organisation"):
        return None
    cameras = cameras_visible_to(user=user).order_by()
    figures = cameras.aggregate(n_active=Count("id", filter=Q(active=True)),
                                n_inactive=Count("id", filter=Q(active=False)))
    issued = cameras.filter(active=True, assignments__ends_at__isnull=True, assignments__isnull=False).distinct().count()
    not_docked = cameras.filter(cameras_not_docked_q(now=now)).count()
    docks = docks_visible_to(user=user).order_by().aggregate(n_docks=Count("id", distinct=True),
                                                            n_slots=Count("slots", distinct=True))
    week = now - dt.timedelta(days=7)
    sessions = offload_sessions_visible_to(user=user).order_by()
    week_figures = sessions.filter(started_at__gte=week).aggregate(
        n=Count("id"),
        incomplete=Count("id", filter=Q(status__in=[OffloadSession.Status.INCOMPLETE, OffloadSession.Status.REJECTED])),
        bytes=Sum("bytes_done"),
    )
    failed = OffloadItem.objects.filter(
        session__in=sessions.filter(started_at__gte=week).values("id"),
        status__in=[OffloadItem.Status.FAILED, OffloadItem.Status.MISMATCH]).count()
    return FleetHealth(
        cameras_active=figures["n_active"], cameras_inactive=figures["n_inactive"], cameras_issued=issued,
        cameras_not_docked=not_docked, docks=docks["n_docks"], slots=docks["n_slots"],
        sessions_running=sessions.filter(status=OffloadSession.Status.RUNNING).count(),
        sessions_week=week_figures["n"], sessions_incomplete_week=week_figures["incomplete"],
        items_failed_week=failed, bytes_offloaded_week=week_figures["bytes"] or 0,
    )


# --- Access-request deadlines (the DPO's block) ---------------------------------------------------

# Within this many days the deadline is highlighted (the reminders' first threshold,
# evidence/disclosure/reminders.py).
DEADLINE_SOON_DAYS = 7
DEADLINE_ROWS = 20


@dataclass(frozen=True)
class AccessRequestDeadline:
    request: object  # evidence.disclosure.models.AccessRequest
    days_left: int

    @property
    def state(self) -> str:
        """``overdue``, ``soon`` (7 days or less) or ``later``."""
        if self.days_left < 0:
            return "overdue"
        return "soon" if self.days_left <= DEADLINE_SOON_DAYS else "later"

    @property
    def days_late(self) -> int:
        return -self.days_left


def access_request_deadlines_for(*, user: User, now: dt.datetime) -> list[AccessRequestDeadline] | None:
    """The DPO's open access requests, nearest deadline first; None for anyone else.

    GDPR art. 12(3): one month from receipt, three when extended. Days are counted in the
    organisation's time zone, as the deadlines are its calendar dates.
    """
    from evidence.disclosure.selectors import access_requests_open

    if not user.is_authenticated or user.role != Role.DPO:
        return None
    today = now.astimezone(organisation_zone_for(user=user)).date()
    return [AccessRequestDeadline(request=r, days_left=(r.deadline - today).days)
            for r in access_requests_open(user=user)[:DEADLINE_ROWS]]
