"""Who sees which recording: the one place that decides it (LEGAL.md rule 5).

CSI R241-11 II and R241-12, ARCHITECTURE.md §1: the wearer sees only their own recordings (plus
individual grants until their end); the head of service, legal staff and the maire their
organisation's; the DPO those of an open access request (LEGAL.md rule 8, LIL 105); the technical
administrator never sees evidence. Every other read of recordings starts from
``recordings_visible_to``.
"""
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Role, User

from ..models import Recording, RecordingGrant

# Roles whose perimeter is their organisation (dashboards, holds). Among them the DPO sees, of the
# recordings themselves, those selected for an open access request (ARCHITECTURE.md §1: access
# requests and the register), unless the organisation records that its DPO sees all of them
# (Organisation.dpo_sees_recordings, issue 15): see recordings_visible_to.
ORGANISATION_WIDE = {Role.SUPERVISOR, Role.LEGAL, Role.DPO, Role.MAYOR}


def _dpo_selected(user: User):
    from ..disclosure.models import AccessRequest

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
        # the grant ends (evidence.models.RecordingGrant).
        granted = RecordingGrant.objects.filter(
            user=user, expires_at__gt=timezone.now(),
        ).values("recording_id")
        return qs.filter(Q(wearer=user) | Q(pk__in=granted))
    return qs.none()


def grants_visible_to(*, user: User):
    """Individual grants of the user's service, for the head of service who gives them."""
    if not user.is_authenticated or user.role != Role.SUPERVISOR or user.organisation_id is None:
        return RecordingGrant.objects.none()
    return (RecordingGrant.objects.filter(recording__organisation_id=user.organisation_id)
            .select_related("user", "granted_by", "recording"))
