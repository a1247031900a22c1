import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from audit.services import custody_event_append

from .models import Camera, CameraAssignment
from .sources.mass_storage import SERIAL_RE


def camera_register(*, serial: str, organisation: Organisation, model: str = "", firmware: str = "",
                    by: User | None = None) -> Camera:
    """Register a camera (addcamera, and the fleet page through devices.registry.camera_create).

    Raises ValueError for a malformed serial, IntegrityError when the organisation has it already.
    """
    if not SERIAL_RE.match(serial):
        raise ValueError(f"invalid serial {serial!r} (letters, digits, '.', '_' and '-')")
    details = {"serial": serial, "model": model} | ({"firmware": firmware} if firmware else {})
    with transaction.atomic():
        camera = Camera.objects.create(serial=serial, organisation=organisation, model=model, firmware=firmware)
        custody_event_append(action="camera.registered", subject=camera, organisation=organisation, actor=by,
                             actor_label="" if by else "system:cli", details=details)
    return camera


def camera_assign(*, camera: Camera, officer: User, starts_at: dt.datetime | None = None,
                  by: User | None = None) -> CameraAssignment:
    """Issue the camera to an officer from ``starts_at``; closes the previous open assignment.

    CSI R241-10: the wearer of a recording is the officer the camera was issued to at that time.
    """
    if officer.organisation_id != camera.organisation_id:
        raise ValueError("the officer and the camera belong to different organisations")
    starts_at = starts_at or timezone.now()
    with transaction.atomic():
        CameraAssignment.objects.filter(camera=camera, ends_at__isnull=True, starts_at__lte=starts_at).update(ends_at=starts_at)
        assignment = CameraAssignment.objects.create(camera=camera, officer=officer, starts_at=starts_at)
        custody_event_append(action="camera.assigned", subject=camera, organisation=camera.organisation, actor=by,
                             actor_label="" if by else "system:cli",
                             details={"officer": officer.matricule, "starts_at": starts_at.isoformat()})
    return assignment


class CustodyRefused(Exception):
    """A check-out or check-in that cannot be done as asked; the message is shown to the user."""


def camera_check_out(*, camera: Camera, officer: User, by: User, now: dt.datetime | None = None) -> CameraAssignment:
    """Issue a camera to an agent (sortie): opens an assignment from ``now``, logged in the custody log.

    CSI R241-10: the wearer of every recording made from now on is this agent, so a camera still
    issued to someone else must be checked in first (never two wearers at once), and only an active
    agent of the camera's organisation can receive it.
    """
    from .selectors import WEARER_ROLES

    now = now or timezone.now()
    if officer.organisation_id != camera.organisation_id or by.organisation_id != camera.organisation_id:
        raise CustodyRefused(_("L'agent et la caméra n'appartiennent pas à la même organisation."))
    if not officer.is_active or officer.role not in WEARER_ROLES:
        raise CustodyRefused(_("%(officer)s ne peut pas recevoir de caméra (compte inactif ou rôle non porteur).")
                             % {"officer": officer})
    with transaction.atomic():
        # Serialise check-outs and check-ins of one camera: two concurrent forms cannot both open one.
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        if not camera.active:
            raise CustodyRefused(_("La caméra %(serial)s est désactivée.") % {"serial": camera.serial})
        current = CameraAssignment.objects.filter(camera=camera, ends_at__isnull=True).select_related("officer").first()
        if current is not None:
            raise CustodyRefused(_("La caméra %(serial)s est déjà remise à %(officer)s : enregistrez d'abord son retour.")
                                 % {"serial": camera.serial, "officer": current.officer})
        last_end = (CameraAssignment.objects.filter(camera=camera, ends_at__isnull=False)
                    .order_by("-ends_at").values_list("ends_at", flat=True).first())
        if last_end is not None and last_end > now:
            raise CustodyRefused(_("La caméra %(serial)s a été restituée après la date de sortie demandée.")
                                 % {"serial": camera.serial})
        assignment = CameraAssignment.objects.create(camera=camera, officer=officer, starts_at=now)
        custody_event_append(action="camera.checked_out", subject=camera, organisation=camera.organisation,
                             actor=by,
                             details={"serial": camera.serial, "officer": officer.matricule,
                                      "officer_username": officer.username, "assignment": assignment.pk,
                                      "starts_at": now.isoformat()})
    return assignment


def camera_check_in(*, camera: Camera, by: User, now: dt.datetime | None = None) -> CameraAssignment:
    """Record the return of a camera (retour): closes its open assignment at ``now``, logged.

    CSI R241-10: recordings started after ``now`` are no longer attributed to this agent.
    """
    now = now or timezone.now()
    if by.organisation_id != camera.organisation_id:
        raise CustodyRefused(_("La caméra n'appartient pas à votre organisation."))
    with transaction.atomic():
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        assignment = (CameraAssignment.objects.select_for_update().filter(camera=camera, ends_at__isnull=True)
                      .select_related("officer").first())
        if assignment is None:
            raise CustodyRefused(_("La caméra %(serial)s n'est remise à personne.") % {"serial": camera.serial})
        if assignment.starts_at > now:
            raise CustodyRefused(_("La caméra %(serial)s a été remise après la date de retour indiquée.")
                                 % {"serial": camera.serial})
        assignment.ends_at = now
        assignment.save(update_fields=["ends_at"])
        custody_event_append(action="camera.checked_in", subject=camera, organisation=camera.organisation,
                             actor=by,
                             details={"serial": camera.serial, "officer": assignment.officer.matricule,
                                      "officer_username": assignment.officer.username,
                                      "assignment": assignment.pk, "starts_at": assignment.starts_at.isoformat(),
                                      "ends_at": now.isoformat()})
    return assignment
