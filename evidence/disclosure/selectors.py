"""Reads on disclosure, always scoped to the requesting user (CSI R241-12, R241-15).

Recordings are reached only through ``evidence.access.selectors.recordings_visible_to``.
"""
from __future__ import annotations

import datetime as dt
import math

from django.db.models import QuerySet

from accounts.models import Role, User
from evidence.models import Recording
from evidence.access.selectors import access_request_search_base, recordings_visible_to
from evidence.requisitions.models import RequisitionUpload
from evidence.sources import Source

from .models import AccessRequest, Export, Extraction, Share

# CSI R241-12: extraction for a procedure by the head of service / authorised agents and legal staff.
EXTRACTORS = {Role.SUPERVISOR, Role.LEGAL}
# Who sees the extractions and exports of the organisation (the mayor reads, as data controller).
EXPORT_READERS = {Role.SUPERVISOR, Role.LEGAL, Role.MAYOR, Role.DPO}
# CSI R241-15, LIL art. 105: access requests are handled by the DPO for the maire, who may read them.
ACCESS_REQUEST_HANDLERS = {Role.DPO}
ACCESS_REQUEST_READERS = {Role.DPO, Role.MAYOR}


def _member(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.organisation_id)


def exports_visible_to(*, user: User) -> QuerySet[Export]:
    if not _member(user) or user.role not in EXPORT_READERS:
        return Export.objects.none()
    qs = Export.objects.filter(organisation_id=user.organisation_id).select_related("requested_by", "access_request")
    if user.role == Role.DPO:
        # The DPO handles access requests, not procedures.
        qs = qs.filter(purpose="access_request")
    elif user.role != Role.MAYOR:
        # A data subject's copy names the requester: procedures staff have no need to know it.
        qs = qs.exclude(purpose="access_request")
    return qs


def extractions_visible_to(*, user: User) -> QuerySet[Extraction]:
    if not _member(user) or user.role not in EXPORT_READERS - {Role.DPO}:
        return Extraction.objects.none()
    return (Extraction.objects.filter(organisation_id=user.organisation_id,
                                      recording__in=recordings_visible_to(user=user))
            .select_related("recording", "requested_by"))


def shares_visible_to(*, user: User) -> QuerySet[Share]:
    return Share.objects.filter(export__in=exports_visible_to(user=user)).select_related("export", "created_by")


def access_requests_visible_to(*, user: User) -> QuerySet[AccessRequest]:
    if not _member(user) or user.role not in ACCESS_REQUEST_READERS:
        return AccessRequest.objects.none()
    return AccessRequest.objects.filter(organisation_id=user.organisation_id)


def access_requests_open(*, user: User) -> QuerySet[AccessRequest]:
    """Open requests, the nearest deadline first (extended deadline when extended)."""
    return access_requests_visible_to(user=user).filter(closed_at__isnull=True).order_by("deadline", "id")


def distance_m(a, b) -> float:
    """Great-circle distance in metres between two [lat, lon] points (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(min(1.0, h)))


def _near(recording: Recording, place, radius_m: float) -> bool:
    points = []
    if recording.location:
        points.append(recording.location)
    for point in recording.track or []:
        points.append(point[:2])
    for point in points:
        try:
            if distance_m((float(point[0]), float(point[1])), place) <= radius_m:
                return True
        except (TypeError, ValueError, IndexError):
            continue
    return False


def access_request_candidates(*, user: User, start: dt.datetime | None = None, end: dt.datetime | None = None,
                              place=None, radius_m: float | None = None, officer: str = "",
                              intervention=None) -> list[Recording]:
    """Recordings that may show the requester: overlapping the time window, near the place (its
    location or any point of its track within ``radius_m``), worn by the officer described."""
    if user.role not in ACCESS_REQUEST_HANDLERS:
        return []
    qs = access_request_search_base(user=user).exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.FAILED,
                                                               Recording.Status.RECEIVING])
    from django.db.models import Exists, OuterRef, Q

    # A partner's files (requisitions, issue 22) carry no recording time of their own: they are
    # candidates when the period their requisition covers overlaps the window (CSI L253-5 for
    # videoprotection images); the regime of each is shown and logged (access_requests.py).
    partner = RequisitionUpload.objects.filter(recording_id=OuterRef("pk"))
    if end is not None:
        partner = partner.filter(requisition__period_start__lt=end)
    if start is not None:
        partner = partner.filter(requisition__period_end__gt=start)
    partner_q = Q(started_at__isnull=True, source=Source.REQUISITION) & Q(Exists(partner))
    timed = Q()
    if end is not None:
        timed &= Q(started_at__lt=end)
    if start is not None:
        # Overlap: the recording ends after the window starts (or, end unknown, starts within it).
        timed &= Q(ended_at__gt=start) | Q(ended_at__isnull=True, started_at__gte=start)
    if start is not None or end is not None:
        qs = qs.filter(timed | partner_q)
    if intervention is not None:  # the recordings linked to one intervention (issue #21)
        qs = qs.filter(intervention_links__intervention=intervention)
    officer = (officer or "").strip()
    if officer:
        from django.db.models import Q

        # A partner's fixed cameras may show the scene whoever wore the body-worn camera: its files
        # stay candidates (they have no wearer to match).
        qs = qs.filter(Q(wearer__matricule__iexact=officer) | Q(wearer__username__iexact=officer)
                       | Q(wearer__last_name__iexact=officer) | Q(wearer__isnull=True, source=Source.REQUISITION))
    qs = qs.select_related("camera", "wearer").order_by("started_at", "id")
    if place is not None and radius_m:
        # A partner's file has no position: its cameras are the places its requisition names, so it
        # stays a candidate for the DPO to look at.
        return [r for r in qs if _near(r, place, radius_m)
                or (r.source == Source.REQUISITION and r.location is None)]
    return list(qs)
