"""Hooks on Django's authentication: failed logins are written to the custody log."""
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from .services import access_failure_record


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    access_failure_record(username=str(credentials.get("username", "")), ip_address=ip)
