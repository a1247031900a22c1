"""The Axis system, users and devices (Device and user API): each stored with its custody event in
the same transaction (CSI R241-14), a user bound to the officer who wears the camera, a device to
the organisation's camera (CSI R241-11: each recording attributed to its wearer and camera).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Organisation, User
from audit.services import custody_event_append
from devices.models import Camera
from devices.services import camera_register
from devices.sources.mass_storage import SERIAL_RE

from . import formats, services
from .errors import ContentRefused, Forbidden
from .models import AxisDevice, AxisSystem, AxisUser

ACTOR = services.ACTOR


def system_store(*, organisation: Organisation, system_id: str, metadata: Mapping[str, str],
                 now: dt.datetime | None = None) -> tuple[AxisSystem, bool]:
    """``System/<SystemID>`` (StoreReadSystemID). ``ConnectionId`` is set once and never changes."""
    now = now or timezone.now()
    if not system_id or len(system_id) > 100:
        raise ContentRefused("invalid system id")
    with transaction.atomic():
        system = AxisSystem.objects.select_for_update().filter(organisation=organisation, system_id=system_id).first()
        created = system is None
        if created:
            system = AxisSystem(organisation=organisation, system_id=system_id, created_at=now,
                                connection_id=metadata.get("ConnectionId", "")[:100])
        elif metadata.get("ConnectionId") and system.connection_id and metadata["ConnectionId"] != system.connection_id:
            raise Forbidden("this system is bound to another connection id")
        system.connection_id = system.connection_id or metadata.get("ConnectionId", "")[:100]
        system.name = metadata.get("SystemName", system.name)[:200]
        system.metadata = dict(metadata)
        system.updated_at = now
        system.save()
        custody_event_append(action="axis.system_registered" if created else "axis.system_updated",
                             subject=system, organisation=organisation, actor_label=ACTOR,
                             details={"system_id": system_id, "connection_id": system.connection_id,
                                      "name": system.name}, now=now)
    return system, created


def _officer_username(external_id: str) -> str:
    base = "axis-" + re.sub(r"[^\w.@+-]", "-", external_id)[:100]
    name, n = base, 1
    while User.objects.filter(username=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _officer_for(organisation: Organisation, external_id: str, name: str) -> tuple[User | None, bool]:
    """The officer whose matricule is the Axis ``UserID``; created (role officer) when missing.

    The BWM's user-supplied ID (capability StoreUserIDKey) is where the service enters the
    matricule, CSI R241-10's identity of the wearer. A created officer has no password: the
    administrator gives access in Témoin, the BWS never does.
    """
    from accounts.services import user_create

    if not external_id or len(external_id) > 32:
        return None, False
    user = User.objects.filter(organisation=organisation, matricule=external_id).first()
    if user is not None:
        return user, False
    first, _, last = name.strip().partition(" ")
    user, _token = user_create(username=_officer_username(external_id), organisation=organisation,
                               role="officer", matricule=external_id, first_name=first[:150],
                               last_name=last[:150])
    return user, True


def axis_user_store(*, organisation: Organisation, uuid: str, metadata: Mapping[str, str],
                    now: dt.datetime | None = None) -> tuple[AxisUser, bool]:
    """``Users/<UserUUID>`` created or its metadata updated: name, active flag, matricule link."""
    now = now or timezone.now()
    if not uuid or len(uuid) > 100:
        raise ContentRefused("invalid user id")
    external_id = metadata.get("UserID", "").strip()[:100]
    name = metadata.get("Name", "").strip()[:200]
    with transaction.atomic():
        axis_user = AxisUser.objects.select_for_update().filter(organisation=organisation, uuid=uuid).first()
        created = axis_user is None
        if created:
            axis_user = AxisUser(organisation=organisation, uuid=uuid, created_at=now)
        before = (axis_user.name, axis_user.external_id, axis_user.active, axis_user.user_id)
        axis_user.name = name
        axis_user.external_id = external_id
        axis_user.active = formats.parse_bool(metadata.get("Active"), default=True)
        officer, officer_created = _officer_for(organisation, external_id, name)
        axis_user.user = officer
        axis_user.metadata = dict(metadata)
        axis_user.updated_at = now
        axis_user.save()
        if created or before != (axis_user.name, axis_user.external_id, axis_user.active, axis_user.user_id):
            custody_event_append(
                action="axis.user_registered" if created else "axis.user_updated", subject=axis_user,
                organisation=organisation, actor_label=ACTOR, now=now,
                details={"uuid": uuid, "name": name, "user_id": external_id, "active": axis_user.active,
                         "officer": officer.matricule if officer else None, "officer_created": officer_created},
            )
    return axis_user, created


def axis_device_store(*, organisation: Organisation, serial: str, metadata: Mapping[str, str],
                      now: dt.datetime | None = None) -> tuple[AxisDevice, bool]:
    """``Devices/<BWCSerialNumber>``: registers the camera (once) and keeps its nice name, model, active flag."""
    now = now or timezone.now()
    if not SERIAL_RE.match(serial or ""):
        raise ContentRefused(f"invalid serial number {serial!r}")
    model = metadata.get("Model", "").strip()[:100]
    with transaction.atomic():
        # The organisation's own camera with that serial: another commune's camera of the same serial
        # is neither revealed (no "belongs to another organisation") nor claimed (issue 17, finding 4).
        camera = Camera.objects.select_for_update().filter(organisation=organisation, serial=serial).first()
        camera_created = camera is None
        if camera_created:
            try:
                with transaction.atomic():
                    camera = camera_register(serial=serial, organisation=organisation, model=model)
            except IntegrityError:  # registered concurrently by another request of the same organisation
                camera = Camera.objects.get(organisation=organisation, serial=serial)
                camera_created = False
        elif model and camera.model != model:
            camera.model = model
            camera.save(update_fields=["model"])
        device = AxisDevice.objects.select_for_update().filter(organisation=organisation, serial=serial).first()
        created = device is None
        if created:
            device = AxisDevice(organisation=organisation, serial=serial, camera=camera, created_at=now)
        before = (device.name, device.model, device.active)
        device.name = metadata.get("Name", "").strip()[:200]
        device.model = model
        device.active = formats.parse_bool(metadata.get("Active"), default=True)
        device.metadata = dict(metadata)
        device.updated_at = now
        device.save()
        if created or before != (device.name, device.model, device.active):
            custody_event_append(
                action="axis.device_registered" if created else "axis.device_updated", subject=camera,
                organisation=organisation, actor_label=ACTOR, now=now,
                details={"serial": serial, "name": device.name, "model": model, "active": device.active,
                         "camera_registered": camera_created},
            )
    return device, created
