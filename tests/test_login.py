"""Login security: repeated failures lock the account for that address; failures are logged."""
import pytest
from django.test import Client

from audit.models import CustodyEvent

pytestmark = pytest.mark.django_db


def _try(client, username, password):
    return client.post("/connexion/", {"username": username, "password": password})


def test_a_failed_login_is_written_to_the_custody_log(officer):
    response = _try(Client(REMOTE_ADDR="192.0.2.7"), officer.username, "wrong password")

    assert response.status_code == 200 and "incorrect" in response.content.decode()
    event = CustodyEvent.objects.get(action="access.login_failed")
    assert event.details == {"username": officer.username, "ip_address": "192.0.2.7", "reason": "login failed"}
    assert event.organisation == officer.organisation and event.actor is None


def test_five_failures_lock_the_account_even_for_the_right_password(officer, settings):
    client = Client(REMOTE_ADDR="192.0.2.8")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _try(client, officer.username, "wrong password")

    locked = _try(client, officer.username, "Témoin-demo-2026")

    assert locked.status_code == 429 and "bloquée" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address_and_a_success_elsewhere_is_not_blocked(officer, settings):
    attacker = Client(REMOTE_ADDR="192.0.2.9")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _try(attacker, officer.username, "wrong password")

    response = _try(Client(REMOTE_ADDR="198.51.100.4"), officer.username, "Témoin-demo-2026")

    assert response.status_code == 302 and response["Location"] == "/tableau-de-bord/"


def test_security_headers_on_every_page(officer):
    response = Client().get("/connexion/")

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "csrftoken" in response.cookies


def test_behind_tls_browsers_are_told_to_use_https_only(officer, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    response = Client().get("/connexion/", HTTP_X_FORWARDED_PROTO="https")

    assert response["Strict-Transport-Security"] == "max-age=31536000"
