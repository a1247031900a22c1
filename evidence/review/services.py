"""Review of recordings: tags, hierarchical review, timecoded comments and bookmarks.

LEGAL.md rule 3 (CSI L241-2): every recording has a trigger reason and a subject-notified flag;
``false`` requires the reason the notice was omitted; missing tags go to the wearer's queue.
CSI R241-12: the supervisor's hierarchical control: a recording is marked "revu" only by someone
who consulted it (itself logged, CSI R241-14) and only once it is tagged (issue 20). LEGAL.md rule 7 (CSI R241-14): every change
is logged with its old and new values.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services import custody_event_append

from ..interventions.services import recording_intervention_retagged
from ..models import Annotation, Consultation, Purpose, Recording, ReviewState
from .selectors import to_complete_q


# --- Tags (CSI L241-2: trigger reason, information of the people filmed) ----------------------

TAG_FIELDS = ("trigger_reason", "subject_notified", "notice_omitted_reason", "purpose", "intervention")
TAGGERS = {"officer", "supervisor"}


def recording_tag(*, recording: Recording, by: User, changes: dict, now: dt.datetime | None = None) -> Recording:
    """Complete or correct a recording's tags; logs old and new values (CSI R241-14).

    The wearer tags their own recordings; supervisors tag those of their service. Not notifying
    the people filmed requires the reason (CSI L241-2: "sauf si les circonstances l'interdisent").
    """
    from ..models import TriggerReason

    if by.role not in TAGGERS:
        raise PermissionError("only the wearer or a supervisor tags recordings")
    unknown = set(changes) - set(TAG_FIELDS)
    if unknown:
        raise ValueError(f"not a tag: {', '.join(sorted(unknown))}")
    now = now or timezone.now()
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.organisation_id != by.organisation_id or (by.role == "officer" and rec.wearer_id != by.pk):
            raise PermissionError("recording outside your perimeter")
        if rec.gone:
            raise ValueError("an erased recording cannot be tagged")
        new = {f: changes.get(f, getattr(rec, f)) for f in TAG_FIELDS}
        if new["trigger_reason"] not in ("", *TriggerReason.values):
            raise ValueError(f"trigger_reason must be one of {', '.join(TriggerReason.values)}")
        if new["purpose"] not in ("", *Purpose.values):
            raise ValueError(f"purpose must be one of {', '.join(Purpose.values)}")
        if new["subject_notified"] not in (None, True, False):
            raise ValueError("subject_notified must be true or false")
        new["notice_omitted_reason"] = (new["notice_omitted_reason"] or "").strip()
        new["intervention"] = (new["intervention"] or "").strip()[:100]
        if new["subject_notified"] is False and not new["notice_omitted_reason"]:
            raise ValueError("notice_omitted_reason: say why the people filmed were not told")
        if new["subject_notified"] is True:
            new["notice_omitted_reason"] = ""
        diff = {f: [getattr(rec, f), v] for f, v in new.items() if getattr(rec, f) != v}
        if not diff:
            return rec
        for f, (_old, value) in diff.items():
            setattr(rec, f, value)
        rec.save(update_fields=list(diff))
        # CSI R241-13: a hold covers the recordings it was placed on; changing the intervention
        # tag neither brings a recording under a hold nor takes it out of one (holds.py).
        custody_event_append(action="recording.tagged", subject=rec, actor=by, details={"changes": diff})
        if "intervention" in diff:  # issue #21: the link the tag made follows the tag
            recording_intervention_retagged(recording=rec, old_reference=diff["intervention"][0], by=by, now=now)
    return rec


# --- Review, comments and bookmarks (issue #4) -------------------------------------------------

REVIEWERS = {"supervisor"}


def recording_review(*, recording: Recording, by: User, state: str, note: str = "",
                     now: dt.datetime | None = None) -> Recording:
    """A supervisor marks a recording reviewed or flagged (hierarchical control, CSI R241-12)."""
    if by.role not in REVIEWERS:
        raise PermissionError("only a supervisor reviews recordings")
    if state not in ReviewState.values:
        raise ValueError(f"state must be one of {', '.join(ReviewState.values)}")
    note = (note or "").strip()
    if state == ReviewState.FLAGGED and not note:
        raise ValueError("note: say why the recording is flagged")
    now = now or timezone.now()
    with transaction.atomic():
        rec = Recording.objects.select_for_update().get(pk=recording.pk)
        if rec.organisation_id != by.organisation_id:
            raise PermissionError("recording outside your perimeter")
        if state == ReviewState.REVIEWED:  # issue 20: consulted by the reviewer and tagged first
            review_check(recording=rec, by=by)
        old = rec.review_state
        rec.review_state, rec.review_note = state, note
        rec.reviewed_by, rec.reviewed_at = (None, None) if state == ReviewState.UNREVIEWED else (by, now)
        rec.save(update_fields=["review_state", "review_note", "reviewed_by", "reviewed_at"])
        custody_event_append(action="recording.reviewed", subject=rec, actor=by, now=now,
                             details={"from": old, "to": state, "note": note})
    return rec


def annotation_add(*, recording: Recording, by: User, at_seconds: float, text: str, kind: str = "comment",
                   now: dt.datetime | None = None):
    """A timecoded comment or bookmark; only someone who may see the recording reaches this."""
    text = (text or "").strip()
    if kind not in Annotation.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(Annotation.Kind.values)}")
    if not text:
        raise ValueError("text: write the comment")
    if len(text) > 2000:
        raise ValueError("text: 2000 characters at most")
    try:
        at_seconds = float(at_seconds)
    except (TypeError, ValueError):
        raise ValueError("at_seconds: a time in seconds from the start of the recording") from None
    if not (0 <= at_seconds <= max(recording.duration or 0, 0) + 1) or at_seconds != at_seconds:
        raise ValueError("at_seconds: outside the recording")
    if by.role == "admin" or by.organisation_id != recording.organisation_id:
        raise PermissionError("recording outside your perimeter")
    if recording.gone:
        raise ValueError("an erased recording cannot be annotated")
    now = now or timezone.now()
    with transaction.atomic():
        note = Annotation.objects.create(recording=recording, organisation_id=recording.organisation_id, author=by,
                                         kind=kind, at_seconds=round(at_seconds, 3), text=text, created_at=now)
        custody_event_append(action="recording.annotated", subject=recording, actor=by, now=now,
                             details={"annotation": note.pk, "kind": kind, "at_seconds": note.at_seconds})
    return note


# --- Review rules and batch actions of the supervisor's pages (issue 20) --------------------------

class ReviewRefused(ValueError):
    """A review refused for a reason the reviewer can fix (watch it, have it tagged)."""


def review_refusal(*, recording: Recording, by: User) -> str:
    """Why ``by`` may not mark ``recording`` reviewed, in French; empty when they may."""
    if not Consultation.objects.filter(recording_id=recording.pk, user_id=by.pk).exists():
        return (f"Enregistrement n° {recording.pk} : consultez la vidéo avant de la marquer revue "
                "(aucune consultation de votre part).")
    if Recording.objects.filter(pk=recording.pk).filter(to_complete_q()).exists():
        return (f"Enregistrement n° {recording.pk} : la qualification est incomplète (« À compléter ») ; "
                "elle doit être complétée avant la revue.")
    return ""


def review_check(*, recording: Recording, by: User) -> None:
    """Raise ReviewRefused when ``by`` may not mark ``recording`` reviewed (called by recording_review)."""
    reason = review_refusal(recording=recording, by=by)
    if reason:
        raise ReviewRefused(reason)


def recordings_review_batch(*, recordings, by: User, now: dt.datetime | None = None) -> tuple[list, list]:
    """Mark each recording reviewed, each in its own transaction with its own custody event.

    Returns (reviewed, refused) where refused is a list of (recording, French reason): one
    recording refused does not undo the others, and every refusal is said.
    """
    reviewed, refused = [], []
    for rec in recordings:
        try:
            reviewed.append(recording_review(recording=rec, by=by, state="reviewed", now=now))
        except ReviewRefused as exc:
            refused.append((rec, str(exc)))
    return reviewed, refused


def recordings_tag_batch(*, recordings, by: User, changes: dict, now: dt.datetime | None = None) -> tuple[list, list]:
    """Apply the same tags to several recordings, one transaction and one custody event each."""
    done, refused = [], []
    for rec in recordings:
        try:
            with transaction.atomic():
                done.append(recording_tag(recording=rec, by=by, changes=dict(changes), now=now))
        except ValueError as exc:
            refused.append((rec, str(exc)))
    return done, refused
