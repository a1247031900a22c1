"""The review editor in headless Chromium: motif first, then draw and move boxes with the mouse."""
import os

import pytest

from audit.models import CustodyEvent
from evidence.redaction.models import Track
from tests.browser.test_flow import _login, browser  # noqa: F401 - the Chromium fixture

from .helpers import analysed_job, offload_clip

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_reviewer_draws_a_new_zone_and_moves_a_detected_box_with_the_mouse(
        browser, live_server, make_volume, carphone_clip, camera, make_user, local_store, tmp_path):  # noqa: F811
    chef = make_user("chef.durand", role="supervisor")
    rec = offload_clip(make_volume, carphone_clip)
    job = analysed_job(rec, chef, mode="all")
    face = job.tracks.filter(kind=Track.Kind.FACE).first()
    first = face.keyframes[0]
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
    base = live_server.url
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(f"{msg.text} {msg.location.get('url')}") if msg.type == "error" else None)
    _login(page, base, chef.username)

    page.goto(f"{base}/floutage/{job.pk}/editeur/")
    assert page.locator("#frame-canvas").count() == 0  # no image before the motif
    page.select_option("#id_motif_choice", index=1)
    page.click("form[action$='/consultation/'] button[type=submit]")
    page.wait_for_selector("#frame-canvas")
    assert CustodyEvent.objects.filter(action="recording.consulted", actor=chef).count() == 1

    # Go to the face's first keyframe (its button in the track list selects it).
    page.click(f"button[data-select='{face.number}']")
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('image %d ')"
                           % first[0])
    page.evaluate("window.scrollTo(0, 0)")  # the track list is below the canvas
    box = page.locator("#frame-canvas").bounding_box()
    k = box["width"] / job.width

    def at(x, y):
        return box["x"] + x * k, box["y"] + y * k

    # Move the detected box 20 px right and 10 px down.
    page.mouse.move(*at(first[1] + first[3] / 2, first[2] + first[4] / 2))
    page.mouse.down()
    page.mouse.move(*at(first[1] + first[3] / 2 + 10, first[2] + first[4] / 2 + 5), steps=3)
    page.mouse.move(*at(first[1] + first[3] / 2 + 20, first[2] + first[4] / 2 + 10), steps=3)
    page.mouse.up()
    # A new zone, drawn in an empty area after deselecting.
    page.click("#deselect")
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(*at(270, 20))
    page.mouse.down()
    page.mouse.move(*at(300, 40), steps=3)
    page.mouse.move(*at(330, 70), steps=3)
    page.mouse.up()
    page.screenshot(path=str(tmp_path / "editor.png"), full_page=True)
    if os.environ.get("TEMOIN_SCREENSHOTS"):
        page.screenshot(path=os.environ["TEMOIN_SCREENSHOTS"] + "/redaction-editor.png", full_page=True)
    assert [e for e in errors if "favicon" not in e] == []
    page.click("#review-form button[type=submit]:not([name])")
    page.wait_for_load_state()
    assert "Relecture enregistrée" in page.inner_text("main")

    face.refresh_from_db()
    moved = face.keyframes[0]
    assert moved[0] == first[0] and abs(moved[1] - (first[1] + 20)) <= 2 and abs(moved[2] - (first[2] + 10)) <= 2
    assert moved[3:] == first[3:]
    manual = job.tracks.get(kind=Track.Kind.MANUAL)
    (f, x, y, w, h), = manual.keyframes
    assert f == first[0] and abs(x - 270) <= 2 and abs(y - 20) <= 2 and abs(w - 60) <= 3 and abs(h - 50) <= 3
