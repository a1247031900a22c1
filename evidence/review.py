"""Hierarchical review rules and batch actions of the supervisor's pages (issue 20).

CSI R241-12: the head of service controls the use of the cameras. A recording is marked "revu"
only by someone who has consulted it (the consultation is itself logged, CSI R241-14) and only
once it is tagged: a review of a recording nobody watched, or whose trigger reason and
information of the people filmed are still missing (CSI L241-2), would certify nothing.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction

from accounts.models import User

from .models import Consultation, Recording


class ReviewRefused(ValueError):
    """A review refused for a reason the reviewer can fix (watch it, have it tagged)."""


def review_refusal(*, recording: Recording, by: User) -> str:
    """Why ``by`` may not mark ``recording`` reviewed, in French; empty when they may."""
    from .selectors import to_complete_q

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
    from .services import recording_review

    reviewed, refused = [], []
    for rec in recordings:
        try:
            reviewed.append(recording_review(recording=rec, by=by, state="reviewed", now=now))
        except ReviewRefused as exc:
            refused.append((rec, str(exc)))
    return reviewed, refused


def recordings_tag_batch(*, recordings, by: User, changes: dict, now: dt.datetime | None = None) -> tuple[list, list]:
    """Apply the same tags to several recordings, one transaction and one custody event each."""
    from .services import recording_tag

    done, refused = [], []
    for rec in recordings:
        try:
            with transaction.atomic():
                done.append(recording_tag(recording=rec, by=by, changes=dict(changes), now=now))
        except ValueError as exc:
            refused.append((rec, str(exc)))
    return done, refused
