"""Finding 6 of issue 17: failed logins are aggregated per address and window, so that a flood
(also while locked out, with rotating usernames) cannot grow the custody log without bound."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import CustodyEvent, RequestWindow
from audit.tasks import login_failures_report, request_windows_prune

pytestmark = pytest.mark.django_db


def _try(client, username, password="wrong password"):
    return client.post("/connexion/", {"username": username, "password": password})


def test_a_flood_of_failed_logins_with_rotating_usernames_adds_one_entry_then_one_count(officer, settings):
    settings.TEMOIN_LOGIN_FAILURE_WINDOW_SECONDS = 600
    attacker = Client(REMOTE_ADDR="203.0.113.5")
    usernames = [officer.username] * 8 + [f"user{n}" for n in range(40)]  # locked out after 5, then a spray
    for name in usernames:
        assert _try(attacker, name).status_code in (200, 429)

    entries = CustodyEvent.objects.filter(action__startswith="access.login_failed")
    assert entries.count() == 1
    window = RequestWindow.objects.get(scope="login.failed", source="203.0.113.5")
    assert window.count == len(usernames)
    assert officer.username in window.samples and len(window.samples) <= 10

    # Another address has its own first entry.
    _try(Client(REMOTE_ADDR="203.0.113.6"), officer.username)
    assert entries.count() == 2

    # Nothing is reported while the window is open; once it has ended, its count is one entry.
    assert login_failures_report.run() == 0
    RequestWindow.objects.update(window_start=timezone.now() - dt.timedelta(hours=1))
    assert login_failures_report.run() == 1
    counted = CustodyEvent.objects.get(action="access.login_failures_counted")
    assert counted.details["ip_address"] == "203.0.113.5" and counted.details["count"] == len(usernames)
    assert login_failures_report.run() == 0  # reported once

    # Pruning keeps nothing it has not reported.
    RequestWindow.objects.update(window_start=timezone.now() - dt.timedelta(days=3))
    assert request_windows_prune.run() == 2
