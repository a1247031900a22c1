"""TOTP second factor for the roles that see a whole organisation or manage it (issue #4, item 5)."""
import base64

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import CustodyEvent

PASSWORD = "Témoin-demo-2026"


def _code(key: bytes) -> str:
    return str(totp(key, step=30, t0=0, digits=6)).zfill(6)


def _let_the_throttle_pass(user):
    import datetime as dt

    from django.utils import timezone

    TOTPDevice.objects.filter(user=user).update(
        throttling_failure_timestamp=timezone.now() - dt.timedelta(minutes=5))


def _login(client, username):
    return client.post("/connexion/", {"username": username, "password": PASSWORD})


@pytest.mark.parametrize("role", ["supervisor", "legal", "dpo", "mayor", "admin"])
def test_a_role_that_needs_a_second_factor_reaches_nothing_before_the_code(client, make_user, role):
    make_user("u", role=role)
    _login(client, "u")
    page = client.get("/")
    assert page.status_code == 302 and page["Location"].startswith("/connexion/code/activation/")
    api = client.get("/api/recordings/")
    assert api.status_code == 403 and api.json()["code"] == "second_factor_required"


def test_an_officer_needs_no_second_factor(client, officer):
    _login(client, officer.username)
    assert client.get("/").status_code == 200


def test_enrolment_with_the_shown_key_then_a_code_at_each_login(client, make_user):
    chef = make_user("chef", role="supervisor")
    _login(client, "chef")
    setup = client.get("/connexion/code/activation/")
    assert setup.status_code == 200 and b"<svg" in setup.content
    secret = setup.context["secret"]
    key = base64.b32decode(secret)
    assert client.post("/connexion/code/activation/", {"token": "000000"}).status_code == 400
    assert not TOTPDevice.objects.get(user=chef).confirmed
    # django-otp throttles after a failure (1 s, then doubling): a right code at once is refused too.
    assert client.post("/connexion/code/activation/", {"token": _code(key)}).status_code == 400
    _let_the_throttle_pass(chef)
    response = client.post("/connexion/code/activation/", {"token": _code(key), "next": "/a-completer/"})
    assert response.status_code == 302 and response["Location"] == "/a-completer/"
    assert TOTPDevice.objects.get(user=chef).confirmed
    assert client.get("/").status_code == 200
    assert CustodyEvent.objects.filter(action="access.second_factor_enrolled", subject_id=str(chef.pk)).exists()

    client.post("/deconnexion/")
    _login(client, "chef")
    assert client.get("/")["Location"].startswith("/connexion/code/?")
    wrong = client.post("/connexion/code/", {"token": "123456" if _code(key) != "123456" else "654321"})
    assert wrong.status_code == 400
    failed = CustodyEvent.objects.filter(action="access.login_failed").order_by("-seq").first()
    assert failed.details["reason"] == "second factor: wrong code"


def test_a_verified_code_opens_the_pages(client, make_user):
    chef = make_user("chef", role="legal")
    device = TOTPDevice.objects.create(user=chef, name="t", confirmed=True)
    _login(client, "chef")
    assert client.post("/connexion/code/", {"token": _code(device.bin_key)}).status_code == 302
    assert client.get("/registre/").status_code == 200


def test_an_open_redirect_after_the_code_is_refused(client, make_user):
    chef = make_user("chef", role="mayor")
    device = TOTPDevice.objects.create(user=chef, name="t", confirmed=True)
    _login(client, "chef")
    response = client.post("/connexion/code/", {"token": _code(device.bin_key), "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_api_tokens_are_separate_credentials_and_not_blocked(client, make_user):
    chef = make_user("chef", role="supervisor")
    response = client.get("/api/recordings/", HTTP_AUTHORIZATION=f"Token {chef.api_token}")
    assert response.status_code == 200


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, officer):
    _login(client, officer.username)
    policy = client.get("/")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
