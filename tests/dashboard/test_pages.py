"""The dashboard page per role: what each role sees, and what it never sees."""
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import OffloadItem, OffloadSession

from ..auth import sign_in

ROLES = ["officer", "supervisor", "legal", "dpo", "mayor", "admin"]


@pytest.fixture
def two_services(org, other_org, make_user, make_camera, make_recording, make_session):
    """Two organisations with distinctive names everywhere; returns the users of the first."""
    now = timezone.now()
    users = {role: make_user(f"{role}.chambery", role=role, matricule="C1" if role == "officer" else "")
             for role in ROLES}
    colleague = make_user("agent.collegue", matricule="C2")
    colleague.first_name, colleague.last_name = "Camille", "Collègue"
    colleague.save()
    cam = make_camera("BWC-CHAMBERY-1", officer=users["officer"], since=now - dt.timedelta(days=40))
    cam2 = make_camera("BWC-CHAMBERY-2", officer=colleague, since=now - dt.timedelta(days=40))
    make_recording(cam, now - dt.timedelta(days=2), 1800, wearer=users["officer"], intervention="PV-OWN-11",
                   retain_until=now + dt.timedelta(hours=20))
    make_recording(cam2, now - dt.timedelta(days=1), 3600, wearer=colleague, intervention="PV-COLLEGUE-22",
                   tagged=False, retain_until=now + dt.timedelta(hours=30))
    make_session(cam, now - dt.timedelta(minutes=5), dock="poste-chambery", slot="slot-1",
                 items=[OffloadItem.Status.VERIFIED, OffloadItem.Status.PENDING], bytes_done=50, bytes_total=200)

    stranger = make_user("agent.zebulon", matricule="Z9", organisation=other_org)
    stranger.first_name, stranger.last_name = "Zébulon", "Étranger"
    stranger.save()
    other_cam = make_camera("BWC-ANNECY-9", organisation=other_org, officer=stranger, since=now - dt.timedelta(days=40))
    make_recording(other_cam, now - dt.timedelta(days=1), 7200, wearer=stranger, intervention="PV-ANNECY-99",
                   retain_until=now + dt.timedelta(hours=10))
    make_session(other_cam, now - dt.timedelta(minutes=3), dock="poste-annecy", slot="slot-9",
                 items=[OffloadItem.Status.PENDING], bytes_done=10, bytes_total=100)
    return users


OTHER_ORG_MARKS = ["BWC-ANNECY-9", "PV-ANNECY-99", "Zébulon", "poste-annecy", "Annecy"]


def _get(client, user, name="dashboard"):
    sign_in(client, user)
    response = client.get(reverse(name))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_only_its_own_organisation(client, two_services, role):
    for url in ("dashboard", "dashboard-offloads"):
        page = _get(client, two_services[role], url)
        for mark in OTHER_ORG_MARKS:
            assert mark not in page, f"{role} sees {mark!r} of another organisation on {url}"


def test_the_officer_sees_their_own_figures_only(client, two_services):
    sign_in(client, two_services["officer"])
    response = client.get(reverse("dashboard"))
    page = response.content.decode()
    assert response.context["kind"] == "officer"
    assert "PV-OWN-11" in page  # their recording, erased within 72 hours
    assert "PV-COLLEGUE-22" not in page and "Camille" not in page
    assert response.context["hours_total"] == pytest.approx(0.5)
    assert "wearer_chart" not in response.context  # no per-officer comparison for an officer
    assert response.context["erasures"].total == 1
    # The offload of the camera issued to them is shown, with its progress bar.
    assert 'value="50"' in page and 'max="200"' in page and "BWC-CHAMBERY-1" in page


@pytest.mark.parametrize("role", ["supervisor", "legal", "mayor"])  # the DPO: issue 15, not the recordings
def test_organisation_roles_see_the_services_figures(client, two_services, role):
    sign_in(client, two_services[role])
    response = client.get(reverse("dashboard"))
    page = response.content.decode()
    assert response.context["kind"] == "organisation"
    assert response.context["hours_total"] == pytest.approx(1.5)
    labels = [b.label for b in response.context["wearer_chart"].bars]
    assert labels == ["Police municipale de Chambéry", "Camille Collègue (C2)", "officer.chambery (C1)"]
    assert response.context["service_share"].total == 2 and response.context["to_complete"] == 1
    assert "PV-COLLEGUE-22" in page and "PV-OWN-11" in page
    assert "<svg" in page and "<title id=\"hours-t\">" in page and 'role="img"' in page


def test_the_administrator_sees_fleet_health_and_no_recording_metadata(client, two_services):
    sign_in(client, two_services["admin"])
    response = client.get(reverse("dashboard"))
    page = response.content.decode()
    assert response.context["kind"] == "fleet"
    for key in ("hours_chart", "wearer_chart", "service_share", "erasures", "to_complete"):
        assert key not in response.context
    for mark in ("PV-OWN-11", "PV-COLLEGUE-22", "Camille", "/enregistrements/", "officer.chambery"):
        assert mark not in page
    health = response.context["health"]
    assert (health.cameras_active, health.cameras_issued, health.docks, health.sessions_running) == (2, 2, 1, 1)
    assert "BWC-CHAMBERY-1" in page  # device metadata: the offload in progress


def test_no_inline_script_nor_style_attribute_and_charts_use_dots_as_decimal_separator(client, two_services):
    import re

    page = _get(client, two_services["supervisor"])
    assert not re.search(r"<script(?![^>]*\bsrc=)", page), "inline <script> would be blocked by the CSP"
    body = page.split("<main", 1)[1]  # <main id="contenu">: the skip link's target (issue 20)
    assert " style=" not in body
    for attr in re.findall(r'<rect [^>]*>', page):
        assert "," not in attr, attr  # French number formatting must not reach SVG coordinates


def test_the_offloads_panel_alone_is_the_htmx_fragment(client, two_services):
    page = _get(client, two_services["supervisor"], "dashboard-offloads")
    assert page.lstrip().startswith("<div id=\"offloads-panel\"")
    assert 'hx-get="/tableau-de-bord/dechargements/"' in page and "<html" not in page
    assert "1 / 2 vérifiés" in page


def test_a_finished_offload_shows_its_outcome_for_24_hours(client, two_services, make_session):
    from devices.models import Camera

    cam = Camera.objects.get(serial="BWC-CHAMBERY-2")
    now = timezone.now()
    make_session(cam, now - dt.timedelta(hours=3), slot="slot-2", status=OffloadSession.Status.INCOMPLETE,
                 finished_at=now - dt.timedelta(hours=2), items=[OffloadItem.Status.VERIFIED, OffloadItem.Status.FAILED])
    make_session(cam, now - dt.timedelta(hours=30), slot="slot-3", status=OffloadSession.Status.COMPLETE,
                 finished_at=now - dt.timedelta(hours=29))
    page = _get(client, two_services["supervisor"], "dashboard-offloads")
    assert "1 resté sur la caméra" in page and "slot-2" in page and "slot-3" not in page


def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_user_without_organisation_is_refused(client, db):
    from accounts.models import User

    user = User.objects.create_user("orphan", password="x" * 16)
    client.force_login(user)
    assert client.get(reverse("dashboard")).status_code == 403
    assert client.get(reverse("dashboard-offloads")).status_code == 403


@pytest.mark.parametrize("role", ["officer", "supervisor", "admin"])
def test_the_number_of_queries_does_not_grow_with_the_number_of_recordings(
        client, two_services, role, make_camera, make_user, make_recording, make_session):
    from accounts.models import User

    sign_in(client, two_services[role])

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("dashboard")).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    now = timezone.now()
    officer = two_services["officer"]
    agents = [officer] + [make_user(f"agent.n{i}", matricule=f"N{i}") for i in range(5)]
    cams = [make_camera(f"BWC-N{i}", officer=a, since=now - dt.timedelta(days=40)) for i, a in enumerate(agents)]
    for i in range(300):
        make_recording(cams[i % 6], now - dt.timedelta(hours=2 * i + 1), 60 + i, wearer=agents[i % 6],
                       tagged=i % 4 != 0, retain_until=now + dt.timedelta(hours=i % 90))
    for i, cam in enumerate(cams):
        make_session(cam, now - dt.timedelta(minutes=i), slot=f"n-{i}", items=[OffloadItem.Status.PENDING] * 3)
    after = count()
    assert after == before, f"{role}: {before} queries with 2 recordings, {after} with 302"
    print(f"\n{role}: {after} queries for the dashboard ({User.objects.count()} users, 302 recordings)")


def test_the_stylesheet_and_the_vendored_htmx_are_served_from_our_own_static_files():
    # No CDN: the Content-Security-Policy allows scripts from our own origin only.
    from django.contrib.staticfiles import finders

    assert finders.find("dashboard/dashboard.css"), "add evidence/dashboard/static to STATICFILES_DIRS"
    htmx = finders.find("dashboard/vendor/htmx-2.0.11.min.js")
    assert htmx and open(htmx, encoding="utf-8").read(200).startswith("var htmx=")
