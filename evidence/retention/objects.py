"""What a recording owns in the write-once store: every object that follows its fate (CSI R241-13).

The original, its sidecar, its playback copy and poster, and its redacted copies are kept and held
with it and erased with it. Export packages carry copies of recordings too: a package lives only
while every recording in it is kept (``exports_carrying``).
"""
from __future__ import annotations

from django.db.models import QuerySet

from ..models import Recording


def recording_store_keys(recording: Recording, derivatives=None) -> list[tuple[str, str]]:
    """Every object that follows the original's fate: (key, version id), original last.

    ``derivatives``: the recording's redacted copies when the caller already read them for a batch.
    The original comes last so that an erasure interrupted half-way still holds the evidence.
    """
    from evidence.redaction.models import Derivative

    if derivatives is None:
        derivatives = Derivative.objects.filter(recording=recording)
    keys = [(recording.playback_key, recording.playback_version_id),
            (recording.poster_key, recording.poster_version_id),
            (recording.sidecar_key, recording.sidecar_version_id)]
    # CSI R241-13: redacted copies are derivatives: erased with the original, held with it.
    keys += [(d.store_key, d.store_version_id) for d in derivatives]
    keys.append((recording.store_key, recording.store_version_id))
    return [(k, v) for k, v in keys if k]


def sidecar_key_for(store_key: str) -> str:
    """Where a recording's sidecar is kept: beside the original, under sidecars/ (fixed, so that a
    retry finds what an attempt that died had written)."""
    return store_key.replace("originals/", "sidecars/", 1).rsplit(".", 1)[0] + ".json"


def media_keys_for(store_key: str) -> tuple[str, str]:
    """Where a recording's playback copy and poster are kept (fixed keys: the media task is idempotent)."""
    base = store_key.split("/", 1)[1].rsplit(".", 1)[0]
    return f"playback/{base}.mp4", f"posters/{base}.jpg"


def exports_carrying(recording_ids) -> QuerySet:
    """Export packages still in the store that carry any of these recordings."""
    from evidence.disclosure.models import Export, ExportPurpose

    # A training package is anonymous: it lives under its own rule (LEGAL.md rule 6), not its recordings'.
    return (Export.objects.filter(status__in=[Export.Status.READY, Export.Status.ERASING],
                                  items__recording_id__in=list(recording_ids))
            .exclude(purpose=ExportPurpose.TRAINING).distinct())
