"""Reads of the retention stage: holds (LEGAL.md rule 4, CSI R241-13: the only exception to
erasure) and the erasures coming up (deletions visible in advance). Scoped to the requesting user.
"""
import datetime as dt

from accounts.models import User

from ..access.selectors import ORGANISATION_WIDE, recordings_visible_to
from ..models import Hold, Recording
from .holds import active_holds_q, holds_for_recording_q


def holds_for_recording(*, recording: Recording):
    """Holds covering a recording (active first), or placed on it."""
    return (Hold.objects.filter(holds_for_recording_q(recording)).distinct()
            .select_related("placed_by", "released_by").order_by("released_at", "-placed_at"))


def holds_visible_to(*, user: User):
    if not user.is_authenticated or user.organisation_id is None or user.role not in ORGANISATION_WIDE:
        return Hold.objects.none()
    return Hold.objects.filter(organisation_id=user.organisation_id)


def erasures_upcoming_for(*, user: User, now, hours: int):
    """Recordings the user may see that will be erased within ``hours`` (holds excluded)."""
    return (recordings_visible_to(user=user)
            .filter(retain_until__lte=now + dt.timedelta(hours=hours))
            .exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.RECEIVING])
            .exclude(active_holds_q())
            .order_by("retain_until"))
