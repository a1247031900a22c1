"""Who owns each object of the write-once store: a kept recording, a copy that follows it, an export
package, a checkpoint, an Axis container's attachments, an orphan registered for erasure. Nothing else
may hold bytes in the store (LEGAL.md rule 4, CSI R241-13; rule 2, CSI R241-11 V). Read by the orphan
sweep (``sweep.store_orphans_settle``) and the compliance audit (``store.objects_owned``).
"""
from __future__ import annotations

from ..models import Recording
from .holds import active_holds_q
from .objects import media_keys_for, sidecar_key_for


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
    # A training package is anonymous: it lives under its own rule (LEGAL.md rule 6), not its recordings'.
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
