"""Reads on accounts, scoped to the requesting user."""
from django.conf import settings
from django.db.models import QuerySet

from .models import Role, User


def users_managed_by(*, user: User) -> QuerySet[User]:
    """The accounts of the administrator's own organisation; nobody else manages accounts."""
    if not user.is_authenticated or user.role != Role.ADMIN or user.organisation_id is None:
        return User.objects.none()
    return User.objects.filter(organisation_id=user.organisation_id)


def grantees_for(*, user: User) -> QuerySet[User]:
    """Agents of the head of service's organisation who may be individually authorised (CSI R241-12)."""
    if not user.is_authenticated or user.role != Role.SUPERVISOR or user.organisation_id is None:
        return User.objects.none()
    return User.objects.filter(organisation_id=user.organisation_id, is_active=True, role=Role.OFFICER)


def role_requests_for(*, user: User) -> QuerySet[User]:
    """Privileged roles awaiting the mayor's approval in the mayor's own organisation (issue 15)."""
    if not user.is_authenticated or user.role != Role.MAYOR or user.organisation_id is None:
        return User.objects.none()
    return (User.objects.filter(organisation_id=user.organisation_id).exclude(pending_role="")
            .select_related("pending_role_by").order_by("pending_role_at", "pk"))


def user_language(user: User) -> str:
    """The language of what is e-mailed to ``user``: the one they last chose for the pages
    (``User.language``, kept by the language switcher), French by default."""
    return user.language if user.language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
