"""A temporary password (chosen by the administrator) is replaced before anything else (issue 20).

CNIL's 2021 formal notice to a commune named weak, shared passwords; a password someone else knows is
one. Until the user has chosen their own, every page leads to "Changer mon mot de passe".
"""
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property


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
                    return JsonResponse({"detail": "Mot de passe provisoire : choisissez votre mot de passe "
                                                   "dans l'interface web avant de continuer.",
                                         "code": "password_change_required"}, status=403)
                return redirect(f"{reverse('password-change')}?next={request.get_full_path()}")
        return self.get_response(request)
