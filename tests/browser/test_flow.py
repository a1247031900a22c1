"""The everyday flow in headless Chromium: log in, complete tags, give a motif, play and seek.

Uses Debian's Chromium (it plays H.264/AAC MP4, which is why playback copies are H.264) through
Playwright, against the live server. Screenshots of the pages go to docs/screenshots/.
"""
import base64
import os
import shutil
from pathlib import Path

import pytest

from audit.models import CustodyEvent
from evidence.models import Annotation, Recording

from ..conftest import require_service
from ..evidence.helpers import run_offload

pytestmark = [pytest.mark.django_db(transaction=True)]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "Témoin-demo-2026"


@pytest.fixture
def browser():
    chromium = os.environ.get("TEMOIN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    require_service("Chromium", Path(chromium).exists(), "install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("Playwright", False, "pip install playwright")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls made by the
    # test itself are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()
        # ORM calls made while Playwright's loop runs may use their own connection (Django keeps
        # connections per context): close them, or the test database cannot be dropped.
        from django.db import connections

        connections.close_all()


def _login(page, base, username):
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state()
    if "/connexion/code/activation/" in page.url:
        # First login of a supervisor: the second factor is enrolled from the key shown on the page,
        # as an authenticator application would.
        secret = page.text_content("main code").strip()
        page.fill("#id_token", _totp(base64.b32decode(secret)))
        page.click("main button[type=submit]")
        page.wait_for_load_state()


def _totp(key: bytes) -> str:
    from django_otp.oath import totp

    return str(totp(key, step=30, t0=0, digits=6)).zfill(6)


def test_an_officer_completes_tags_gives_a_motif_and_plays_a_recording_with_seeking(
    browser, live_server, make_volume, clip_library, camera, officer, local_store
):
    volume = make_volume("BWC-0042", {"DCIM/CLIP0001.MP4": clip_library["h264"]})
    assert run_offload(volume)[0] == 0
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.READY and rec.to_complete
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    base = live_server.url

    _login(page, base, officer.username)
    assert "Tableau de bord" in page.inner_text("h1")  # English browsers get French too: French first
    page.click("nav >> text=Enregistrements")
    assert "Enregistrements" in page.inner_text("h1")
    page.screenshot(path=str(SHOTS / "recordings.png"), full_page=True)

    # The "to complete" queue: trigger reason and information of the people filmed.
    page.click("nav >> text=À compléter")
    page.screenshot(path=str(SHOTS / "to-complete.png"), full_page=True)
    page.select_option(f"#tr-{rec.pk}", "incident")
    page.check("form.tagform input[name=subject_notified][value=true]")  # not the batch form's (issue 20)
    page.click("form.tagform button[type=submit]")
    page.wait_for_load_state()
    assert "qualification enregistrée" in page.inner_text("main")
    rec.refresh_from_db()
    assert (rec.trigger_reason, rec.subject_notified, rec.to_complete) == ("incident", True, False)

    # Filter the list by camera, open the recording.
    page.goto(f"{base}/")
    page.fill("input[name=camera]", "0042")
    page.click("form.filters button[type=submit]")
    page.click(f"a[href='/enregistrements/{rec.pk}/']")
    page.screenshot(path=str(SHOTS / "recording.png"), full_page=True)

    # Motif before media, then play and seek.
    page.click("text=Consulter la vidéo")
    assert page.locator("video").count() == 0
    page.select_option("#id_motif_choice", index=1)
    page.fill("#id_motif_detail", "PV 2026/77")
    page.click("main button[type=submit]")
    page.wait_for_function("() => document.querySelector('video') && document.querySelector('video').readyState >= 1",
                           timeout=20000)
    duration = page.evaluate("document.querySelector('video').duration")
    assert 2.5 < duration < 3.5
    page.evaluate("document.querySelector('video').currentTime = 2.0")
    page.wait_for_function("() => { const v = document.querySelector('video'); "
                           "return !v.seeking && v.readyState >= 2 && Math.abs(v.currentTime - 2.0) < 0.1; }",
                           timeout=20000)
    consulted = CustodyEvent.objects.get(action="recording.consulted")
    assert consulted.actor == officer and consulted.motif.endswith("PV 2026/77")

    # A comment at the current time, added without leaving the player.
    page.evaluate("document.querySelector('video').pause()")
    page.click("#id_text")
    page.fill("#id_text", "Sommation avant interpellation")
    page.click("#annotation-form button[type=submit]")
    page.wait_for_selector("ul.annotations >> text=Sommation avant interpellation")
    note = Annotation.objects.get()
    assert note.author == officer and abs(note.at_seconds - 2.0) < 0.2
    assert page.locator("video").count() == 1  # still on the player
    page.screenshot(path=str(SHOTS / "player.png"), full_page=True)


def test_a_supervisor_sees_the_upcoming_erasures_and_places_a_hold(
    browser, live_server, make_volume, clip_library, camera, make_user, local_store
):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})
    assert run_offload(volume)[0] == 0
    rec = Recording.objects.get()
    make_user("chef", role="supervisor", password=PASSWORD)
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    _login(page, live_server.url, "chef")
    page.goto(f"{live_server.url}/enregistrements/{rec.pk}/")
    page.select_option("#id_procedure", "judicial")
    page.fill("#id_reference", "PV 2026/1234")
    page.click("text=Conserver pour procédure")
    page.wait_for_load_state()

    assert "Conservation pour procédure enregistrée" in page.inner_text("main")
    assert rec.holds.get().reference == "PV 2026/1234"
    page.goto(f"{live_server.url}/effacements/")
    page.screenshot(path=str(SHOTS / "erasures.png"), full_page=True)
