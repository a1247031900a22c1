from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
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


def user_create_by_administrator(*, username: str, password: str, organisation: Organisation, role: str,
                                 matricule: str = "", first_name: str = "", last_name: str = "",
                                 email: str = "", by: User) -> tuple[User, str]:
    """An account created from the administrator's page: the identifier is required and free, and
    the password passes Django's validators (length, common, similarity to the names) before
    ``user_create``. CNIL's 2021 formal notice named weak passwords (LEGAL.md).

    Raises ValueError (identifier) or django.core.exceptions.ValidationError (password).
    """
    from django.contrib.auth.password_validation import validate_password

    username = (username or "").strip()
    if not username:
        raise ValueError("indiquez l'identifiant.")
    if User.objects.filter(username=username).exists():
        raise ValueError(f"l'identifiant {username} existe déjà.")
    email = _email_checked(email)
    candidate = User(username=username, first_name=first_name, last_name=last_name, email=email)
    validate_password(password, candidate)
    # The administrator chose this password: it is temporary, replaced at the first sign-in.
    return user_create(username=username, organisation=organisation, role=role, matricule=matricule,
                       password=password, first_name=first_name, last_name=last_name, email=email,
                       must_change_password=True, by=by)


def _email_checked(email: str) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValueError(f"adresse électronique invalide : {email}") from None
    return email


def user_create(*, username: str, organisation: Organisation, role: str, matricule: str = "",
                password: str | None = None, first_name: str = "", last_name: str = "",
                email: str = "", must_change_password: bool = False,
                by: User | None = None) -> tuple[User, str]:
    """Create a user with a role and return it with its API token.

    CSI R241-12: every authorisation (who granted which role, when) is itself logged.
    """
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(Role.values)}")
    # Four eyes (issue 15): a privileged account the administrator creates stays closed (it cannot
    # sign in, its token is refused) until the mayor approves its role. The deployment's operator
    # at the console (``by`` None: adduser, demo) creates the first accounts directly.
    pending = by is not None and role in PRIVILEGED_ROLES
    with transaction.atomic():
        user = User(username=username, organisation=organisation, role=role, matricule=matricule,
                    first_name=first_name, last_name=last_name, email=email, is_active=not pending,
                    must_change_password=must_change_password and bool(password))
        if pending:
            user.pending_role, user.pending_role_by, user.pending_role_at = role, by, timezone.now()
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        token = Token.objects.create(user=user)
        custody_event_append(action="role.requested" if pending else "role.granted", subject=user,
                             organisation=organisation, actor=by, actor_label="" if by else "system:cli",
                             details={"username": username, "role": role, "matricule": matricule,
                                      "email": email or None, "pending_approval": pending or None})
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
# Roles that see evidence beyond one's own recordings, or the register (ARCHITECTURE.md §1): granted
# by the administrator only with the approval of the mayor (CSI R241-12: the administrator never
# decides who sees evidence).
PRIVILEGED_ROLES = {Role.SUPERVISOR, Role.LEGAL, Role.DPO, Role.MAYOR}
APPROVERS = {Role.MAYOR}


class RoleApprovalRefused(PermissionError):
    pass


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
    if role in PRIVILEGED_ROLES and role != user.role:
        # Four eyes (issue 15): the role waits for the mayor; the account keeps its former one.
        with transaction.atomic():
            user.pending_role, user.pending_role_by, user.pending_role_at = role, by, timezone.now()
            user.save(update_fields=["pending_role", "pending_role_by", "pending_role_at"])
            custody_event_append(action="role.requested", subject=user, organisation=user.organisation, actor=by,
                                 details={"username": user.username, "from": user.role, "to": role,
                                          "pending_approval": True})
        return user
    with transaction.atomic():
        old = user.role
        if old == role:
            return user
        user.role = role
        user.pending_role, user.pending_role_by, user.pending_role_at = "", None, None
        user.save(update_fields=["role", "pending_role", "pending_role_by", "pending_role_at"])
        custody_event_append(action="role.changed", subject=user, organisation=user.organisation, actor=by,
                             details={"username": user.username, "from": old, "to": role})
        # A new role may need the second factor, or give wider access: sessions start again.
        _end_sessions(user)
    return user


def _refuse(user: User, by: User, message: str) -> None:
    """A refused approval is a clear message and a custody entry (issue 15)."""
    with transaction.atomic():
        custody_event_append(action="role.approval_refused", subject=user, organisation=user.organisation, actor=by,
                             details={"username": user.username, "role": user.pending_role or None,
                                      "reason": message})
    raise RoleApprovalRefused(message)


def user_role_decide(*, user: User, by: User, approve: bool, motif: str = "") -> User:
    """The mayor approves (or refuses) a privileged role the administrator asked for (CSI R241-12)."""
    if by.organisation_id != user.organisation_id:
        raise PermissionError("compte d'une autre organisation")
    if by.role not in APPROVERS or not by.is_active:
        _refuse(user, by, "seul le maire (ou l'autorité désignée par l'organisation) approuve un rôle habilité.")
    if user.pk == by.pk or user.pending_role_by_id == by.pk:
        _refuse(user, by, "on n'approuve pas un rôle qu'on a soi-même demandé ou qui est le sien.")
    if not user.pending_role:
        _refuse(user, by, "aucun rôle n'attend d'approbation pour ce compte.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        role, requested_by = user.pending_role, user.pending_role_by
        old = user.role
        if approve:
            user.role = role
            user.is_active = True
        user.pending_role, user.pending_role_by, user.pending_role_at = "", None, None
        user.save(update_fields=["role", "is_active", "pending_role", "pending_role_by", "pending_role_at"])
        custody_event_append(action="role.approved" if approve else "role.refused", subject=user,
                             organisation=user.organisation, actor=by, motif=motif,
                             details={"username": user.username, "from": old, "to": role,
                                      "requested_by": requested_by.username if requested_by else None})
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


def user_reactivate(*, user: User, by: User, motif: str = "") -> User:
    """Undo a deactivation: the account signs in again, with a new API token (the old one is gone).

    CSI R241-12: giving access back is an authorisation like any other, logged with who and why.
    An account closed while a privileged role awaits the mayor is not reopened here (four eyes).
    """
    _check_admin(by, user)
    if user.is_active:
        raise ValueError(f"le compte {user.username} est déjà actif.")
    if user.pending_role:
        raise ValueError(f"le compte {user.username} attend l'approbation de son rôle par le maire.")
    with transaction.atomic():
        user.is_active = True
        user.save(update_fields=["is_active"])
        Token.objects.get_or_create(user=user)
        custody_event_append(action="role.reinstated", subject=user, organisation=user.organisation, actor=by,
                             motif=motif, details={"username": user.username, "role": user.role})
    return user


def user_email_set(*, user: User, email: str, by: User) -> User:
    """The administrator records the account's e-mail address (notices, reminders)."""
    _check_admin(by, user)
    email = _email_checked(email)
    if email == user.email:
        return user
    with transaction.atomic():
        old = user.email
        user.email = email
        user.save(update_fields=["email"])
        custody_event_append(action="account.email_changed", subject=user, organisation=user.organisation,
                             actor=by, details={"username": user.username, "from": old or None, "to": email or None})
    return user


def user_language_set(*, user: User, language: str) -> User:
    """Remember the interface language the user chose (the switcher), for what is e-mailed to them.
    A display preference: no custody event (it touches no recording, access or role)."""
    if language not in dict(settings.LANGUAGES):
        raise ValueError(f"language: one of {', '.join(dict(settings.LANGUAGES))}")
    if user.language != language:
        User.objects.filter(pk=user.pk).update(language=language)
        user.language = language
    return user


def user_password_reset(*, user: User, password: str, by: User) -> User:
    """The administrator sets a temporary password (forgotten one): the user must replace it at the
    next sign-in, and every open session ends (CSI R241-14: changes to authentication are logged)."""
    from django.contrib.auth.password_validation import validate_password

    _check_admin(by, user)
    if user.pk == by.pk:
        raise ValueError(_("un administrateur change son propre mot de passe depuis « Mon mot de passe »."))
    validate_password(password, user)  # django.core.exceptions.ValidationError
    with transaction.atomic():
        user.set_password(password)
        user.must_change_password = True
        user.save(update_fields=["password", "must_change_password"])
        custody_event_append(action="access.password_reset", subject=user, organisation=user.organisation,
                             actor=by, details={"username": user.username})
        _end_sessions(user)
    return user


def password_change(*, user: User, current: str, new: str, confirm: str) -> User:
    """Every user changes their own password; it ends the temporary state (issue 20).

    Raises ValueError (current password wrong, confirmation different, unchanged) or
    django.core.exceptions.ValidationError (Django's validators: length, common, similarity).
    """
    from django.contrib.auth.password_validation import validate_password

    if not user.check_password(current or ""):
        raise ValueError(_("le mot de passe actuel est incorrect."))
    if new != confirm:
        raise ValueError(_("les deux saisies du nouveau mot de passe diffèrent."))
    if new == current:
        raise ValueError(_("le nouveau mot de passe doit être différent de l'actuel."))
    validate_password(new, user)
    with transaction.atomic():
        was_temporary = user.must_change_password
        user.set_password(new)
        user.must_change_password = False
        user.save(update_fields=["password", "must_change_password"])
        custody_event_append(action="access.password_changed", subject=user, organisation=user.organisation,
                             actor=user, details={"username": user.username,
                                                  "temporary_replaced": was_temporary or None})
    return user


def _end_sessions(user: User) -> None:
    from django.contrib.sessions.models import Session

    for session in Session.objects.all().iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()
