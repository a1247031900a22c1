"""Reads on cameras, docks and offloads, scoped to the requesting user's organisation."""
from django.db.models import QuerySet

from accounts.models import User

from .models import OffloadSession


def offload_sessions_visible_to(*, user: User) -> QuerySet[OffloadSession]:
    """Offload sessions of the user's organisation (metadata only: no media)."""
    if not user.is_authenticated or user.organisation_id is None:
        return OffloadSession.objects.none()
    return OffloadSession.objects.filter(organisation_id=user.organisation_id).select_related("camera", "dock", "slot")
