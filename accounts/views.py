"""Second-factor pages: enrolment (QR code) and code entry after the password."""
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from . import second_factor as sf


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


@login_required
def otp_verify(request):
    if not sf.second_factor_required(request.user) or request.user.is_verified():
        return redirect(_next(request))
    if sf.totp_device_for(user=request.user) is None:
        return redirect("otp-setup")
    error = ""
    if request.method == "POST":
        if sf.totp_verify(request=request, token=request.POST.get("token", "")):
            return redirect(_next(request))
        error = _("Code incorrect ou expiré. Attendez le code suivant et réessayez.")
    return render(request, "accounts/otp_verify.html", {"error": error, "next": _next(request)}, status=400 if error else 200)


@login_required
def otp_setup(request):
    if not sf.second_factor_required(request.user) or sf.totp_device_for(user=request.user) is not None:
        return redirect("otp-verify")
    device = sf.totp_enrolment_start(user=request.user)
    error = ""
    if request.method == "POST":
        if sf.totp_enrolment_confirm(request=request, device=device, token=request.POST.get("token", "")):
            return redirect(_next(request))
        error = _("Code incorrect. Vérifiez l'heure de votre téléphone et saisissez le code affiché.")
    return render(request, "accounts/otp_setup.html", {
        "error": error, "next": _next(request), "qr_svg": sf.provisioning_qr_svg(device),
        "secret": sf.base32_secret(device),
    }, status=400 if error else 200)


@login_required
def users(request):
    """The technical administrator manages the accounts of their organisation (ARCHITECTURE.md §1)."""
    from django.contrib import messages
    from django.core.exceptions import PermissionDenied, ValidationError
    from django.shortcuts import get_object_or_404

    from . import services
    from .models import Role
    from .selectors import users_managed_by

    if request.user.role not in services.ADMINISTRATORS or request.user.organisation_id is None:
        raise PermissionDenied("user management is the technical administrator's task")
    org_users = users_managed_by(user=request.user)
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "create":
                username = request.POST.get("username", "").strip()
                created, _token = services.user_create_by_administrator(
                    username=username, password=request.POST.get("password", ""),
                    organisation=request.user.organisation, role=request.POST.get("role", ""),
                    matricule=request.POST.get("matricule", ""), first_name=request.POST.get("first_name", ""),
                    last_name=request.POST.get("last_name", ""), email=request.POST.get("email", ""),
                    by=request.user)
                messages.success(request, _("Compte %(name)s créé.") % {"name": username} + (
                    _(" Le rôle « %(role)s » attend l'approbation du maire : le compte ne peut pas se connecter "
                      "d'ici là (CSI R241-12).") % {"role": created.get_pending_role_display()}
                    if created.pending_role else ""))
            else:
                target = get_object_or_404(org_users, pk=request.POST.get("user") or 0)
                if action == "role":
                    services.user_role_change(user=target, role=request.POST.get("role", ""), by=request.user)
                    if target.pending_role:
                        messages.success(request, _(
                            "Rôle « %(role)s » demandé pour %(name)s : il attend l'approbation du maire, le compte "
                            "garde d'ici là le rôle « %(current)s ».") % {
                            "role": target.get_pending_role_display(), "name": target.username,
                            "current": target.get_role_display()})
                    else:
                        messages.success(request, _("Rôle de %(name)s : %(role)s.") % {
                            "name": target.username, "role": target.get_role_display()})
                elif action == "deactivate":
                    # Withdrawing every access asks first: the button leads to a confirmation page.
                    if request.POST.get("confirm") != "1":
                        return render(request, "accounts/user_deactivate_confirm.html", {"target": target})
                    services.user_deactivate(user=target, by=request.user, motif=request.POST.get("motif", "")[:2000])
                    messages.success(request, _("Compte %(name)s désactivé. Il peut être réactivé depuis cette "
                                                "page.") % {"name": target.username})
                elif action == "reactivate":
                    services.user_reactivate(user=target, by=request.user, motif=request.POST.get("motif", "")[:2000])
                    messages.success(request, _("Compte %(name)s réactivé.") % {"name": target.username})
                elif action == "email":
                    services.user_email_set(user=target, email=request.POST.get("email", ""), by=request.user)
                    messages.success(request, _("Adresse électronique de %(name)s enregistrée.") % {"name": target.username})
                elif action == "reset_password":
                    services.user_password_reset(user=target, password=request.POST.get("password", ""),
                                                 by=request.user)
                    messages.success(request, _("Mot de passe provisoire fixé pour %(name)s : à changer à sa "
                                                "prochaine connexion.") % {"name": target.username})
                elif action == "reset_totp":
                    sf.totp_reset(user=target, by=request.user)
                    messages.success(request, _("Second facteur de %(name)s réinitialisé : nouvelle activation à "
                                                "la prochaine connexion.") % {"name": target.username})
        except ValidationError as exc:
            messages.error(request, _("Mot de passe refusé : %(why)s") % {"why": " ".join(exc.messages)})
        except (ValueError, PermissionError) as exc:
            messages.error(request, _("Refusé : %(why)s") % {"why": exc})
        return redirect("users")
    from django_otp.plugins.otp_totp.models import TOTPDevice

    enrolled = set(TOTPDevice.objects.filter(user__in=org_users, confirmed=True).values_list("user_id", flat=True))
    rows = [(u, u.pk in enrolled) for u in org_users.order_by("-is_active", "role", "last_name", "username")]
    return render(request, "accounts/users.html", {"rows": rows, "roles": Role.choices,
                                                   "second_factor_roles": sf.SECOND_FACTOR_ROLES})


@login_required
def role_approvals(request):
    """The mayor approves or refuses the privileged roles the administrator asked for (issue 15,
    CSI R241-12: four eyes on who sees evidence)."""
    from django.contrib import messages
    from django.core.exceptions import PermissionDenied
    from django.shortcuts import get_object_or_404

    from . import services
    from .selectors import role_requests_for

    if request.user.role not in services.APPROVERS or request.user.organisation_id is None:
        raise PermissionDenied("l'approbation des rôles revient au maire")
    pending = role_requests_for(user=request.user)
    if request.method == "POST":
        target = get_object_or_404(pending, pk=request.POST.get("user") or 0)
        approve = request.POST.get("decision") == "approve"
        try:
            services.user_role_decide(user=target, by=request.user, approve=approve,
                                      motif=request.POST.get("motif", "")[:2000])
            messages.success(request, (_("Rôle de %(name)s approuvé.") if approve else _("Rôle de %(name)s refusé."))
                             % {"name": target.username})
        except PermissionError as exc:
            messages.error(request, _("Refusé : %(why)s") % {"why": exc})
        return redirect("role-approvals")
    return render(request, "accounts/role_approvals.html", {"pending": pending})


@login_required
def password_change(request):
    """Every user changes their own password; a temporary one leads here until it is replaced."""
    from django.contrib import messages
    from django.contrib.auth import update_session_auth_hash
    from django.core.exceptions import ValidationError

    from . import services

    error = ""
    if request.method == "POST":
        try:
            services.password_change(user=request.user, current=request.POST.get("current", ""),
                                     new=request.POST.get("new", ""), confirm=request.POST.get("confirm", ""))
        except ValidationError as exc:
            error = _("Mot de passe refusé : %(why)s") % {"why": " ".join(exc.messages)}
        except ValueError as exc:
            error = _("Refusé : %(why)s") % {"why": exc}
        else:
            update_session_auth_hash(request, request.user)  # this session stays signed in
            messages.success(request, _("Mot de passe changé."))
            return redirect(_next(request))
    return render(request, "accounts/password_change.html", {
        "error": error, "next": _next(request), "forced": request.user.must_change_password,
    }, status=400 if error else 200)


class LoginView(auth_views.LoginView):
    """Sign-in; without a ``next``, the mayor lands on the yearly summary (issue 20), others on the
    dashboard (LOGIN_REDIRECT_URL)."""

    template_name = "login.html"

    def get_default_redirect_url(self):
        from django.shortcuts import resolve_url

        from .models import Role

        if getattr(self.request.user, "role", "") == Role.MAYOR:
            return resolve_url("annual-summary")
        return super().get_default_redirect_url()


@require_POST
def language_set(request):
    """Django's language switcher (the cookie the pages follow), and, signed in, the choice kept on
    the account for what is e-mailed to the user (accounts.services.user_language_set)."""
    from . import services

    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        services.user_language_set(user=request.user, language=language)
    return response
