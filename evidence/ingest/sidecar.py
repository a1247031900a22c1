"""A clip's sidecar (ARCHITECTURE.md §5) and the wearer it names (LEGAL.md rule 1, CSI R241-10).

A malformed sidecar never refuses the clip: its errors are kept and the recording goes to the
wearer's "to complete" queue (LEGAL.md rule 3, CSI L241-2). Without a named officer, the wearer is
the camera's assignment at the recording's start.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from accounts.models import User
from devices.models import Camera, CameraAssignment, OffloadItem, OffloadSession
from devices.sources import mass_storage


def assignment_wearer(camera: Camera, at: dt.datetime | None) -> User | None:
    if at is None:
        return None
    a = (CameraAssignment.objects.filter(camera=camera, starts_at__lte=at)
         .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at)).select_related("officer").order_by("-starts_at").first())
    return a.officer if a else None


@dataclass
class SidecarMetadata:
    fields: dict
    errors: list
    sidecar_raw: bytes | None


def sidecar_read(session: OffloadSession, item: OffloadItem) -> SidecarMetadata:
    if not item.sidecar_path:
        return SidecarMetadata({}, [], None)
    try:
        with mass_storage.volume_open(Path(session.volume), item.sidecar_path) as fh:
            raw = fh.read(64 * 1024 * 1024 + 1)
    except OSError as exc:
        return SidecarMetadata({}, [f"sidecar unreadable: {exc}"], None)
    if len(raw) > 64 * 1024 * 1024:
        return SidecarMetadata({}, ["sidecar larger than 64 MiB: left on the camera"], None)
    fields, errors = mass_storage.sidecar_parse(raw, max_bytes=settings.TEMOIN_SIDECAR_MAX_BYTES)
    return SidecarMetadata(fields, errors, raw)

