"""Reads on evidence, always scoped to the requesting user (CSI R241-12, ARCHITECTURE.md §1)."""
from django.db.models import QuerySet

from accounts.models import Role, User

from .models import Recording

# Roles that see every recording of their organisation.
ORGANISATION_WIDE = {Role.SUPERVISOR, Role.LEGAL, Role.DPO, Role.MAYOR}


def recordings_visible_to(*, user: User) -> QuerySet[Recording]:
    """The one place that decides which recordings a user may see; nothing else filters.

    The wearer sees only their own recordings; supervisors, legal staff, DPO and mayor see their
    organisation's; the technical administrator never sees evidence.
    """
    qs = Recording.objects.select_related("camera", "wearer").exclude(status=Recording.Status.DUPLICATE)
    if not user.is_authenticated or not user.is_active or user.organisation_id is None:
        return qs.none()
    qs = qs.filter(organisation_id=user.organisation_id)
    if user.role in ORGANISATION_WIDE:
        return qs
    if user.role == Role.OFFICER:
        return qs.filter(wearer=user)
    return qs.none()


def holds_for_recording(*, recording: Recording):
    """Holds covering a recording: on itself or on its intervention (active first)."""
    from django.db.models import Q

    from .models import Hold

    q = Q(recording=recording)
    if recording.intervention:
        q |= Q(organisation_id=recording.organisation_id, intervention=recording.intervention)
    return Hold.objects.filter(q).select_related("placed_by", "released_by").order_by("released_at", "-placed_at")


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
            .exclude(status__in=[Recording.Status.ERASED, Recording.Status.RECEIVING])
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
            .exclude(status__in=[Recording.Status.ERASED, Recording.Status.FAILED, Recording.Status.RECEIVING])
            .order_by("retain_until", "started_at"))
