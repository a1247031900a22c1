"""The time of a recording, and whether it is attested (LEGAL.md rule 1, CSI R241-10).

``camera_clock``: what a docking tells of the camera's clock, read before anything is pulled;
``recording_times``: start and end from the sidecar, the container, then the file's time (flagged
"time not attested"). Retention ends are computed from these (``evidence.retention.dates``).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from accounts.models import Organisation
from devices.models import Camera, OffloadSession

from ..integrations import ffmpeg
from ..retention import CameraClock
from ..retention.dates import CLOCK_TOLERANCE
from .sidecar import SidecarMetadata


def camera_clock(camera: Camera, scan, now: dt.datetime) -> CameraClock:
    """What this docking tells of the camera's clock (CSI R241-10), read before anything is pulled.

    The camera's own time in DEVICE.json gives its offset from the dock's clock. Otherwise, a
    newest clip that ended within the last day says the clock agrees with the dock's (the camera
    has just been used). The previous complete docking is kept as well: a clip seen for the first
    time was recorded after it, so a date before it proves the clock wrong.
    """
    previous = (OffloadSession.objects.filter(camera=camera, status=OffloadSession.Status.COMPLETE)
                .order_by("-started_at").values_list("started_at", flat=True).first())
    if scan.device.clock is not None:
        return CameraClock(source="device_clock", offset=scan.device.clock - now, previous_docking=previous)
    newest = max((c.mtime_ns for c in scan.clips), default=None)
    if newest is not None:
        newest_time = dt.datetime.fromtimestamp(newest / 1e9, tz=dt.timezone.utc)
        if now - dt.timedelta(days=1) <= newest_time <= now + CLOCK_TOLERANCE:
            return CameraClock(source="newest_clip", offset=dt.timedelta(0), previous_docking=previous)
    return CameraClock(source="", offset=None, previous_docking=previous)


def recording_times(session, item, meta: SidecarMetadata, path: Path, org: Organisation):
    """Start/end and whether they are attested (CSI R241-10): sidecar, container, file time."""
    tz = dt.timezone.utc
    f = meta.fields
    if "started_at" in f:
        start = f["started_at"]
        value = start.value
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(org.time_zone))
        end = None
        if "ended_at" in f:
            end = f["ended_at"].value
            if end.tzinfo is None:
                end = end.replace(tzinfo=ZoneInfo(org.time_zone))
        return value, end, "sidecar", start.attested
    try:
        info = ffmpeg.probe(path)
        if info.creation_time is not None:
            start = info.creation_time if info.creation_time.tzinfo else info.creation_time.replace(tzinfo=tz)
            end = start + dt.timedelta(seconds=info.duration) if info.duration else None
            return start, end, "container", True
    except ffmpeg.MediaError:
        pass
    mtime = dt.datetime.fromtimestamp(item.mtime_ns / 1e9, tz=tz)
    return mtime, None, "file_mtime", False
