"""Conservation pour procédure (CSI L241-2, R241-13): the only exception to erasure after one month.

A hold names its procedure (judicial, administrative or disciplinary, and its reference) and covers
the recordings it was placed on: one recording, or every recording of an intervention at that
moment. The coverage is fixed: re-tagging a recording's intervention afterwards neither moves it
into a hold nor out of one. A recording collected later whose camera metadata names a held
intervention joins that hold at collection (logged). The store's legal hold follows the database,
object by object: on while an active hold covers the recording, off once none does.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from audit.services import custody_event_append

from ..integrations.store import ObjectMissing, get_store
from ..models import Hold, Procedure, Recording
from . import RetentionRefused
from .objects import recording_store_keys

HOLD_PLACERS = {"supervisor", "legal"}
HOLD_RELEASERS = {"legal"}


def active_holds_q() -> Q:
    """Q over Recording: covered by a hold that has not been released."""
    coverage = Hold.covered.through.objects.filter(recording_id=OuterRef("pk"), hold__released_at__isnull=True)
    return Q(Exists(coverage))


def recording_is_held(recording: Recording) -> bool:
    return Hold.objects.filter(covered=recording, released_at__isnull=True).exists()


def legal_hold_set(recording: Recording, on: bool) -> None:
    """Put the store's legal hold on (or off) every object the recording owns."""
    store = get_store()
    for key, version in recording_store_keys(recording):
        try:
            store.set_legal_hold(key, version, on)
        except ObjectMissing:
            continue  # not written yet (a playback copy in the making gets it when written)


def hold_place(*, by: User, procedure: str, reference: str, recording: Recording | None = None,
               intervention: str = "", motif: str = "", now: dt.datetime | None = None) -> Hold:
    """Place a hold for a procedure on one recording or on the recordings of an intervention."""
    if by.role not in HOLD_PLACERS:
        raise PermissionError("placing a hold needs the supervisor or legal role")
    if procedure not in Procedure.values:
        raise ValueError(f"procedure must be one of {', '.join(Procedure.values)}")
    reference = (reference or "").strip()
    if not reference:
        raise ValueError("a hold names the procedure's reference")
    if (recording is None) == (not intervention.strip()):
        raise ValueError("a hold covers either one recording or one intervention")
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the rows: a sweep erasing one of them right now finishes its first phase first,
        # and the hold is then refused for it; a sweep that comes after sees the hold.
        if recording is not None:
            recording = Recording.objects.select_for_update().get(pk=recording.pk)
            if recording.organisation_id != by.organisation_id:
                raise PermissionError("recording outside your organisation")
            _check_holdable(recording)
            covered = [recording]
        else:
            intervention = intervention.strip()
            covered = list(Recording.objects.select_for_update().filter(
                pk__in=_intervention_recordings(by.organisation_id, intervention).values("pk"),
            ).exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING]).order_by("pk"))
        hold = Hold.objects.create(
            organisation_id=by.organisation_id, procedure=procedure, reference=reference,
            recording=recording, intervention=intervention if recording is None else "",
            motif=motif, placed_by=by, placed_at=now,
        )
        hold.covered.set(covered)
        for rec in covered:
            legal_hold_set(rec, True)
            custody_event_append(action="hold.placed", subject=rec, actor=by, motif=motif,
                                 details={"hold": hold.pk, "procedure": procedure, "reference": reference,
                                          "intervention": hold.intervention})
        if not covered:
            custody_event_append(action="hold.placed", subject=hold, organisation=by.organisation, actor=by,
                                 motif=motif, details={"procedure": procedure, "reference": reference,
                                                                "intervention": hold.intervention, "recordings": []})
    return hold


def _intervention_recordings(organisation_id, reference: str):
    """The recordings linked to the intervention at this moment (issue #21); for a number no
    intervention was ever created under, the recordings tagged with it."""
    from ..interventions.models import Intervention
    from ..interventions.selectors import intervention_linked_recordings

    intervention = Intervention.objects.filter(organisation_id=organisation_id, reference=reference).first()
    if intervention is not None:
        return intervention_linked_recordings(intervention=intervention)
    return Recording.objects.filter(organisation_id=organisation_id, intervention=reference)


def _check_holdable(recording: Recording) -> None:
    if recording.status == Recording.Status.ERASED:
        raise RetentionRefused(f"recording {recording.pk} was already erased on {recording.erased_at:%d/%m/%Y}")
    if recording.status == Recording.Status.ERASING:
        raise RetentionRefused(f"recording {recording.pk}: its retention ended and its erasure is under way "
                               f"(since {recording.erasure_started_at:%d/%m/%Y %H:%M})")


def hold_release(*, hold: Hold, by: User, motif: str, now: dt.datetime | None = None) -> Hold:
    """Release a hold (legal role, with a motif). The store's legal hold of each recording it covered
    goes as soon as no other active hold covers that recording."""
    if by.role not in HOLD_RELEASERS:
        raise PermissionError("releasing a hold needs the legal role")
    if not (motif or "").strip():
        raise ValueError("releasing a hold needs a motif")
    now = now or timezone.now()
    with transaction.atomic():
        hold = Hold.objects.select_for_update().get(pk=hold.pk)
        if hold.organisation_id != by.organisation_id:
            raise PermissionError("hold outside your organisation")
        if hold.released_at is not None:
            raise ValueError("this hold was already released")
        hold.released_at, hold.released_by, hold.release_motif = now, by, motif.strip()
        hold.save(update_fields=["released_at", "released_by", "release_motif"])
        covered = list(Recording.objects.select_for_update().filter(covering_holds=hold).order_by("pk"))
        for rec in covered:
            if rec.status == Recording.Status.ERASED:
                continue
            if not recording_is_held(rec):
                legal_hold_set(rec, False)
            custody_event_append(action="hold.released", subject=rec, actor=by, motif=motif,
                                 details={"hold": hold.pk, "procedure": hold.procedure, "reference": hold.reference})
        if not covered:
            custody_event_append(action="hold.released", subject=hold, organisation=hold.organisation, actor=by,
                                 motif=motif, details={"hold": hold.pk, "procedure": hold.procedure,
                                                                "reference": hold.reference})
    return hold


def recording_join_held_intervention(*, recording: Recording, now: dt.datetime | None = None) -> list[Hold]:
    """At collection, a recording whose camera metadata names an intervention under an active
    intervention hold joins that hold (the procedure asked for the whole intervention).

    Only at collection: a tag changed later by a person never moves a recording into a hold.
    """
    if not recording.intervention:
        return []
    now = now or timezone.now()
    with transaction.atomic():
        holds = list(Hold.objects.select_for_update().filter(
            organisation_id=recording.organisation_id, intervention=recording.intervention,
            released_at__isnull=True).exclude(covered=recording))
        if not holds:
            return []
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.status in (Recording.Status.ERASED, Recording.Status.ERASING):
            return []
        for hold in holds:
            hold.covered.add(rec)
            custody_event_append(action="hold.extended", subject=rec, actor_label="system:collection",
                                 details={"hold": hold.pk, "procedure": hold.procedure, "reference": hold.reference,
                                          "intervention": hold.intervention})
        legal_hold_set(rec, True)
    return holds


def holds_for_recording_q(recording: Recording) -> Q:
    return Q(covered=recording) | Q(recording=recording)
