"""Reads on cameras, docks and offloads, scoped to the requesting user's organisation.

Device metadata only (serials, docks, assignments, offload progress): never media nor recording
metadata. The technical administrator manages the fleet (ARCHITECTURE.md §1); the head of service
issues cameras to the agents (CSI R241-10: the wearer of a recording is the agent the camera was
issued to).
"""
from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, Subquery

from accounts.models import Role, User
from evidence.requisitions.models import Requisition

from .models import Camera, CameraAssignment, Dock, DockSlot, OffloadSession

# Who opens the fleet page and checks cameras out and in.
FLEET_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR})
# Who sees the organisation's devices (the dashboard's fleet figures); an officer sees the cameras
# issued to them.
DEVICE_READERS = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.LEGAL, Role.DPO, Role.MAYOR})
# Who may be issued a camera: the agents porteurs, and heads of service who wear one.
WEARER_ROLES = frozenset({Role.OFFICER, Role.SUPERVISOR})
# CSI R241-11 III: recordings are transferred as soon as the agents return; a camera out of its dock
# longer than this is shown as not offloaded.
NOT_DOCKED_AFTER = dt.timedelta(hours=24)


def _in_organisation(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.organisation_id is not None)


def offload_sessions_visible_to(*, user: User) -> QuerySet[OffloadSession]:
    """Offload sessions of the user's organisation (metadata only: no media)."""
    if not user.is_authenticated or user.organisation_id is None:
        return OffloadSession.objects.none()
    return OffloadSession.objects.filter(organisation_id=user.organisation_id).select_related("camera", "dock", "slot")


def fleet_access(*, user: User) -> bool:
    """The fleet page and camera check-out / check-in: technical administrator and head of service."""
    return _in_organisation(user) and user.role in FLEET_ROLES


def partner_devices_q() -> Q:
    """Q over Camera: a partner's placeholder device (evidence.requisitions.services.partner_camera),
    the source a partner's files are recorded with. It stands for the partner's own system, not one
    of the service's cameras: no dock, no wearer, never docked. Lists of "our cameras and docks"
    (the fleet, its figures, the metrics) leave it out; a recording still names it as its source."""
    return Q(pk__in=Requisition.objects.values("camera_id"))


def cameras_visible_to(*, user: User) -> QuerySet[Camera]:
    """The organisation's own cameras (partners' placeholder devices aside); for an officer, the
    cameras currently issued to them."""
    if not _in_organisation(user):
        return Camera.objects.none()
    qs = Camera.objects.filter(organisation_id=user.organisation_id).exclude(partner_devices_q())
    if user.role in DEVICE_READERS:
        return qs
    if user.role == Role.OFFICER:
        return qs.filter(assignments__officer=user, assignments__ends_at__isnull=True).distinct()
    return qs.none()


def cameras_not_docked_q(*, now: dt.datetime) -> Q:
    """Q over Camera: issued since its last docking, and that was more than 24 hours ago.

    A camera that may hold recordings (it was issued to an agent after it was last docked, or is
    still issued) and has not been docked for 24 hours. A spare camera in the cupboard, docked after
    its last use, is not flagged; one checked in without being docked is.
    """
    cutoff = now - NOT_DOCKED_AFTER
    issued_since_docking = CameraAssignment.objects.filter(camera=OuterRef("pk"), starts_at__lt=cutoff).filter(
        Q(ends_at__isnull=True) | Q(starts_at__gt=OuterRef("last_docked_at"))
    )
    never_docked_issued = CameraAssignment.objects.filter(camera=OuterRef("pk"), starts_at__lt=cutoff)
    return Q(active=True) & (
        (Q(last_docked_at__lt=cutoff) & Exists(issued_since_docking))
        | (Q(last_docked_at__isnull=True) & Exists(never_docked_issued))
    )


def fleet_cameras_for(*, user: User, now: dt.datetime) -> QuerySet[Camera]:
    """Cameras with their open assignment (``open_assignments``), last offload and the 24-hour flag.

    Annotations: ``not_docked`` (bool), ``last_offload_started_at``, ``last_offload_finished_at``,
    ``last_offload_status``. One query for the cameras, one for the open assignments.
    """
    if not fleet_access(user=user):
        return Camera.objects.none()
    last = OffloadSession.objects.filter(camera=OuterRef("pk")).order_by("-started_at", "-id")
    open_assignments = CameraAssignment.objects.filter(ends_at__isnull=True).select_related("officer")
    not_docked = Camera.objects.filter(pk=OuterRef("pk")).filter(cameras_not_docked_q(now=now))
    return (cameras_visible_to(user=user)
            .annotate(last_offload_started_at=Subquery(last.values("started_at")[:1]),
                      last_offload_finished_at=Subquery(last.values("finished_at")[:1]),
                      last_offload_status=Subquery(last.values("status")[:1]),
                      not_docked=Exists(not_docked))
            .prefetch_related(Prefetch("assignments", queryset=open_assignments, to_attr="open_assignments"))
            .order_by("-active", "serial"))


def camera_for_fleet(*, user: User, pk: int) -> Camera:
    """One camera of the user's fleet, or Camera.DoesNotExist (a 404: no other organisation's)."""
    return (cameras_visible_to(user=user) if fleet_access(user=user) else Camera.objects.none()).get(pk=pk)


def assignments_visible_to(*, user: User) -> QuerySet[CameraAssignment]:
    """Assignment history of the organisation's cameras, newest first."""
    if not fleet_access(user=user):
        return CameraAssignment.objects.none()
    return (CameraAssignment.objects.filter(camera__organisation_id=user.organisation_id)
            .select_related("camera", "officer").order_by("-starts_at", "-id"))


def wearers_for(*, user: User) -> QuerySet[User]:
    """Who a camera may be issued to: active agents of the same organisation."""
    if not fleet_access(user=user):
        return User.objects.none()
    return (User.objects.filter(organisation_id=user.organisation_id, is_active=True, role__in=WEARER_ROLES)
            .order_by("last_name", "first_name", "username"))


def docks_visible_to(*, user: User) -> QuerySet[Dock]:
    """Docks of the organisation, and docks without an organisation where its cameras were docked.

    A dock created on the fly by an offload has no organisation yet; only the sessions of the
    user's organisation are ever shown on it.
    """
    if not _in_organisation(user) or user.role not in DEVICE_READERS:
        return Dock.objects.none()
    used = OffloadSession.objects.filter(dock=OuterRef("pk"), organisation_id=user.organisation_id)
    return Dock.objects.filter(Q(organisation_id=user.organisation_id) | (Q(organisation__isnull=True) & Exists(used)))


def docks_managed_by(*, user: User) -> QuerySet[Dock]:
    """Docks the user may rename and retire: their organisation's own (not a shared, unbound one)."""
    if not fleet_access(user=user):
        return Dock.objects.none()
    return Dock.objects.filter(organisation_id=user.organisation_id)


def dock_for_fleet(*, user: User, pk: int) -> Dock:
    """One dock of the user's organisation, or Dock.DoesNotExist (a 404: no other organisation's)."""
    return docks_managed_by(user=user).get(pk=pk)


def dock_slots_for(*, user: User) -> QuerySet[DockSlot]:
    """Every slot of the visible docks with the last session of the organisation in it.

    Annotations: ``last_serial``, ``last_status``, ``last_started_at``, ``last_bytes_done``,
    ``last_bytes_total``.
    """
    last = OffloadSession.objects.filter(slot=OuterRef("pk"), organisation_id=user.organisation_id).order_by(
        "-started_at", "-id")
    return (DockSlot.objects.filter(dock__in=docks_visible_to(user=user)).select_related("dock")
            .annotate(last_serial=Subquery(last.values("camera__serial")[:1]),
                      last_status=Subquery(last.values("status")[:1]),
                      last_started_at=Subquery(last.values("started_at")[:1]),
                      last_bytes_done=Subquery(last.values("bytes_done")[:1]),
                      last_bytes_total=Subquery(last.values("bytes_total")[:1]))
            .order_by("dock__name", "name"))


class DockingRefused(Exception):
    """A docked volume that cannot be attributed to one camera of the dock's organisation."""


def camera_for_docking(*, serial: str, dock: Dock | None) -> Camera:
    """The camera a volume docked on ``dock`` is: a camera of the dock's organisation with that serial.

    A dock bound to an organisation offloads only that organisation's cameras: a volume naming a
    serial of another commune is refused, whatever that commune registered (issue 17, finding 4).
    A dock without an organisation (the command line, a dock not yet bound) takes the serial when
    exactly one organisation registered it, and refuses when several did. A retired dock takes none.
    """
    if dock is not None and not dock.active:
        raise DockingRefused(f"dock {dock.name} is retired (fleet page): nothing was read or removed from camera "
                             f"{serial}. Bring the dock back into service, or dock the camera elsewhere")
    cameras = Camera.objects.select_related("organisation").filter(serial=serial)
    if dock is not None and dock.organisation_id is not None:
        camera = cameras.filter(organisation_id=dock.organisation_id).first()
        if camera is None:
            raise DockingRefused(
                f"camera {serial} is not registered in the organisation of dock {dock.name}: nothing was read "
                f"or removed. Register it with: python manage.py addcamera {serial} --org <organisation>")
        return camera
    found = list(cameras[:2])
    if not found:
        raise DockingRefused(
            f"camera {serial} is not registered: nothing was read or removed. "
            f"Register it with: python manage.py addcamera {serial} --org <organisation>")
    if len(found) > 1:
        raise DockingRefused(
            f"camera {serial} is registered in several organisations: nothing was read or removed. "
            f"Bind the dock to its organisation (fleet page, or Dock.organisation) and dock it again")
    return found[0]
