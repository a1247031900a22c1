from django.db import transaction
from rest_framework.authtoken.models import Token

from audit.services import custody_event_append
from .models import Jurisdiction, Organisation, Role, User


def organisation_create(*, slug: str, name: str, retention: str = "P1M", jurisdiction: str = "",
                        basis: str = "", by: User | None = None) -> Organisation:
    """Create a police service. Under French law (the default) its period is one month (CSI R241-13);
    another period means another legal framework, recorded as such with its basis."""
    from evidence.retention.policy import FRENCH_BASIS, retention_policy_check

    jurisdiction = jurisdiction or (Jurisdiction.FRANCE if retention == "P1M" else Jurisdiction.CUSTOM)
    retention_policy_check(jurisdiction=jurisdiction, retention=retention)  # ValueError / RetentionRefused
    if jurisdiction == Jurisdiction.FRANCE:
        basis = basis or FRENCH_BASIS
    else:
        basis = basis or f"durée déclarée à la création de l'organisation ({retention})"
    with transaction.atomic():
        org = Organisation.objects.create(slug=slug, name=name, retention=retention, jurisdiction=jurisdiction,
                                          retention_basis=basis)
        custody_event_append(action="organisation.created", subject=org, organisation=org, actor=by,
                             actor_label="" if by else "system:cli",
                             details={"name": name, "retention": retention, "jurisdiction": jurisdiction,
                                      "basis": basis})
    return org


def user_create(*, username: str, organisation: Organisation, role: str, matricule: str = "",
                password: str | None = None, first_name: str = "", last_name: str = "",
                by: User | None = None) -> tuple[User, str]:
    """Create a user with a role and return it with its API token.

    CSI R241-12: every authorisation (who granted which role, when) is itself logged.
    """
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(Role.values)}")
    with transaction.atomic():
        user = User(username=username, organisation=organisation, role=role, matricule=matricule,
                    first_name=first_name, last_name=last_name)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        token = Token.objects.create(user=user)
        custody_event_append(action="role.granted", subject=user, organisation=organisation, actor=by,
                             actor_label="" if by else "system:cli",
                             details={"username": username, "role": role, "matricule": matricule})
    return user, token.key


def access_failure_record(*, username: str, ip_address: str = "", reason: str = "login failed") -> None:
    """A failed access attempt goes to the custody log (CSI R241-14, issue 3: failed attempts)."""
    from django.db import transaction as tx

    user = User.objects.filter(username=username).select_related("organisation").first() if username else None
    with tx.atomic():
        custody_event_append(
            action="access.login_failed", subject_type="accounts.user", subject_id=str(user.pk) if user else "",
            organisation=user.organisation if user else None, actor_label=f"anonymous@{ip_address or '?'}",
            details={"username": username[:150], "ip_address": ip_address, "reason": reason},
        )


ADMINISTRATORS = {Role.ADMIN}


def _check_admin(by: User, user: User) -> None:
    if by.role not in ADMINISTRATORS or by.organisation_id != user.organisation_id:
        raise PermissionError("only the technical administrator of this organisation manages its users")


def user_role_change(*, user: User, role: str, by: User) -> User:
    """Change a user's role. CSI R241-12: who granted which role, and when, is itself logged."""
    _check_admin(by, user)
    if role not in Role.values:
        raise ValueError(f"role: one of {', '.join(Role.values)}")
    if user.pk == by.pk:
        raise ValueError("role: an administrator does not change their own role")
    with transaction.atomic():
        old = user.role
        if old == role:
            return user
        user.role = role
        user.save(update_fields=["role"])
        custody_event_append(action="role.changed", subject=user, organisation=user.organisation, actor=by,
                             details={"username": user.username, "from": old, "to": role})
        # A new role may need the second factor, or give wider access: sessions start again.
        _end_sessions(user)
    return user


def user_deactivate(*, user: User, by: User, motif: str = "") -> User:
    """Withdraw every access (the account and its history remain: the register names it)."""
    _check_admin(by, user)
    if user.pk == by.pk:
        raise ValueError("an administrator does not deactivate their own account")
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        from rest_framework.authtoken.models import Token

        Token.objects.filter(user=user).delete()
        custody_event_append(action="role.revoked", subject=user, organisation=user.organisation, actor=by,
                             motif=motif, details={"username": user.username, "role": user.role})
        _end_sessions(user)
    return user


def _end_sessions(user: User) -> None:
    from django.contrib.sessions.models import Session

    for session in Session.objects.all().iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()
