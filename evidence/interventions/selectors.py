"""Reads on interventions, scoped to the requesting user (CSI R241-12).

An intervention shows the recordings the user may see, nothing more: its recordings are filtered by
``evidence.access.selectors.recordings_visible_to``, the one place that decides it.
"""
from __future__ import annotations

import datetime as dt
import math

from django.db.models import Exists, Max, Min, OuterRef, Q, QuerySet

from accounts.models import Role, User

from ..models import GONE_STATUSES, Recording
from evidence.access.selectors import ORGANISATION_WIDE, recordings_visible_to, sees_whole_organisation
from .models import Intervention, InterventionClockCorrection, InterventionLink

# Suggestions: recordings of other cameras overlapping in time, within this radius of the track of
# the intervention's first recording.
SUGGESTION_RADIUS_M = 300.0


def intervention_recordings_visible_to(*, user: User, intervention: Intervention) -> QuerySet[Recording]:
    """The intervention's linked recordings that ``user`` may see (erased ones left out), in time order."""
    return (recordings_visible_to(user=user)
            .filter(intervention_links__intervention=intervention)
            .exclude(status__in=GONE_STATUSES)
            .order_by("started_at", "id"))


def intervention_linked_recordings(*, intervention: Intervention) -> QuerySet[Recording]:
    """Every recording linked at this moment (for a hold or an export placed by a caller who already
    sees the whole organisation), erased ones left out."""
    return (Recording.objects.filter(intervention_links__intervention=intervention)
            .exclude(status__in=GONE_STATUSES).exclude(status=Recording.Status.DUPLICATE)
            .order_by("started_at", "id"))


def interventions_visible_to(*, user: User) -> QuerySet[Intervention]:
    """Interventions of the user's organisation; an officer sees those with a recording they may see.

    Annotated with the first start and last end among the recordings the user may see.
    """
    visible = recordings_visible_to(user=user).exclude(status__in=GONE_STATUSES).values("pk")
    seen = Q(links__recording__in=visible)
    qs = Intervention.objects.annotate(first_start=Min("links__recording__started_at", filter=seen),
                                       last_end=Max("links__recording__ended_at", filter=seen))
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return qs.none()
    if user.role not in ORGANISATION_WIDE and user.role != Role.OFFICER:
        return qs.none()  # the technical administrator never sees evidence
    qs = qs.filter(organisation_id=user.organisation_id)
    if not sees_whole_organisation(user):  # an officer, or the DPO (issue 15: access requests' recordings)
        qs = qs.filter(Exists(InterventionLink.objects.filter(intervention=OuterRef("pk"), recording__in=visible)))
    return qs


def intervention_search(*, user: User, q: str = "", started_after: dt.datetime | None = None,
                        started_before: dt.datetime | None = None) -> QuerySet[Intervention]:
    qs = interventions_visible_to(user=user)
    q = (q or "").strip()
    if q:
        qs = qs.filter(Q(reference__icontains=q) | Q(place__icontains=q) | Q(notes__icontains=q))
    if started_after is not None:
        qs = qs.filter(first_start__gte=started_after)
    if started_before is not None:
        qs = qs.filter(first_start__lt=started_before)
    return qs.order_by("-first_start", "-id")


def intervention_clock(*, intervention: Intervention) -> dict[int, float]:
    """{camera id: seconds added to its times within this intervention}."""
    return dict(InterventionClockCorrection.objects.filter(intervention=intervention)
                .values_list("camera_id", "seconds"))


def intervention_timeline(*, intervention: Intervention, recordings: list[Recording]) -> dict:
    """The recordings on the intervention's shared clock: each corrected start, its offset from the
    intervention's start (the earliest corrected start), its duration; the intervention's span."""
    corrections = intervention_clock(intervention=intervention)
    rows, starts, ends = [], [], []
    for rec in recordings:
        if rec.started_at is None:
            continue
        shift = dt.timedelta(seconds=corrections.get(rec.camera_id, 0.0))
        start = rec.started_at + shift
        duration = rec.duration
        if duration is None and rec.ended_at is not None:
            duration = (rec.ended_at - rec.started_at).total_seconds()
        end = start + dt.timedelta(seconds=duration or 0)
        rows.append({"recording": rec, "started_at": start, "ended_at": end, "duration": duration,
                     "clock_correction": corrections.get(rec.camera_id, 0.0)})
        starts.append(start)
        ends.append(end)
    rows.sort(key=lambda row: (row["started_at"], row["recording"].pk))  # on the shared clock
    begin = min(starts) if starts else None
    for row in rows:
        row["offset_seconds"] = round((row["started_at"] - begin).total_seconds(), 3)
    return {"started_at": begin, "ended_at": max(ends) if ends else None, "rows": rows,
            "corrections": corrections}


def _distance_m(a, b) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(min(1.0, h)))


def _points(rec: Recording) -> list[tuple[float, float]]:
    out = []
    for p in ([rec.location] if rec.location else []) + list(rec.track or []):
        try:
            lat, lon = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(lat) and math.isfinite(lon):
            out.append((lat, lon))
    return out


def intervention_suggestions_for(*, user: User, intervention: Intervention,
                                 radius_m: float = SUGGESTION_RADIUS_M) -> list[Recording]:
    """Recordings of other cameras, not linked yet, that overlap the intervention in time and came
    within ``radius_m`` of the GPS track (or place) of its first recording. Suggested only: a
    supervisor or the wearer confirms each (services.intervention_suggestion_confirm)."""
    # The anchor (first track, time span, cameras) is the whole intervention's; only recordings the
    # user may see are suggested, and nothing of the anchor is returned.
    linked = list(intervention_linked_recordings(intervention=intervention))
    located = [r for r in linked if _points(r)]
    if not located or user.role not in ORGANISATION_WIDE | {Role.OFFICER}:
        return []
    first = located[0]
    anchor = _points(first)
    start = min(r.started_at for r in linked if r.started_at)
    end = max((r.ended_at or r.started_at) for r in linked if r.started_at)
    cameras = {r.camera_id for r in linked}
    candidates = (recordings_visible_to(user=user).exclude(status__in=GONE_STATUSES)
                  .exclude(status__in=[Recording.Status.RECEIVING, Recording.Status.FAILED])
                  .exclude(camera_id__in=cameras)
                  .exclude(intervention_links__intervention=intervention)
                  .filter(started_at__lt=end)
                  .filter(Q(ended_at__gt=start) | Q(ended_at__isnull=True, started_at__gte=start))
                  .order_by("started_at", "id"))
    out = []
    for rec in candidates:
        if any(_distance_m(p, a) <= radius_m for p in _points(rec) for a in anchor):
            out.append(rec)
    return out


def annotations_of(*, recordings: list[Recording]):
    """Comments and bookmarks of recordings the caller already obtained through the selectors."""
    from ..models import Annotation

    return Annotation.objects.filter(recording__in=recordings).select_related("author").order_by("recording_id",
                                                                                                 "at_seconds")
