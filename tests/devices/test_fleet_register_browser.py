"""The fleet register and the DPO's deadlines in headless Chromium, at 1366 px and on a 390 px phone;
screenshots to docs/screenshots/ (issue 20)."""
import datetime as dt

import pytest
from django.utils import timezone

from devices import registry
from devices.models import Camera, Dock
from evidence.disclosure.access_requests import access_request_register

from ..browser.test_flow import SHOTS, _login, browser  # noqa: F401  (fixture)
from ..dashboard.fixtures import make_camera, make_session, other_org  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def _fits(page) -> bool:
    """No horizontal scroll: nothing is wider than the viewport."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.fixture
def fleet_service(org, other_org, make_user, make_camera, make_session):  # noqa: F811
    now = timezone.now()
    admin = make_user("admin", role="admin")
    agent = make_user("agent.martin", matricule="M042")
    agent.first_name, agent.last_name = "Julie", "Martin"
    agent.save()
    issued = make_camera("BWC-0042", officer=agent, since=now - dt.timedelta(hours=5))
    make_camera("BWC-0043", model="Caméra-piéton démo", firmware="2.4.1")
    old = make_camera("BWC-0031", model="Ancien modèle", firmware="1.9.0")
    registry.camera_retire(camera=old, by=admin, reason="Batterie hors d'usage")
    dock = registry.dock_create(by=admin, name="poste-central", label="Poste central, rez-de-chaussée",
                                slots="slot-1, slot-2, slot-3, slot-4")
    make_session(issued, now - dt.timedelta(hours=6), dock="poste-central", slot="slot-1", status="complete",
                 finished_at=now - dt.timedelta(hours=5, minutes=50), bytes_done=900_000_000, bytes_total=900_000_000)
    registry.dock_create(by=admin, name="annexe-nord", label="Annexe nord", slots="a1")
    registry.dock_retire(dock=Dock.objects.get(name="annexe-nord"), by=admin, reason="Annexe fermée")
    # Another commune's camera and dock: never on this page.
    their_admin = make_user("admin.annecy", role="admin", organisation=other_org)
    make_camera("BWC-ANNECY-7", organisation=other_org)
    registry.dock_create(by=their_admin, name="poste-annecy", label="Poste d'Annecy", slots="s1")
    return {"admin": admin, "dock": dock}


def test_registering_a_camera_and_retiring_it_in_chromium_at_1366_and_390_px(browser, live_server,  # noqa: F811
                                                                            fleet_service):
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
    _login(page, base, "admin")

    page.goto(f"{base}/flotte/")
    main = page.inner_text("main")
    assert "BWC-ANNECY-7" not in main and "Poste d'Annecy" not in main
    assert "Poste central, rez-de-chaussée" in main and "retirée du service" in main
    assert _fits(page)
    page.screenshot(path=str(SHOTS / "fleet-register.png"), full_page=True)

    # A serial refused: the form comes back with what was typed and the message next to the field.
    page.click("text=Enregistrer une caméra")
    page.fill("#id_serial", "BWC 0099")
    page.fill("#id_model", "Caméra-piéton démo")
    page.fill("#id_firmware", "3.0.1")
    page.click("main button[type=submit]")
    assert "Numéro de série : lettres, chiffres" in page.inner_text(".field-error")
    assert page.input_value("#id_serial") == "BWC 0099" and page.input_value("#id_firmware") == "3.0.1"
    page.screenshot(path=str(SHOTS / "fleet-camera-form.png"), full_page=True)
    page.fill("#id_serial", "BWC-0099")
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert page.url.endswith("/flotte/#camera-%d" % Camera.objects.get(serial="BWC-0099").pk)
    assert "Caméra BWC-0099 enregistrée." in page.inner_text("main")

    # Retire it: a confirmation page, a reason.
    cam = Camera.objects.get(serial="BWC-0099")
    page.click(f"#camera-{cam.pk} >> text=Retirer du service")
    assert page.inner_text("h1") == "Retirer du service la caméra BWC-0099 ?"
    page.fill("#id_reason", "Écran fissuré, renvoyée au fournisseur")
    page.screenshot(path=str(SHOTS / "fleet-retire.png"), full_page=True)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    assert "Caméra BWC-0099 retirée du service." in page.inner_text("main")
    cam.refresh_from_db()
    assert not cam.active

    # The same pages on a 390 px phone: no horizontal scroll.
    phone = page
    phone.set_viewport_size(PHONE)
    for path, shot in (("/flotte/", "fleet-register-phone.png"),
                       ("/flotte/cameras/nouvelle/", "fleet-camera-form-phone.png"),
                       ("/flotte/stations/nouvelle/", None),
                       (f"/flotte/stations/{fleet_service['dock'].pk}/modifier/", None),
                       (f"/flotte/cameras/{cam.pk}/retrait/", None)):
        phone.goto(f"{base}{path}")
        assert phone.url.endswith(path), phone.url
        assert _fits(phone), path
        if shot:
            phone.screenshot(path=str(SHOTS / shot), full_page=True)


def test_the_dpo_dashboard_deadlines_in_chromium_at_1366_and_390_px(browser, live_server, org, make_user):
    dpo = make_user("dpo.moreau", role="dpo")
    today = timezone.localdate()
    for days_ago, name in ((40, "M. Paul Lefèvre"), (28, "Mme Inès Garnier"), (3, "M. Hugo Chevalier")):
        received = today - dt.timedelta(days=days_ago)
        access_request_register(by=dpo, requester_name=name, identity_checked=True,
                                identity_check_method="carte nationale d'identité", received_on=received,
                                description="Interpellation place du marché",
                                now=timezone.make_aware(dt.datetime.combine(received, dt.time(10))))
    base = live_server.url
    page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
    _login(page, base, "dpo.moreau")  # enrols the second factor (DPO)
    for viewport, shot in ((DESKTOP, "dashboard-dpo.png"), (PHONE, "dashboard-dpo-phone.png")):
        page.set_viewport_size(viewport)
        page.goto(f"{base}/tableau-de-bord/")
        block = page.locator("#access-request-deadlines")
        assert "Échéances des demandes d'accès" in block.inner_text()
        assert block.locator("tr.deadline-overdue").count() == 1 and block.locator("tr.deadline-soon").count() == 1
        assert "M. Paul Lefèvre" in block.locator("tr.deadline-overdue").inner_text()
        assert _fits(page)
        page.screenshot(path=str(SHOTS / shot), full_page=True)
