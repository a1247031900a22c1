"""TOTP second factor (django-otp) for the roles that see a whole organisation or manage it.

CSI R241-12 limits access to individually authorised people; the CNIL's 2021 notice to a commune
cited weak authentication. A password alone is therefore not enough for `supervisor`, `legal`,
`dpo`, `mayor` and `admin`: after the password, they enter a time-based code (RFC 6238).
"""
import base64
import io

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.services import custody_event_append

from .models import Role, User

SECOND_FACTOR_ROLES = {Role.SUPERVISOR, Role.LEGAL, Role.DPO, Role.MAYOR, Role.ADMIN}
DEVICE_NAME = "Témoin"


def second_factor_required(user) -> bool:
    return (getattr(settings, "TEMOIN_REQUIRE_TOTP", True) and user.is_authenticated
            and user.role in SECOND_FACTOR_ROLES)


def totp_device_for(*, user: User, confirmed: bool | None = True) -> TOTPDevice | None:
    qs = TOTPDevice.objects.devices_for_user(user, confirmed=confirmed)
    return qs.order_by("-id").first()


def totp_enrolment_start(*, user: User) -> TOTPDevice:
    """An unconfirmed device with a fresh secret; it counts only once a code from it is entered."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def totp_enrolment_confirm(*, request, device: TOTPDevice, token: str) -> bool:
    if not device.verify_token(token.strip()):
        _failure(request, "second factor enrolment: wrong code")
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        # CSI R241-14: changes to how someone is authorised are logged like the grants themselves.
        custody_event_append(action="access.second_factor_enrolled", subject=device.user,
                             organisation=device.user.organisation, actor=device.user,
                             details={"method": "totp"})
    otp_login(request, device)
    return True


def totp_verify(*, request, token: str) -> bool:
    device = totp_device_for(user=request.user)
    if device is None or not device.verify_token(token.strip()):
        # django-otp throttles repeated failures per device (exponential delay).
        _failure(request, "second factor: wrong code")
        return False
    otp_login(request, device)
    return True


def totp_reset(*, user: User, by: User) -> None:
    """An administrator resets a lost authenticator: the user enrols again at next login."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        custody_event_append(action="access.second_factor_reset", subject=user, organisation=user.organisation,
                             actor=by, details={"username": user.username})


def provisioning_qr_svg(device: TOTPDevice) -> str:
    import qrcode
    import qrcode.image.svg

    img = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue().decode()


def base32_secret(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode()


def _failure(request, reason: str) -> None:
    from .services import access_failure_record

    access_failure_record(username=request.user.get_username(), ip_address=request.META.get("REMOTE_ADDR", ""),
                          reason=reason)


class SecondFactorMiddleware:
    """Until the second factor is given, a user of those roles reaches only the code pages."""

    EXEMPT_PREFIXES = ("/static/", "/i18n/")

    def __init__(self, get_response):
        self.get_response = get_response

    @cached_property
    def allowed(self) -> frozenset[str]:
        """The pages reachable between password and code (resolved once, not on every request)."""
        return frozenset(reverse(name) for name in ("login", "logout", "otp-verify", "otp-setup"))

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and second_factor_required(user) and not user.is_verified():
            path = request.path
            if path not in self.allowed and not path.startswith(self.EXEMPT_PREFIXES):
                if path.startswith("/api/"):
                    return JsonResponse({"detail": "Second facteur requis : connectez-vous par l'interface web "
                                                   "et saisissez votre code, ou utilisez un jeton d'API.",
                                         "code": "second_factor_required"}, status=403)
                target = "otp-verify" if totp_device_for(user=user) else "otp-setup"
                return redirect(f"{reverse(target)}?next={request.get_full_path()}")
        return self.get_response(request)
