"""A clip and its sidecar uploaded as two files through the same link (issue 22, item 4).

A partner who selects an export's files in the page (``cam1.mp4``, ``cam1.xml``, ``Player.exe``)
sends them as separate tus uploads. Each is kept as evidence as it came (``upload.py``); once both
a clip and a sidecar of the same name (``.txt``, ``.xml``, ``.json``, ``.ini``; whichever arrives
last) are stored, the sidecar's times, camera name and hash are written onto the clip's recording,
with the custody event ``recording.metadata_updated`` in the same transaction (CSI R241-14). The
sidecar is read from the store (what is under custody), never trusted beyond its fields: a
SHA-256 that differs is flagged, the clip kept.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from pathlib import PurePosixPath

from django.db import transaction

from audit.services import custody_event_append
from devices.sources.mass_storage import CLIP_EXTENSIONS

from ..integrations.store import StoreError, get_store
from ..models import Recording
from .bundles import META_MAX_BYTES, PARSE_ERRORS, SIDECAR_EXTENSIONS, meta_from_fields, read_sidecar
from .models import RequisitionUpload


def _stem(filename: str) -> tuple[str, str]:
    path = PurePosixPath(filename.replace("\\", "/"))
    return str(path.with_suffix("")).lower(), path.suffix.lower()


def sidecar_pair(*, upload: RequisitionUpload) -> Recording | None:
    """Pair the just-stored ``upload`` with its clip or sidecar under the same requisition, if any:
    the clip's recording, completed; None when there is nothing to pair."""
    stem, ext = _stem(upload.filename)
    if not stem or ext not in CLIP_EXTENSIONS | SIDECAR_EXTENSIONS:
        return None
    others = (RequisitionUpload.objects.filter(requisition_id=upload.requisition_id,
                                               status=RequisitionUpload.Status.STORED)
              .exclude(pk=upload.pk).select_related("recording"))
    wanted = SIDECAR_EXTENSIONS if ext in CLIP_EXTENSIONS else CLIP_EXTENSIONS
    partner = next((o for o in others if _stem(o.filename)[0] == stem and _stem(o.filename)[1] in wanted), None)
    if partner is None:
        return None
    clip, sidecar = (upload, partner) if ext in CLIP_EXTENSIONS else (partner, upload)
    return _apply(clip=clip, sidecar=sidecar)


def _apply(*, clip: RequisitionUpload, sidecar: RequisitionUpload) -> Recording | None:
    requisition = clip.requisition
    side_rec = sidecar.recording
    if side_rec.size is None or side_rec.size > META_MAX_BYTES:
        return None
    try:
        with contextlib.closing(get_store().open(side_rec.store_key, side_rec.store_version_id)) as fh:
            data = fh.read(META_MAX_BYTES + 1)
        fields = read_sidecar(sidecar.filename, data)
        problem = ""
    except (StoreError, OSError):
        return None  # the store answers again later: the clip stays as it is, nothing lost
    except PARSE_ERRORS as exc:
        fields, problem = {}, f"sidecar {sidecar.filename} not readable ({exc})"
    meta = meta_from_fields(fields, origin=f"sidecar {sidecar.filename}", tz_name=requisition.organisation.time_zone)
    flags = [*meta.flags, *([problem] if problem else [])]
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=clip.recording_id)
        if rec.sidecar_sha256 or rec.status in (Recording.Status.ERASING, Recording.Status.ERASED):
            return None  # paired already (one sidecar per clip), or gone
        if meta.started_at:
            rec.started_at, rec.time_source, rec.time_attested = meta.started_at, "sidecar", False
        if meta.ended_at:
            rec.ended_at = meta.ended_at
        elif meta.started_at and rec.duration:
            rec.ended_at = meta.started_at + dt.timedelta(seconds=rec.duration)
        rec.source_camera = meta.camera or rec.source_camera
        rec.sidecar_sha256 = hashlib.sha256(data).hexdigest()
        if meta.hash_algorithm == "sha256" and not rec.camera_sha256:
            rec.camera_sha256, rec.camera_hash_matches = meta.hash_value, meta.hash_value == rec.sha256
            if not rec.camera_hash_matches:
                flags.append(f"SHA-256 {rec.sha256} differs from the one the sidecar {sidecar.filename} gives "
                             f"({meta.hash_value}): kept as received, flagged")
        elif meta.hash_value:
            flags.append(f"{meta.hash_algorithm.upper()} {meta.hash_value} given by the sidecar: not checked "
                         f"(a separate upload is hashed with SHA-256 only; SHA-256 {rec.sha256})")
        rec.sidecar_errors = [*rec.sidecar_errors, *flags]
        rec.save(update_fields=["started_at", "ended_at", "time_source", "time_attested", "source_camera",
                                "sidecar_sha256", "camera_sha256", "camera_hash_matches", "sidecar_errors"])
        custody_event_append(
            action="recording.metadata_updated", subject=rec, actor_label=f"partner:{requisition.partner}"[:200],
            details={"sidecar_upload": sidecar.uid, "sidecar_filename": sidecar.filename,
                     "sidecar_recording": side_rec.pk, "sidecar_sha256": rec.sidecar_sha256,
                     "started_at": meta.started_at.isoformat() if meta.started_at else None,
                     "ended_at": meta.ended_at.isoformat() if meta.ended_at else None,
                     "source_camera": meta.camera or None, "hash_matches": rec.camera_hash_matches, "flags": flags})
    return rec
