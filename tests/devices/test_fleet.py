"""The fleet page: cameras, check-out / check-in with their custody events, docks, the 24-hour flag."""
import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import CustodyEvent
from devices import selectors, services
from devices.models import Camera, CameraAssignment, OffloadItem

from ..auth import sign_in
from ..dashboard.fixtures import make_camera, make_session, other_org  # noqa: F401  (fixtures)

UTC = dt.timezone.utc


@pytest.mark.parametrize("role, status", [("admin", 200), ("supervisor", 200), ("officer", 403), ("legal", 403),
                                          ("dpo", 403), ("mayor", 403)])
def test_the_fleet_page_is_for_the_administrator_and_the_head_of_service(client, make_user, role, status):
    sign_in(client, make_user(f"u.{role}", role=role))
    assert client.get(reverse("fleet")).status_code == status


def test_anonymous_users_are_sent_to_the_login_page(client, db):
    response = client.get(reverse("fleet"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_fleet_page_shows_only_the_organisations_devices(client, org, other_org, make_user, make_camera,  # noqa: F811
                                                             make_session):  # noqa: F811
    now = timezone.now()
    agent = make_user("agent.a", matricule="A1")
    stranger = make_user("agent.z", matricule="Z9", organisation=other_org)
    mine = make_camera("BWC-MINE-1", officer=agent, since=now - dt.timedelta(days=3))
    theirs = make_camera("BWC-THEIRS-9", organisation=other_org, officer=stranger, since=now - dt.timedelta(days=3))
    make_session(mine, now - dt.timedelta(hours=1), dock="poste-commun", slot="slot-1")
    make_session(theirs, now - dt.timedelta(minutes=1), dock="poste-commun", slot="slot-2")
    make_session(theirs, now - dt.timedelta(minutes=1), dock="poste-annecy", slot="slot-9")
    sign_in(client, make_user("admin", role="admin"))

    page = client.get(reverse("fleet")).content.decode()

    assert "BWC-MINE-1" in page and "Caméra-piéton démo" in page and "2.4.1" in page and "agent.a (A1)" in page
    assert "poste-commun" in page  # a shared dock without organisation where our camera was docked
    for mark in ("BWC-THEIRS-9", "agent.z", "poste-annecy", "slot-9"):
        assert mark not in page
    # The shared dock's other slot shows no session of the other organisation.
    slots = {s.name: s.last_serial for s in selectors.dock_slots_for(user=make_user("chef", role="supervisor"))}
    assert slots == {"slot-1": "BWC-MINE-1", "slot-2": None}


def test_check_out_then_check_in_write_the_assignment_and_the_custody_events(client, make_user, make_camera):  # noqa: F811
    chef = make_user("chef", role="supervisor")
    agent = make_user("agent.a", matricule="A1")
    cam = make_camera("BWC-0200")
    sign_in(client, chef)

    response = client.post(reverse("camera-check-out", args=[cam.pk]), {"officer": agent.pk}, follow=True)
    assert "Caméra BWC-0200 remise à agent.a (A1)." in response.content.decode()
    assignment = CameraAssignment.objects.get(camera=cam)
    assert assignment.officer == agent and assignment.ends_at is None
    out = CustodyEvent.objects.get(action="camera.checked_out")
    assert (out.actor, out.subject_id, out.organisation_id) == (chef, str(cam.pk), cam.organisation_id)
    assert out.details["officer"] == "A1" and out.details["assignment"] == assignment.pk

    response = client.post(reverse("camera-check-in", args=[cam.pk]), follow=True)
    assert "Retour de la caméra BWC-0200 enregistré" in response.content.decode()
    assignment.refresh_from_db()
    assert assignment.ends_at is not None and assignment.ends_at >= assignment.starts_at
    back = CustodyEvent.objects.get(action="camera.checked_in")
    assert back.actor == chef and back.details["ends_at"] == assignment.ends_at.isoformat()
    page = client.get(reverse("fleet")).content.decode()
    assert "en réserve" in page and assignment.starts_at.astimezone(timezone.get_current_timezone()).strftime("%d/%m/%Y") in page


def test_a_camera_issued_to_someone_cannot_be_checked_out_again(client, make_user, make_camera):  # noqa: F811
    admin = make_user("admin", role="admin")
    a, b = make_user("agent.a", matricule="A1"), make_user("agent.b", matricule="B1")
    cam = make_camera("BWC-0201", officer=a)
    sign_in(client, admin)
    events = CustodyEvent.objects.count()

    response = client.post(reverse("camera-check-out", args=[cam.pk]), {"officer": b.pk}, follow=True)

    assert "est déjà remise à agent.a (A1)" in response.content.decode()
    assert list(CameraAssignment.objects.filter(camera=cam).values_list("officer__username", "ends_at")) == [("agent.a", None)]
    assert CustodyEvent.objects.count() == events


def test_check_in_of_a_camera_issued_to_nobody_is_refused(make_user, make_camera):  # noqa: F811
    cam = make_camera("BWC-0202")
    with pytest.raises(services.CustodyRefused, match="n'est remise à personne"):
        services.camera_check_in(camera=cam, by=make_user("chef", role="supervisor"))


def test_a_camera_cannot_be_issued_to_an_agent_of_another_organisation_nor_to_the_dpo(
        client, make_user, make_camera, other_org):  # noqa: F811
    chef = make_user("chef", role="supervisor")
    cam = make_camera("BWC-0203")
    stranger = make_user("agent.z", matricule="Z9", organisation=other_org)
    dpo = make_user("dpo", role="dpo")
    sign_in(client, chef)
    for who in (stranger, dpo):
        response = client.post(reverse("camera-check-out", args=[cam.pk]), {"officer": who.pk}, follow=True)
        assert "choisissez l&#x27;agent à qui la remettre" in response.content.decode()
    with pytest.raises(services.CustodyRefused, match="même organisation"):
        services.camera_check_out(camera=cam, officer=stranger, by=chef)
    with pytest.raises(services.CustodyRefused, match="rôle non porteur"):
        services.camera_check_out(camera=cam, officer=dpo, by=chef)
    assert not CameraAssignment.objects.filter(camera=cam).exists()


def test_another_organisations_camera_is_a_404_and_nothing_is_written(client, make_user, make_camera, other_org):  # noqa: F811
    stranger = make_user("agent.z", matricule="Z9", organisation=other_org)
    theirs = make_camera("BWC-THEIRS-1", organisation=other_org, officer=stranger)
    sign_in(client, make_user("admin", role="admin"))
    events = CustodyEvent.objects.count()
    assert client.post(reverse("camera-check-in", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("camera-check-out", args=[theirs.pk]), {"officer": stranger.pk}).status_code == 404
    assert CameraAssignment.objects.get(camera=theirs).ends_at is None
    assert CustodyEvent.objects.count() == events


def test_officers_cannot_check_cameras_out_or_in(client, make_user, make_camera):  # noqa: F811
    agent = make_user("agent.a", matricule="A1")
    cam = make_camera("BWC-0204", officer=agent)
    sign_in(client, agent)
    assert client.post(reverse("camera-check-in", args=[cam.pk])).status_code == 403
    assert CameraAssignment.objects.get(camera=cam).ends_at is None


def test_the_forms_are_plain_posts_protected_by_csrf(make_user, make_camera):  # noqa: F811
    from django.test import Client

    cam = make_camera("BWC-0205")
    client = sign_in(Client(enforce_csrf_checks=True), make_user("chef", role="supervisor"))
    agent = make_user("agent.a", matricule="A1")
    assert client.get(reverse("camera-check-out", args=[cam.pk])).status_code == 405
    assert client.post(reverse("camera-check-out", args=[cam.pk]), {"officer": agent.pk}).status_code == 403
    page = client.get(reverse("fleet")).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page and f'action="/flotte/cameras/{cam.pk}/sortie/"' in page
    assert not CameraAssignment.objects.filter(camera=cam).exists()


def test_cameras_not_docked_for_more_than_24_hours_are_flagged(make_user, make_camera):  # noqa: F811
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    chef = make_user("chef", role="supervisor")
    agent = make_user("agent.a", matricule="A1")

    def cam(serial, *, issued_at=None, returned_at=None, docked_at=None, active=True):
        c = make_camera(serial)
        if issued_at:
            CameraAssignment.objects.create(camera=c, officer=agent, starts_at=issued_at, ends_at=returned_at)
        Camera.objects.filter(pk=c.pk).update(last_docked_at=docked_at, active=active)
        return serial

    h = lambda n: now - dt.timedelta(hours=n)  # noqa: E731
    flagged = {
        cam("OUT-30H-NEVER-DOCKED", issued_at=h(30)),
        cam("OUT-SINCE-DAYS-DOCKED-25H-AGO", issued_at=h(200), docked_at=h(25)),
        cam("RETURNED-WITHOUT-DOCKING", issued_at=h(50), returned_at=h(40), docked_at=h(60)),
    }
    fine = {
        cam("OUT-DOCKED-8H-AGO", issued_at=h(200), docked_at=h(8)),
        cam("OUT-SINCE-2H", issued_at=h(2), docked_at=h(100)),
        cam("SPARE-DOCKED-AFTER-RETURN", issued_at=h(200), returned_at=h(100), docked_at=h(99)),
        cam("NEW-NEVER-ISSUED"),
        cam("DEACTIVATED", issued_at=h(200), active=False),
        cam("OUT-DOCKED-EXACTLY-24H-AGO", issued_at=h(200), docked_at=h(24)),
    }

    rows = {c.serial: c.not_docked for c in selectors.fleet_cameras_for(user=chef, now=now)}

    assert {s for s, flag in rows.items() if flag} == flagged
    assert set(rows) == flagged | fine
    # One hour later the camera docked exactly 24 hours before is flagged too.
    later = {c.serial for c in selectors.fleet_cameras_for(user=chef, now=now + dt.timedelta(hours=1)) if c.not_docked}
    assert later == flagged | {"OUT-DOCKED-EXACTLY-24H-AGO"}


def test_the_page_highlights_undocked_cameras_and_shows_the_last_offload(client, make_user, make_camera, make_session):  # noqa: F811
    now = timezone.now()
    agent = make_user("agent.a", matricule="A1")
    late = make_camera("BWC-LATE", officer=agent, since=now - dt.timedelta(days=5))
    Camera.objects.filter(pk=late.pk).update(last_docked_at=now - dt.timedelta(hours=30))
    docked = make_camera("BWC-DOCKED", officer=agent, since=now - dt.timedelta(days=5))
    make_session(docked, now - dt.timedelta(hours=2), items=[OffloadItem.Status.VERIFIED])
    sign_in(client, make_user("chef", role="supervisor"))

    response = client.get(reverse("fleet"))
    page = response.content.decode()

    assert response.context["not_docked"] == 1
    late_row = page.split(f'id="camera-{late.pk}"')[1].split("</tr>")[0]
    docked_row = page.split(f'id="camera-{docked.pk}"')[1].split("</tr>")[0]
    assert 'class="row-undocked"' in page.split(f'id="camera-{late.pk}"')[1][:30]
    assert "non déchargée depuis plus de 24 h" in late_row and "jamais" in late_row
    assert "non déchargée" not in docked_row and "en cours" in docked_row
    assert "1 caméra non déchargée depuis plus de 24 h" in page
