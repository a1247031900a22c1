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


# --- Who owns each object of the store (the compliance audit and the orphan settlement) ----------

class Owner(tuple):
    """(kind, ident, organisation id, must exist, locked at least until, legal hold expected)."""

    kind = property(lambda self: self[0])
    ident = property(lambda self: self[1])
    organisation_id = property(lambda self: self[2])
    must_exist = property(lambda self: self[3])
    retain_until = property(lambda self: self[4])
    held = property(lambda self: self[5])


def _owner(kind, ident, org_id, must_exist, retain_until=None, held=None) -> Owner:
    return Owner((kind, ident, org_id, must_exist, retain_until, held))


def objects_owned() -> tuple[dict[str, Owner], list[tuple[str, Owner]]]:
    """Every key something alive and lawful owns, and the key prefixes of writes under way.

    Alive and lawful: a recording not erased (its original, sidecar, playback copy, poster), a
    redacted copy of one, an export package whose recordings are all still kept, a signed custody
    checkpoint, an Axis container's attachments until purged, an orphan registered for erasure
    when its lock ends. Nothing else may hold bytes in the store (CSI R241-13, R241-11 V).
    """
    from audit.models import Checkpoint
    from devices.axis.models import AxisObject
    from evidence.disclosure.models import Export, ExportItem, ExportPurpose
    from evidence.redaction.models import Derivative

    from ..models import GONE_STATUSES, LIVE_STATUSES, StoreOrphan
    from .holds import active_holds_q

    Status = Recording.Status
    owned: dict[str, Owner] = {}
    held = set(Recording.objects.filter(active_holds_q()).values_list("pk", flat=True))
    checked = set(LIVE_STATUSES) | {Status.DUPLICATE}
    rows = (Recording.objects.exclude(status=Status.ERASED)
            .values_list("pk", "organisation_id", "status", "retain_until", "store_key", "sidecar_key",
                         "playback_key", "poster_key").iterator(chunk_size=5000))
    recordings: dict[int, tuple] = {}
    for pk, org, status, until, original, sidecar, playback, poster in rows:
        recordings[pk] = (org, status, until)
        full = status in checked  # verified and kept: its objects must be there, locked and held right
        for key in (original, sidecar, playback, poster):
            if key:
                owned[key] = _owner("recording", pk, org, full, until if full else None,
                                    (pk in held) if full else None)
        if original.startswith("originals/"):
            # Written by an attempt that died before recording them: the retry (the next docking, the
            # media requeue) finds and reuses them at these fixed keys.
            for key in (sidecar_key_for(original), *media_keys_for(original)):
                owned.setdefault(key, _owner("recording", pk, org, False))
    for pk, rec_id, key in Derivative.objects.values_list("pk", "recording_id", "store_key").iterator(chunk_size=5000):
        if rec_id in recordings and key:
            org, status, until = recordings[rec_id]
            full = status in checked
            owned[key] = _owner("derivative", pk, org, full, until if full else None, (rec_id in held) if full else None)
    gone_exports = set(ExportItem.objects.filter(recording__status__in=GONE_STATUSES)
                       .exclude(export__purpose=ExportPurpose.TRAINING).values_list("export_id", flat=True))
    in_progress: list[tuple[str, Owner]] = []
    for pk, org, slug, uuid, status, key, until in (Export.objects.exclude(status__in=[Export.Status.ERASED,
                                                                                      Export.Status.FAILED])
                                                    .values_list("pk", "organisation_id", "organisation__slug",
                                                                 "uuid", "status", "store_key", "retain_until")):
        if status in (Export.Status.QUEUED, Export.Status.RUNNING):
            in_progress.append((f"exports/{slug}/{uuid}/", _owner("export", pk, org, False)))
        elif status == Export.Status.ERASING and key:
            owned[key] = _owner("export", pk, org, False)
        elif key and pk not in gone_exports:
            owned[key] = _owner("export", pk, org, True, until, None)
    for pk, key in Checkpoint.objects.values_list("pk", "store_key"):
        if key:
            owned[key] = _owner("checkpoint", pk, None, True)
    for pk, org, key, until in (AxisObject.objects.filter(container__purged_at__isnull=True)
                                .values_list("pk", "container__organisation_id", "store_key", "retain_until")):
        if key:
            owned[key] = _owner("axis", pk, org, True, until, None)
    for pk, org, key in StoreOrphan.objects.filter(erased_at__isnull=True).values_list("pk", "organisation_id", "key"):
        owned[key] = _owner("orphan", pk, org, False)
    return owned, in_progress


def owner_of(key: str, owned: dict[str, Owner], in_progress: list[tuple[str, Owner]]) -> Owner | None:
    owner = owned.get(key)
    if owner is None:
        for prefix, candidate in in_progress:
            if key.startswith(prefix):
                return candidate
    return owner


def organisation_of_key(key: str) -> int | None:
    """Keys name their organisation's slug second: originals/<slug>/…, exports/<slug>/…"""
    from accounts.models import Organisation

    parts = key.split("/")
    if len(parts) < 3:
        return None
    return Organisation.objects.filter(slug=parts[1]).values_list("pk", flat=True).first()
