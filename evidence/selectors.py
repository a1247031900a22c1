"""Reads on evidence, always scoped to the requesting user (CSI R241-12, ARCHITECTURE.md §1)."""
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Role, User

from .models import Recording, RecordingUserObjectPermission

# Roles whose perimeter is their organisation (dashboards, holds). Among them the DPO sees, of the
# recordings themselves, those selected for an open access request (ARCHITECTURE.md §1: access
# requests and the register), unless the organisation records that its DPO sees all of them
# (Organisation.dpo_sees_recordings, issue 15): see recordings_visible_to.
ORGANISATION_WIDE = {Role.SUPERVISOR, Role.LEGAL, Role.DPO, Role.MAYOR}


def _dpo_selected(user: User):
    from evidence.disclosure.models import AccessRequest

    return (AccessRequest.objects.filter(organisation_id=user.organisation_id, closed_at__isnull=True)
            .exclude(recordings=None).values_list("recordings", flat=True))


def access_request_search_base(*, user: User) -> QuerySet[Recording]:
    """The recordings a DPO searches to answer an access request (times, places, officers, to
    select the ones that show the requester): the organisation's. Pages and media stay behind
    ``recordings_visible_to``."""
    if not user.is_authenticated or not user.is_active or user.organisation_id is None or user.role != Role.DPO:
        return Recording.objects.none()
    return (Recording.objects.select_related("camera", "wearer").exclude(status=Recording.Status.DUPLICATE)
            .filter(organisation_id=user.organisation_id))


def sees_whole_organisation(user: User) -> bool:
    """Whether ``user`` sees every recording of their organisation (the DPO only when it records so)."""
    if user.role == Role.DPO:
        return bool(user.organisation_id) and user.organisation.dpo_sees_recordings
    return user.role in ORGANISATION_WIDE


def recordings_visible_to(*, user: User) -> QuerySet[Recording]:
    """The one place that decides which recordings a user may see; nothing else filters.

    The wearer sees only their own recordings; supervisors, legal staff and mayor see their
    organisation's; the DPO those selected for an open access request (all of them when the
    organisation records so); the technical administrator never sees evidence; a pending account
    (issue 15: inactive until the mayor approves its role) sees nothing.
    """
    qs = Recording.objects.select_related("camera", "wearer").exclude(status=Recording.Status.DUPLICATE)
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return qs.none()
    qs = qs.filter(organisation_id=user.organisation_id)
    if user.role == Role.DPO and not user.organisation.dpo_sees_recordings:
        return qs.filter(pk__in=_dpo_selected(user))
    if user.role in ORGANISATION_WIDE:
        return qs
    if user.role == Role.OFFICER:
        # CSI R241-12: own recordings, plus those one was individually authorised for, until the date
        # the grant ends (django-guardian direct foreign-key table, see RecordingUserObjectPermission).
        granted = RecordingUserObjectPermission.objects.filter(
            user=user, expires_at__gt=timezone.now(), permission__codename="view_recording_granted",
        ).values("content_object_id")
        return qs.filter(Q(wearer=user) | Q(pk__in=granted))
    return qs.none()


def grants_visible_to(*, user: User):
    """Individual grants of the user's service, for the head of service who gives them."""
    if not user.is_authenticated or user.role != Role.SUPERVISOR or user.organisation_id is None:
        return RecordingUserObjectPermission.objects.none()
    return (RecordingUserObjectPermission.objects.filter(content_object__organisation_id=user.organisation_id)
            .select_related("user", "granted_by", "content_object"))


def annotations_for(*, recording: Recording):
    """Comments and bookmarks of a recording the caller already obtained through recordings_visible_to."""
    return recording.annotations.select_related("author").order_by("at_seconds", "id")


def recordings_review_queue_for(*, user: User, queue: str, now=None, sample_size: int = 10):
    """The supervisor's review queue: unreviewed, flagged, or a random sample for quality control.

    The sample is drawn among the last 30 days' ready recordings, seeded by the ISO week so that
    every supervisor of the service sees the same sample during a week.
    """
    import datetime as dt
    import random

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


def holds_for_recording(*, recording: Recording):
    """Holds covering a recording (active first), or placed on it."""
    from .models import Hold
    from .retention.holds import holds_for_recording_q

    return (Hold.objects.filter(holds_for_recording_q(recording)).distinct()
            .select_related("placed_by", "released_by").order_by("released_at", "-placed_at"))


def holds_visible_to(*, user: User):
    from .models import Hold

    if not user.is_authenticated or user.organisation_id is None or user.role not in ORGANISATION_WIDE:
        return Hold.objects.none()
    return Hold.objects.filter(organisation_id=user.organisation_id)


def erasures_upcoming_for(*, user: User, now, hours: int):
    """Recordings the user may see that will be erased within ``hours`` (holds excluded)."""
    import datetime as dt

    from .services import active_holds_q

    return (recordings_visible_to(user=user)
            .filter(retain_until__lte=now + dt.timedelta(hours=hours))
            .exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.RECEIVING])
            .exclude(active_holds_q())
            .order_by("retain_until"))


def to_complete_q():
    """Q over Recording: missing tags put it in the wearer's "to complete" queue (CSI L241-2)."""
    from django.db.models import Q

    return (Q(trigger_reason="") | Q(subject_notified__isnull=True) | Q(wearer__isnull=True)
            | Q(subject_notified=False, notice_omitted_reason=""))


def recordings_to_complete_for(*, user: User):
    """The wearer's own queue; a supervisor sees the whole service's."""
    return (recordings_visible_to(user=user).filter(to_complete_q())
            .exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.FAILED, Recording.Status.RECEIVING])
            .order_by("retain_until", "started_at"))
