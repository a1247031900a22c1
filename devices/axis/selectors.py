"""Reads for the Axis content destination, always within the credential's organisation."""
from __future__ import annotations

from accounts.models import Organisation
from evidence.models import Recording

from . import formats
from .errors import NotFound
from .models import AxisDevice, AxisObject, AxisRecording, AxisSystem, AxisUser

_VERIFIED = (Recording.Status.STORED, Recording.Status.PROCESSING, Recording.Status.READY,
             Recording.Status.UNPLAYABLE, Recording.Status.DUPLICATE)


def containers_of(*, organisation: Organisation):
    return AxisRecording.objects.filter(organisation=organisation).order_by("name")


def container_of(*, organisation: Organisation, name: str) -> AxisRecording:
    # get(), not first(): a unique key, and first()'s ORDER BY costs more to compile than the
    # query takes to run, on a path every clip takes.
    try:
        container = (AxisRecording.objects.select_related("axis_user__user", "device__camera")
                     .get(organisation=organisation, name=name))
    except AxisRecording.DoesNotExist:
        raise NotFound(f"no container {name}") from None
    container.organisation = organisation  # the row says so (filter above): no second load
    return container


def system_of(*, organisation: Organisation, system_id: str) -> AxisSystem:
    system = AxisSystem.objects.filter(organisation=organisation, system_id=system_id).first()
    if system is None:
        raise NotFound(f"no system {system_id}")
    return system


def axis_user_of(*, organisation: Organisation, uuid: str) -> AxisUser:
    row = AxisUser.objects.filter(organisation=organisation, uuid=uuid).first()
    if row is None:
        raise NotFound(f"no user {uuid}")
    return row


def axis_device_of(*, organisation: Organisation, serial: str) -> AxisDevice:
    row = AxisDevice.objects.filter(organisation=organisation, serial=serial).first()
    if row is None:
        raise NotFound(f"no device {serial}")
    return row


def implicit_container_listing(*, organisation: Organisation, name: str) -> list[dict]:
    if name == formats.SYSTEM:
        names = ["Capabilities.json", "Categories.json"]
        names += list(AxisSystem.objects.filter(organisation=organisation).values_list("system_id", flat=True))
    elif name == formats.USERS:
        names = list(AxisUser.objects.filter(organisation=organisation).values_list("uuid", flat=True))
    else:
        names = list(AxisDevice.objects.filter(organisation=organisation).values_list("serial", flat=True))
    return [{"name": n, "bytes": 0} for n in sorted(names)]


def container_listing(*, container: AxisRecording) -> list[dict]:
    """What has arrived and is safe: verified clips and stored objects (the BWS re-sends the rest)."""
    entries = [_clip_entry(c) for c in container.clips.select_related("recording")
               if c.recording.status in _VERIFIED]
    latest: dict[str, AxisObject] = {}
    for obj in container.attachments.order_by("pk"):
        latest[obj.name] = obj
    entries += [_object_entry(o) for o in latest.values()]
    return sorted(entries, key=lambda e: e["name"])


def _clip_entry(clip) -> dict:
    rec = clip.recording
    return {"name": clip.name, "bytes": rec.size or 0, "hash": clip.md5, "sha256": rec.sha256,
            "last_modified": rec.verified_at, "metadata": clip.metadata,
            "content_type": formats.CLIP_TYPES.get(clip.name.rsplit(".", 1)[-1].lower(), "application/octet-stream")}


def _object_entry(obj: AxisObject) -> dict:
    return {"name": obj.name, "bytes": obj.size, "hash": obj.md5, "sha256": obj.sha256,
            "last_modified": obj.created_at, "metadata": obj.metadata,
            "content_type": "application/json" if obj.kind == "track" else "application/octet-stream"}


def object_of(*, container: AxisRecording, name: str) -> dict:
    """HEAD of a recording object: found only once verified in the store (else 404: send it again)."""
    clip = container.clips.select_related("recording").filter(name=name).first()
    if clip is not None and clip.recording.status in _VERIFIED:
        return _clip_entry(clip)
    obj = container.attachments.filter(name=name).order_by("-pk").first()
    if obj is not None and obj.sha256:
        return _object_entry(obj)
    raise NotFound(f"no object {name}")
