"""Reads of requisitions, scoped to the requesting user (STYLE.md)."""
from __future__ import annotations

import hashlib

from django.db.models import QuerySet

from accounts.models import Role, User

from .models import Requisition

# Who issues requisitions and follows them: the service's supervisors and legal staff.
REQUISITION_ROLES = (Role.SUPERVISOR, Role.LEGAL)


def requisitions_visible_to(*, user: User) -> QuerySet[Requisition]:
    """The requisitions of the user's organisation, for supervisors and legal staff; none otherwise
    (another commune's requisition answers 404, never its metadata)."""
    qs = Requisition.objects.select_related("organisation")
    if (not user.is_authenticated or not user.is_active or user.organisation_id is None
            or user.role not in REQUISITION_ROLES):
        return qs.none()
    return qs.filter(organisation_id=user.organisation_id)


def requisition_for_token(*, token: str) -> Requisition | None:
    """The requisition whose upload link carries ``token`` (only its SHA-256 is stored)."""
    if not token or len(token) > 100:
        return None
    digest = hashlib.sha256(token.encode()).hexdigest()
    return Requisition.objects.select_related("organisation", "camera").filter(token_sha256=digest).first()
