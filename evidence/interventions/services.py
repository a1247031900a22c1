"""Writes on interventions (issue #21): creation, links, clock corrections, consultation of all.

Every write runs in one transaction with its custody event (STYLE.md; CSI R241-14: collection,
modification and consultation are logged with author, date, time and motif).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Role, User
from audit.services import custody_event_append

from ..models import GONE_STATUSES, Recording
from .models import Intervention, InterventionClockCorrection, InterventionLink

# Who creates interventions and links recordings to them: the wearer (their own recordings) and
# the head of service; legal staff build the file of a procedure. Unlinking is the supervisor's.
INTERVENTION_EDITORS = {Role.OFFICER, Role.SUPERVISOR, Role.LEGAL}
INTERVENTION_UNLINKERS = {Role.SUPERVISOR}
# A suggestion is confirmed by a supervisor, or by the wearer of the suggested recording.
SUGGESTION_CONFIRMERS = {Role.SUPERVISOR, Role.OFFICER}
CLOCK_CORRECTORS = {Role.SUPERVISOR, Role.LEGAL}
# A correction beyond a day is a mistake, not a camera clock that drifted.
MAX_CLOCK_CORRECTION = 86_400.0


class InterventionError(ValueError):
    """A refused write, with the field it is about (for the API's 400 body)."""

    def __init__(self, message: str, field: str = "detail"):
        super().__init__(message)
        self.field = field


def reference_clean(reference: str) -> str:
    reference = " ".join((reference or "").split())
    if not reference:
        raise InterventionError("name the intervention (the service's numbering)", "reference")
    if len(reference) > 100:
        raise InterventionError("100 characters at most", "reference")
    return reference


def _check_member(by: User) -> None:
    if not by.is_authenticated or by.organisation_id is None or by.role not in INTERVENTION_EDITORS:
        raise PermissionError("creating or linking interventions needs the officer, supervisor or legal role")


def _check_recordings(by: User, recordings: Iterable[Recording]) -> list[Recording]:
    out = []
    for rec in recordings:
        if rec.organisation_id != by.organisation_id:
            raise PermissionError("recording outside your organisation")
        if by.role == Role.OFFICER and rec.wearer_id != by.pk:
            # CSI R241-12: the wearer acts on their own recordings only.
            raise PermissionError("an officer links only their own recordings")
        if rec.status in GONE_STATUSES:
            raise InterventionError(f"recording {rec.pk} was erased", "recordings")
        out.append(rec)
    return out


def _link(intervention: Intervention, recordings: list[Recording], *, source: str, by: User | None,
          actor_label: str, now: dt.datetime, motif: str = "") -> list[Recording]:
    """Link what is not linked yet; one custody event per new link, on the recording."""
    already = set(InterventionLink.objects.filter(intervention=intervention, recording__in=recordings)
                  .values_list("recording_id", flat=True))
    added = []
    for rec in recordings:
        if rec.pk in already:
            continue
        InterventionLink.objects.create(intervention=intervention, recording=rec, source=source, linked_by=by,
                                        linked_at=now)
        already.add(rec.pk)
        added.append(rec)
        custody_event_append(action="intervention.linked", subject=rec, actor=by, actor_label=actor_label,
                             motif=motif, now=now,
                             details={"intervention": intervention.reference, "intervention_id": intervention.pk,
                                      "source": source})
    return added


def _insert(*, organisation_id: int, reference: str, **fields) -> Intervention | None:
    """A new intervention, or None when another transaction has just created the same reference
    (two requests, or two clips pulled at once, naming a new one: the unique constraint decides,
    in a savepoint so that the caller's transaction goes on)."""
    try:
        with transaction.atomic():
            return Intervention.objects.create(organisation_id=organisation_id, reference=reference, **fields)
    except IntegrityError:
        if not Intervention.objects.filter(organisation_id=organisation_id, reference=reference).exists():
            raise  # another constraint: not the race this is for
        return None


def _created(intervention: Intervention, by: User | None, actor_label: str, now: dt.datetime) -> None:
    custody_event_append(action="intervention.created", subject=intervention,
                         organisation=intervention.organisation, actor=by, actor_label=actor_label, now=now,
                         details={"reference": intervention.reference, "place": intervention.place,
                                  "notes": intervention.notes[:2000]})


def intervention_create(*, by: User, reference: str, recordings: Iterable[Recording] = (), notes: str = "",
                        place: str = "", now: dt.datetime | None = None) -> Intervention:
    """Create an intervention under the service's reference and link the given recordings."""
    _check_member(by)
    reference = reference_clean(reference)
    recordings = _check_recordings(by, recordings)
    now = now or timezone.now()
    with transaction.atomic():
        intervention = _insert(organisation_id=by.organisation_id, reference=reference, notes=(notes or "").strip(),
                               place=(place or "").strip()[:300], created_by=by, created_at=now)
        if intervention is None:
            raise InterventionError(f"intervention {reference} already exists: link recordings to it", "reference")
        _created(intervention, by, "", now)
        _link(intervention, recordings, source=InterventionLink.Source.MANUAL, by=by, actor_label="", now=now)
    return intervention


def intervention_link(*, intervention: Intervention, by: User, recordings: Iterable[Recording],
                      source: str = InterventionLink.Source.MANUAL, now: dt.datetime | None = None) -> list[Recording]:
    """Link more recordings (those already linked are left as they are). Returns the new ones."""
    _check_member(by)
    if intervention.organisation_id != by.organisation_id:
        raise PermissionError("intervention outside your organisation")
    recordings = _check_recordings(by, recordings)
    now = now or timezone.now()
    with transaction.atomic():
        Intervention.objects.select_for_update().get(pk=intervention.pk)
        return _link(intervention, recordings, source=source, by=by, actor_label="", now=now)


def intervention_suggestion_confirm(*, intervention: Intervention, by: User, recordings: Iterable[Recording],
                                    now: dt.datetime | None = None) -> list[Recording]:
    """A suggested recording joins the intervention once a supervisor or its wearer confirms it."""
    if by.role not in SUGGESTION_CONFIRMERS:
        raise PermissionError("a suggestion is confirmed by a supervisor or by the wearer")
    return intervention_link(intervention=intervention, by=by, recordings=recordings,
                             source=InterventionLink.Source.SUGGESTION, now=now)


def intervention_unlink(*, intervention: Intervention, recording: Recording, by: User, motif: str = "",
                        now: dt.datetime | None = None) -> None:
    """Take a recording out of an intervention (supervisor). Holds already placed keep covering it:
    their coverage was fixed when they were placed (CSI R241-13, evidence/retention/holds.py)."""
    if by.role not in INTERVENTION_UNLINKERS:
        raise PermissionError("unlinking a recording needs the supervisor role")
    if intervention.organisation_id != by.organisation_id:
        raise PermissionError("intervention outside your organisation")
    now = now or timezone.now()
    with transaction.atomic():
        link = InterventionLink.objects.select_for_update().filter(intervention=intervention,
                                                                  recording=recording).first()
        if link is None:
            raise InterventionError("this recording is not linked to the intervention", "recording")
        source = link.source
        link.delete()
        custody_event_append(action="intervention.unlinked", subject=recording, actor=by, motif=motif, now=now,
                             details={"intervention": intervention.reference, "intervention_id": intervention.pk,
                                      "source": source})


def _named_intervention(recording: Recording, now: dt.datetime, actor_label: str, by: User | None) -> Intervention:
    intervention = (Intervention.objects.select_for_update()
                    .filter(organisation_id=recording.organisation_id, reference=recording.intervention).first())
    if intervention is None:
        intervention = _insert(organisation_id=recording.organisation_id, reference=recording.intervention,
                               created_by=by, created_label=actor_label, created_at=now)
        if intervention is None:  # created meanwhile by another pull or request: link to that one
            return Intervention.objects.select_for_update().get(organisation_id=recording.organisation_id,
                                                                reference=recording.intervention)
        _created(intervention, by, actor_label, now)
    return intervention


def recording_link_named_intervention(*, recording: Recording, source: str, actor_label: str = "",
                                      by: User | None = None, now: dt.datetime | None = None) -> Intervention | None:
    """Link a recording to the intervention its metadata or tag names, creating it if new.

    Called at collection (the camera's sidecar or the Axis system names it) and when a person tags
    the recording; both logged. Nothing when the recording names no intervention.
    """
    reference = " ".join((recording.intervention or "").split())[:100]
    if not reference or recording.status in GONE_STATUSES:
        return None
    now = now or timezone.now()
    with transaction.atomic():
        recording.intervention = reference
        intervention = _named_intervention(recording, now, actor_label, by)
        _link(intervention, [recording], source=source, by=by, actor_label=actor_label, now=now)
    return intervention


# Links that only restate the recording's intervention tag (or the camera's metadata it came from):
# they follow the tag when a person changes it. Links made by hand or confirmed stay.
TAG_SOURCES = {InterventionLink.Source.TAG, InterventionLink.Source.SIDECAR, InterventionLink.Source.AXIS}


def recording_intervention_retagged(*, recording: Recording, old_reference: str, by: User,
                                    now: dt.datetime | None = None) -> Intervention | None:
    """The recording's intervention tag changed: the link its old tag made goes (logged), and the
    recording joins the intervention its new tag names (created if new). Holds already placed keep
    their coverage (CSI R241-13, evidence/retention/holds.py)."""
    now = now or timezone.now()
    old_reference = " ".join((old_reference or "").split())[:100]
    with transaction.atomic():
        if old_reference:
            for link in (InterventionLink.objects.select_for_update().select_related("intervention")
                         .filter(recording=recording, intervention__reference=old_reference,
                                 intervention__organisation_id=recording.organisation_id, source__in=TAG_SOURCES)):
                link.delete()
                custody_event_append(action="intervention.unlinked", subject=recording, actor=by, now=now,
                                     details={"intervention": link.intervention.reference,
                                              "intervention_id": link.intervention_id, "source": link.source,
                                              "reason": "tag changed"})
        return recording_link_named_intervention(recording=recording, source=InterventionLink.Source.TAG, by=by,
                                                 now=now)


def intervention_clock_correct(*, intervention: Intervention, camera, seconds: float, by: User, motif: str,
                               now: dt.datetime | None = None) -> InterventionClockCorrection | None:
    """Set the correction of one camera's clock within the intervention (0 removes it), logged with
    its motif on every linked recording of that camera."""
    if by.role not in CLOCK_CORRECTORS:
        raise PermissionError("correcting a camera's time needs the supervisor or legal role")
    if intervention.organisation_id != by.organisation_id or camera.organisation_id != by.organisation_id:
        raise PermissionError("outside your organisation")
    try:
        seconds = round(float(seconds), 3)
    except (TypeError, ValueError):
        raise InterventionError("seconds: a number of seconds", "seconds") from None
    if seconds != seconds or abs(seconds) > MAX_CLOCK_CORRECTION:
        raise InterventionError("seconds: at most one day either way", "seconds")
    motif = (motif or "").strip()
    if len(motif) < 3:
        raise InterventionError("motif: say why this camera's time is corrected", "motif")
    now = now or timezone.now()
    with transaction.atomic():
        Intervention.objects.select_for_update().get(pk=intervention.pk)
        old = InterventionClockCorrection.objects.filter(intervention=intervention, camera=camera).first()
        previous = old.seconds if old else 0.0
        if seconds == 0:
            if old:
                old.delete()
            correction = None
        else:
            correction, _ = InterventionClockCorrection.objects.update_or_create(
                intervention=intervention, camera=camera,
                defaults=dict(seconds=seconds, motif=motif[:2000], set_by=by, set_at=now))
        linked = list(Recording.objects.filter(intervention_links__intervention=intervention, camera=camera))
        details = {"intervention": intervention.reference, "intervention_id": intervention.pk,
                   "camera": camera.serial, "from_seconds": previous, "to_seconds": seconds}
        for rec in linked:
            custody_event_append(action="intervention.clock_corrected", subject=rec, actor=by, motif=motif,
                                 now=now, details=details)
        if not linked:
            custody_event_append(action="intervention.clock_corrected", subject=intervention,
                                 organisation=intervention.organisation, actor=by, motif=motif, now=now,
                                 details=details)
    return correction


def intervention_consult(*, intervention: Intervention, by: User, recordings: list[Recording], motif: str,
                         now: dt.datetime | None = None) -> list[tuple[Recording, object, str]]:
    """One motif opens the consultation of every recording shown: one consultation (and one entry
    of the register) per recording, through the recordings' own consultation service (CSI R241-14).

    ``recordings`` are those the caller obtained from ``intervention_recordings_visible_to``;
    recordings without a playback copy are left out (nothing to show, nothing logged).
    """
    from evidence.access.services import consultation_open

    motif = (motif or "").strip()
    if len(motif) < 3:
        raise InterventionError("motif: state why you view these recordings", "motif")
    now = now or timezone.now()
    playable = [r for r in recordings
                if r.status in (Recording.Status.READY, Recording.Status.UNPLAYABLE) and r.playback_key]
    if not playable:
        raise InterventionError("no recording of this intervention can be played yet", "detail")
    opened = []
    with transaction.atomic():
        for rec in playable:
            consultation, token = consultation_open(recording=rec, by=by, motif=motif, now=now)
            opened.append((rec, consultation, token))
    return opened
