"""Writes on the fleet's register: cameras and docks registered, edited, retired and brought back.

Every change writes its custody event in the same transaction (CSI R241-14: the log traces who did
what on the system; STYLE.md). The actor is always a member of the organisation whose device
changes: the views reach devices through devices.selectors only, and the services check again.
Custody of a camera (check-out, check-in) stays in devices.services.
"""
from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts.models import User
from audit.services import custody_event_append

from .models import Camera, CameraAssignment, Dock, DockSlot, OffloadSession
from .services import camera_register
from .sources.mass_storage import SERIAL_RE

# dockd names a dock by this slug (a directory and a worker queue, dock.<name>).
DOCK_NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,49}\Z")
SLOT_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
REASON_MAX = 1000


class FleetError(Exception):
    """A change the register refuses; ``field`` names the form field the message belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _same_organisation(by: User, organisation_id: int | None) -> None:
    if by.organisation_id is None or by.organisation_id != organisation_id:
        raise FleetError(_("Cet équipement n'appartient pas à votre organisation."))


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise FleetError(_("Indiquez le motif du retrait (panne, perte, vol, fin de service…)."), "reason")
    return reason[:REASON_MAX]


def _short(value: str, field: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise FleetError(_("%(n)s caractères au plus.") % {"n": limit}, field)
    return value


# --- Cameras ---------------------------------------------------------------------------------

def camera_create(*, by: User, serial: str, model: str = "", firmware: str = "") -> Camera:
    """Register a camera in the actor's organisation (the fleet page's form)."""
    serial = (serial or "").strip()
    if not SERIAL_RE.match(serial):
        raise FleetError(_("Numéro de série : lettres, chiffres, « . », « _ » et « - », 64 caractères au plus."),
                         "serial")
    model, firmware = _short(model, "model", 100), _short(firmware, "firmware", 100)
    _same_organisation(by, by.organisation_id)
    try:
        # The same write and custody event as the command line's addcamera.
        with transaction.atomic():
            camera = camera_register(serial=serial, organisation=by.organisation, model=model, firmware=firmware,
                                     by=by)
    except IntegrityError:
        # Unique within the organisation only (issue 17): this says nothing of other communes.
        raise FleetError(_("La caméra %(serial)s est déjà enregistrée dans votre organisation.")
                         % {"serial": serial}, "serial") from None
    return camera


def camera_update(*, camera: Camera, by: User, model: str, firmware: str) -> Camera:
    """Correct a camera's model and firmware; the serial identifies its recordings and never changes."""
    _same_organisation(by, camera.organisation_id)
    model, firmware = _short(model, "model", 100), _short(firmware, "firmware", 100)
    with transaction.atomic():
        camera = Camera.objects.select_for_update().get(pk=camera.pk)
        before = {"model": camera.model, "firmware": camera.firmware}
        after = {"model": model, "firmware": firmware}
        if before == after:
            return camera
        camera.model, camera.firmware = model, firmware
        camera.save(update_fields=["model", "firmware"])
        custody_event_append(action="camera.updated", subject=camera, organisation=camera.organisation, actor=by,
                             details={"serial": camera.serial, "before": before, "after": after})
    return camera


def camera_retire(*, camera: Camera, by: User, reason: str) -> Camera:
    """Take a camera out of service: no check-out, no offload (ingest refuses an inactive camera).

    CSI R241-10: a camera still issued to an agent is checked in first, so that the wearer of its
    last recordings stays known.
    """
    _same_organisation(by, camera.organisation_id)
    reason = _reason(reason)

    def not_issued(locked: Camera) -> None:
        current = CameraAssignment.objects.filter(camera=locked, ends_at__isnull=True).select_related("officer").first()
        if current is not None:
            raise FleetError(_("La caméra %(serial)s est remise à %(officer)s : enregistrez d'abord son retour.")
                             % {"serial": locked.serial, "officer": current.officer})

    return _in_service(camera, False, by=by, action="camera.retired",
                       details={"serial": camera.serial, "reason": reason},
                       already=_("La caméra %(serial)s est déjà retirée du service.") % {"serial": camera.serial},
                       check=not_issued)


def camera_reinstate(*, camera: Camera, by: User, reason: str = "") -> Camera:
    """Bring a retired camera back into service."""
    _same_organisation(by, camera.organisation_id)
    reason = _short(reason, "reason", REASON_MAX)
    return _in_service(camera, True, by=by, action="camera.reinstated",
                       details={"serial": camera.serial, "reason": reason},
                       already=_("La caméra %(serial)s est déjà en service.") % {"serial": camera.serial})


# --- Docks -----------------------------------------------------------------------------------

def _slot_names(slots: str | list[str]) -> list[str]:
    if isinstance(slots, str):
        slots = re.split(r"[\s,;]+", slots)
    names = []
    for name in (s.strip() for s in slots):
        if not name:
            continue
        if not SLOT_NAME_RE.match(name):
            raise FleetError(_("Emplacement « %(name)s » : lettres, chiffres, « . », « _ » et « - ».")
                             % {"name": name[:100]}, "slots")
        if name not in names:
            names.append(name)
    return names


def _claimable(dock: Dock, organisation_id: int) -> bool:
    """A dock dockd created on the fly (no organisation) may be bound by the only commune using it.

    Only when every offload on it was of this organisation's cameras, and there was at least one:
    binding a dock makes it refuse every other commune's cameras (issue 17), and an unused name
    could be another commune's station not yet in service.
    """
    if dock.organisation_id is not None:
        return False
    organisations = set(OffloadSession.objects.filter(dock=dock).values_list("organisation_id", flat=True))
    return organisations == {organisation_id}


def dock_create(*, by: User, name: str, label: str = "", slots: str | list[str] = "") -> Dock:
    """Register a dock of the actor's organisation and its slots.

    ``name`` is the identifier dockd is configured with (TEMOIN_DOCK_NAME); the dock then offloads
    only this organisation's cameras (devices.selectors.camera_for_docking, issue 17). A dock dockd
    already created under that name is bound to the organisation when only its cameras used it.
    """
    name = (name or "").strip()
    if not DOCK_NAME_RE.match(name):
        raise FleetError(_("Identifiant : lettres minuscules, chiffres, « - » et « _ », 50 caractères au plus."), "name")
    label = _short(label, "label", 200)
    slot_names = _slot_names(slots)
    _same_organisation(by, by.organisation_id)
    try:
        with transaction.atomic():
            dock = Dock.objects.select_for_update().filter(name=name).first()
            claimed = dock is not None
            if dock is None:
                dock = Dock.objects.create(name=name, label=label, organisation_id=by.organisation_id)
            elif _claimable(dock, by.organisation_id):
                dock.organisation_id, dock.label = by.organisation_id, label
                dock.save(update_fields=["organisation", "label"])
            else:
                raise IntegrityError("dock name taken")
            existing = set(dock.slots.values_list("name", flat=True))
            DockSlot.objects.bulk_create(DockSlot(dock=dock, name=s) for s in slot_names if s not in existing)
            custody_event_append(action="dock.registered", subject=dock, organisation=dock.organisation, actor=by,
                                 details={"name": name, "label": label, "slots": slot_names}
                                 | ({"claimed": True} if claimed else {}))
    except IntegrityError:
        # Dock names are unique in the deployment: dockd and the worker queues know them by name.
        raise FleetError(_("L'identifiant « %(name)s » est déjà pris : choisissez-en un autre.") % {"name": name},
                         "name") from None
    return dock


def dock_update(*, dock: Dock, by: User, label: str, add_slots: str | list[str] = "") -> Dock:
    """Rename a dock (its label; the identifier dockd uses stays) and add slots to it."""
    _same_organisation(by, dock.organisation_id)
    label = _short(label, "label", 200)
    slot_names = _slot_names(add_slots)
    with transaction.atomic():
        dock = Dock.objects.select_for_update().get(pk=dock.pk)
        existing = set(dock.slots.values_list("name", flat=True))
        new_slots = [s for s in slot_names if s not in existing]
        if label == dock.label and not new_slots:
            return dock
        details = {"name": dock.name}
        if label != dock.label:
            details.update(label_before=dock.label, label=label)
            dock.label = label
            dock.save(update_fields=["label"])
        if new_slots:
            DockSlot.objects.bulk_create(DockSlot(dock=dock, name=s) for s in new_slots)
            details["slots_added"] = new_slots
        custody_event_append(action="dock.updated", subject=dock, organisation=dock.organisation, actor=by,
                             details=details)
    return dock


def dock_retire(*, dock: Dock, by: User, reason: str) -> Dock:
    """Take a dock out of service: cameras docked on it are no longer offloaded (nor wiped)."""
    _same_organisation(by, dock.organisation_id)
    reason = _reason(reason)
    return _in_service(dock, False, by=by, action="dock.retired", details={"name": dock.name, "reason": reason},
                       already=_("La station %(name)s est déjà retirée du service.") % {"name": dock.name})


def dock_reinstate(*, dock: Dock, by: User, reason: str = "") -> Dock:
    _same_organisation(by, dock.organisation_id)
    reason = _short(reason, "reason", REASON_MAX)
    return _in_service(dock, True, by=by, action="dock.reinstated", details={"name": dock.name, "reason": reason},
                       already=_("La station %(name)s est déjà en service.") % {"name": dock.name})


def _in_service(obj, active: bool, *, by: User, action: str, details: dict, already: str, check=None):
    """Put a camera or a dock in or out of service, under its row lock, logged in the same transaction
    (CSI R241-14); ``already`` when it is so already, ``check(locked)`` may refuse (FleetError)."""
    with transaction.atomic():
        obj = type(obj).objects.select_for_update().get(pk=obj.pk)
        if obj.active == active:
            raise FleetError(already)
        if check is not None:
            check(obj)
        obj.active = active
        obj.save(update_fields=["active"])
        custody_event_append(action=action, subject=obj, organisation=obj.organisation, actor=by, details=details)
    return obj
