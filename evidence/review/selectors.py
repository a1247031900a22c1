"""Reads of the review stage: the "to complete" queue (LEGAL.md rule 3, CSI L241-2), the
supervisor's review queue (CSI R241-12), comments and bookmarks. Always within
``recordings_visible_to`` (evidence.access.selectors).
"""
import datetime as dt
import random

from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User

from ..access.selectors import recordings_visible_to
from ..models import Recording
from ..sources import Regime


def annotations_for(*, recording: Recording):
    """Comments and bookmarks of a recording the caller already obtained through recordings_visible_to."""
    return recording.annotations.select_related("author").order_by("at_seconds", "id")


def recordings_review_queue_for(*, user: User, queue: str, now=None, sample_size: int = 10):
    """The supervisor's review queue: unreviewed, flagged, or a random sample for quality control.

    The sample is drawn among the last 30 days' ready recordings, seeded by the ISO week so that
    every supervisor of the service sees the same sample during a week.
    """
    if user.role != Role.SUPERVISOR:
        return Recording.objects.none()
    now = now or timezone.now()
    base = recordings_visible_to(user=user).exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.RECEIVING,
                                                                Recording.Status.FAILED])
    if queue == "flagged":
        return base.filter(review_state="flagged").order_by("-reviewed_at")
    if queue == "sample":
        year, week, _ = now.isocalendar()
        ids = list(base.filter(started_at__gte=now - dt.timedelta(days=30)).order_by("pk").values_list("pk", flat=True))
        chosen = random.Random(f"{user.organisation_id}:{year}-W{week}").sample(ids, min(sample_size, len(ids)))
        return base.filter(pk__in=chosen).order_by("-started_at")
    return base.filter(review_state="unreviewed").order_by("started_at", "pk")


def to_complete_q():
    """Q over Recording: missing tags put it in the wearer's "to complete" queue (CSI L241-2).

    Only body-worn recordings are tagged: videoprotection images (a partner's fixed cameras, CSI
    L251-1 ff.) have no wearer, trigger reason or notice by nature (issue 22).
    """
    return Q(regime=Regime.BODY_WORN) & (
        Q(trigger_reason="") | Q(subject_notified__isnull=True) | Q(wearer__isnull=True)
        | Q(subject_notified=False, notice_omitted_reason=""))


def recordings_to_complete_for(*, user: User):
    """The wearer's own queue; a supervisor sees the whole service's."""
    return (recordings_visible_to(user=user).filter(to_complete_q())
            .exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.FAILED, Recording.Status.RECEIVING])
            .order_by("retain_until", "started_at"))
