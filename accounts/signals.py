"""Hooks on Django's authentication: failed logins are written to the custody log, aggregated.

The first failure of an address in each window (TEMOIN_LOGIN_FAILURE_WINDOW_SECONDS) is an entry
of its own; the following ones, locked out or with rotating usernames, are counted on the window
(audit.RequestWindow) and the count goes to the log once the window has ended
(audit.throttle.login_failures_report, run by the beat). A flood then adds two entries per
address and window, not one per attempt (issue 17, finding 6).
"""
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from audit.throttle import LOGIN_FAILED, client_address, window_count

from .services import access_failure_record


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    ip = client_address(request) if request is not None else ""
    username = str(credentials.get("username", ""))
    counted = window_count(scope=LOGIN_FAILED, source=ip or "?", sample=username,
                           seconds=settings.TEMOIN_LOGIN_FAILURE_WINDOW_SECONDS)
    if counted.first:
        access_failure_record(username=username, ip_address=ip)
