"""A temporary password (chosen by the administrator) is replaced before anything else (issue 20).

CNIL's 2021 formal notice to a commune named weak, shared passwords; a password someone else knows is
one. Until the user has chosen their own, every page leads to "Changer mon mot de passe".
"""
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

CHANGE_REQUIRED = ("Mot de passe provisoire : choisissez votre mot de passe dans l'interface web avant de "
                   "continuer.")
CHANGE_REQUIRED_CODE = "password_change_required"


class PasswordChangeRequiredMiddleware:
    """After the second factor: a user whose password is temporary reaches only the change page."""

    EXEMPT_PREFIXES = ("/static/", "/i18n/")

    def __init__(self, get_response):
        self.get_response = get_response

    @cached_property
    def allowed(self) -> frozenset[str]:
        return frozenset(reverse(name) for name in ("login", "logout", "otp-verify", "otp-setup", "password-change"))

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "must_change_password", False):
            path = request.path
            if path not in self.allowed and not path.startswith(self.EXEMPT_PREFIXES):
                if path.startswith("/api/"):
                    return JsonResponse({"detail": CHANGE_REQUIRED, "code": CHANGE_REQUIRED_CODE}, status=403)
                return redirect(f"{reverse('password-change')}?next={request.get_full_path()}")
        return self.get_response(request)


class TokenAuthenticationUnlessTemporary(TokenAuthentication):
    """An API token opens nothing while its user's password is temporary.

    The middleware above sees only the web session: DRF authenticates a token inside the view. A token
    issued before an administrator's reset (or with the account) would otherwise go on working with a
    password someone else chose; the user changes it in the web interface first (issue 20).
    """

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if user.must_change_password:
            raise exceptions.PermissionDenied(detail=CHANGE_REQUIRED, code=CHANGE_REQUIRED_CODE)
        return user, token
