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
