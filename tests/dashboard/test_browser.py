"""The dashboard and the fleet page in headless Chromium, with demo-like data; screenshots to docs/screenshots/.

Also checks what a person would notice: the stylesheet applies, the charts are drawn, the offloads
panel refreshes itself (htmx, same-origin script, no inline script), the check-out form works.
"""
import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from devices.models import CameraAssignment, OffloadItem, OffloadSession
from evidence.models import Recording

from ..browser.test_flow import SHOTS, _login, browser  # noqa: F401  (fixture)
from ..evidence.helpers import run_offload

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_service(org, make_user, make_camera, make_recording, make_session, make_volume, clip_library, local_store):
    now = timezone.now()
    people = [("agent.martin", "M042", "Julie", "Martin"), ("agent.durand", "M043", "Karim", "Durand"),
              ("agent.roux", "M044", "Léa", "Roux"), ("agent.nguyen", "M045", "Minh", "Nguyen")]
    agents = []
    for username, matricule, first, last in people:
        user = make_user(username, matricule=matricule)
        user.first_name, user.last_name = first, last
        user.save()
        agents.append(user)
    chef = make_user("chef.bernard", role="supervisor")
    chef.first_name, chef.last_name = "Anne", "Bernard"
    chef.save()
    make_user("admin", role="admin")
    cams = [make_camera(f"BWC-00{42 + i}", officer=a, since=now - dt.timedelta(days=60)) for i, a in enumerate(agents)]
    spare = make_camera("BWC-0050", model="Caméra-piéton démo", firmware="2.3.0")
    # A real offload of a real clip (ffmpeg, write-once store) for BWC-0042.
    volume = make_volume("BWC-0042", {"DCIM/CLIP0001.MP4": clip_library["h264"]})
    assert run_offload(volume, "--dock", "poste-1")[0] == 0
    # Thirty days of recordings: more on weekdays, a few left untagged.
    n = 0
    for day in range(30):
        for k in range(2 + (day * 7) % 5):
            n += 1
            agent = agents[n % 4]
            started = now - dt.timedelta(days=day, hours=2 + 3 * k)
            make_recording(cams[n % 4], started, 300 + (n * 137) % 2400, wearer=agent,
                           tagged=(n % (3 + n % 4)) != 0, intervention=f"PM-2026-{300 + n}",
                           retain_until=started + dt.timedelta(days=31))
    # Docks: one offload in progress, one finished with a clip left on the camera.
    running = make_session(cams[1], now - dt.timedelta(minutes=4), dock="poste-1", slot="slot-2",
                           items=[OffloadItem.Status.VERIFIED] * 3 + [OffloadItem.Status.PENDING] * 2,
                           bytes_done=1_400_000_000, bytes_total=2_300_000_000)
    make_session(cams[2], now - dt.timedelta(hours=3), dock="poste-2", slot="slot-1",
                 status=OffloadSession.Status.INCOMPLETE, finished_at=now - dt.timedelta(hours=2, minutes=40),
                 items=[OffloadItem.Status.VERIFIED] * 4 + [OffloadItem.Status.FAILED],
                 bytes_done=900_000_000, bytes_total=1_000_000_000)
    # BWC-0045 has not been docked for 30 hours.
    type(cams[3]).objects.filter(pk=cams[3].pk).update(last_docked_at=now - dt.timedelta(hours=30))
    return {"chef": chef, "running": running, "spare": spare, "agents": agents}


def _styled(page) -> bool:
    # dashboard.css gives the key-figure cards a white background and a border.
    return page.evaluate("getComputedStyle(document.querySelector('.kpi')).backgroundColor") == "rgb(255, 255, 255)"


def test_dashboard_and_fleet_pages_in_chromium(browser, live_server, demo_service):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    _login(page, base, "chef.bernard")

    page.goto(f"{base}/tableau-de-bord/")
    assert page.inner_text("h1") == "Tableau de bord"
    assert _styled(page), "dashboard.css is not applied (static file not found?)"
    assert page.locator("svg[role=img]").count() == 2
    assert page.locator("#hours-t").text_content().startswith("Heures enregistrées par jour")
    assert page.locator("svg rect.bar").count() == 30
    assert page.locator("#offloads-panel progress").count() == 3  # running, then the last 24 hours
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    # The offloads panel refreshes itself: the progress bar follows the database without a reload.
    page.evaluate("document.body.dataset.marker = 'same page'")
    OffloadSession.objects.filter(pk=demo_service["running"].pk).update(bytes_done=2_000_000_000)
    expect(page.locator("#offloads-panel progress").first).to_have_attribute("value", "2000000000", timeout=15000)
    assert page.evaluate("document.body.dataset.marker") == "same page"

    # The fleet page: the late camera highlighted, the spare one issued with the plain form.
    page.goto(f"{base}/flotte/")
    row = page.locator("tr.row-undocked")
    assert row.count() == 1 and "BWC-0045" in row.inner_text() and "non déchargée depuis plus de 24 h" in row.inner_text()
    page.screenshot(path=str(SHOTS / "fleet.png"), full_page=True)
    spare = demo_service["spare"]
    page.select_option(f"#officer-{spare.pk}", str(demo_service["agents"][0].pk))
    page.click(f"#camera-{spare.pk} button[type=submit]")
    page.wait_for_load_state()
    assert "Caméra BWC-0050 remise à" in page.inner_text("main")
    assert CameraAssignment.objects.get(camera=spare, ends_at__isnull=True).officer == demo_service["agents"][0]

    # A tablet in portrait: the tables become cards, nothing overflows sideways.
    tablet = page
    tablet.set_viewport_size({"width": 768, "height": 1024})
    tablet.goto(f"{base}/flotte/")
    assert tablet.url.endswith("/flotte/") and tablet.locator("tr.row-undocked").count() == 1
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    tablet.screenshot(path=str(SHOTS / "fleet-tablet.png"), full_page=True)
    tablet.goto(f"{base}/tableau-de-bord/")
    assert tablet.url.endswith("/tableau-de-bord/")
    assert tablet.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def test_the_administrators_dashboard_in_chromium(browser, live_server, demo_service):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    _login(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/tableau-de-bord/")
    text = page.inner_text("main")
    assert "non déchargées depuis plus de 24 h" in text and "BWC-0043" in text
    assert "PM-2026" not in text and page.locator("svg[role=img]").count() == 0
    assert Recording.objects.exists()
    page.screenshot(path=str(SHOTS / "dashboard-admin.png"), full_page=True)


def test_the_officers_dashboard_in_chromium(browser, live_server, demo_service):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    _login(page, live_server.url, "agent.martin")
    page.goto(f"{live_server.url}/tableau-de-bord/")
    assert page.locator("#hours-t").text_content().startswith("Mes heures enregistrées")
    text = page.inner_text("main")
    assert "Karim Durand" not in text and "BWC-0043" not in text  # a colleague's wearer name and camera
    page.screenshot(path=str(SHOTS / "dashboard-officer.png"), full_page=True)
