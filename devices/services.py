import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from audit.services import custody_event_append

from .models import Camera, CameraAssignment
from .sources.mass_storage import SERIAL_RE


def camera_register(*, serial: str, organisation: Organisation, model: str = "", by: User | None = None) -> Camera:
    if not SERIAL_RE.match(serial):
        raise ValueError(f"invalid serial {serial!r} (letters, digits, '.', '_' and '-')")
    with transaction.atomic():
        camera = Camera.objects.create(serial=serial, organisation=organisation, model=model)
        custody_event_append(action="camera.registered", subject=camera, organisation=organisation, actor=by,
                             actor_label="" if by else "system:cli", details={"serial": serial, "model": model})
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
