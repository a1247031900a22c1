"""Second-factor pages: enrolment (QR code) and code entry after the password."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

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
        error = "Code incorrect ou expiré. Attendez le code suivant et réessayez."
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
        error = "Code incorrect. Vérifiez l'heure de votre téléphone et saisissez le code affiché."
    return render(request, "accounts/otp_setup.html", {
        "error": error, "next": _next(request), "qr_svg": sf.provisioning_qr_svg(device),
        "secret": sf.base32_secret(device),
    }, status=400 if error else 200)
