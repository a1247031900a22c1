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


def test_a_face_left_on_the_copy_is_shown_and_covered_in_one_click_then_approval_follows_the_player(
        browser, live_server, make_volume, carphone_clip, camera, make_user, local_store):  # noqa: F811
    """Issues 15/16 through the pages: the face's track dropped in a full anonymisation, the copy's
    second look lists the frames, « Flouter ces visages » opens the editor on them; the new copy
    passes; the approver plays it through in the browser, and only then may approve it."""
    from evidence.redaction import services
    from evidence.redaction.models import Derivative

    from .helpers import render

    chef = make_user("chef.durand", role="supervisor")
    legal = make_user("juriste.petit", role="legal")
    rec = offload_clip(make_volume, carphone_clip)
    job = analysed_job(rec, chef, mode="all")
    services.redaction_review_save(job=job, by=chef, decisions={
        t.number: {"kept": False} for t in job.tracks.filter(kind=Track.Kind.FACE)})
    leaky = render(job, chef)
    assert leaky.check_passed is False
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
    _login(page, base, chef.username)
    page.goto(f"{base}/floutage/{job.pk}/")
    assert "un visage reste reconnaissable" in page.inner_text(f"#second-look-{leaky.pk}")
    first = leaky.second_look["ranges"][0][0]
    assert page.locator(f"#second-look-{leaky.pk} a[href$='?image={first}']").count() == 1
    page.click(f"#second-look-{leaky.pk} button[type=submit]")
    page.wait_for_load_state()
    assert f"/floutage/{job.pk}/editeur/?image={first}" in page.url
    page.select_option("#id_motif_choice", index=1)
    page.click("form[action$='/consultation/'] button[type=submit]")
    page.goto(f"{base}/floutage/{job.pk}/editeur/?image={first}")
    page.wait_for_function("() => document.getElementById('frame-label').textContent.startsWith('image %d ')" % first)
    page.click("#review-form button[name=then]")
    page.wait_for_load_state()
    fixed = Derivative.objects.exclude(pk=leaky.pk).get(job=job)
    assert fixed.check_passed is True

    approver = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
    _login(approver, base, legal.username)
    approver.goto(f"{base}/floutage/{job.pk}/")
    approver.select_option("#id_motif_choice", index=1)
    approver.click("form[action$='/consultation/'] button[type=submit]")
    approver.wait_for_load_state()
    approver.click(f"form[action$='/copies/{fixed.pk}/approbation/'] button[type=submit]")
    approver.wait_for_load_state()
    assert "visionnez la copie en entier" in approver.inner_text("main")
    # Play it through, at 4× speed (the report counts the seconds of video actually played).
    approver.evaluate("""() => { const v = document.querySelector('video.redacted-copy[data-watched-url$="/%d/visionnage/"]');
                                 v.muted = true; v.playbackRate = 4; return v.play(); }""" % fixed.pk)
    approver.wait_for_function("() => document.getElementById('watched-%d').textContent.includes('en entier.')"
                               % fixed.pk, timeout=30000)
    assert fixed.viewings.get(user=legal).coverage >= 0.95
    approver.click(f"form[action$='/copies/{fixed.pk}/approbation/'] button[type=submit]")
    approver.wait_for_load_state()
    assert "Copie floutée approuvée" in approver.inner_text("main")
    fixed.refresh_from_db()
    assert fixed.approved_by == legal
    assert CustodyEvent.objects.filter(action="redaction.approval_refused", actor=legal).count() == 1
