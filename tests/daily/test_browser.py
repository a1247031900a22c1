"""Issue 20 in headless Chromium, desktop (1366 px) and phone (390 px): what a municipal user hit first.

The officer's pages on a phone without sideways scrolling, the inclusive date filter, a form that
keeps what was typed after a refusal, a hold shown on the recording, and a keyboard path that
starts with the skip link. Screenshots of the pages changed go to docs/screenshots/.
"""
import datetime as dt
import zoneinfo

import pytest

from evidence.models import Recording

from ..browser.test_flow import SHOTS, _login, browser  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def paris(*args):
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.fixture
def day_of_work(officer, make_user, make_camera, make_recording, local_store):
    """Five recordings on 6 December 2026 (Paris), one each side of that day, two left untagged."""
    officer.first_name, officer.last_name = "Julie", "Martin"
    officer.save()
    cam = make_camera("BWC-0042", officer=officer)
    day = [make_recording(cam, paris(2026, 12, 6, h, m), 300 + 60 * h, wearer=officer, tagged=h % 2 == 0,
                          intervention=f"PM-2026-{400 + h}") for h, m in ((0, 15), (9, 30), (14, 0), (18, 45), (23, 40))]
    make_recording(cam, paris(2026, 12, 5, 23, 50), wearer=officer)
    make_recording(cam, paris(2026, 12, 7, 0, 5), wearer=officer)
    return {"cam": cam, "day": day}


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_officers_pages_fit_a_phone_without_sideways_scrolling(browser, live_server, officer,  # noqa: F811
                                                                   day_of_work):
    page = browser.new_page(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    base = live_server.url
    _login(page, base, officer.username)
    rec = day_of_work["day"][1]
    for path, shot in (("/", "phone-recordings.png"), (f"/enregistrements/{rec.pk}/", "phone-recording.png"),
                       ("/a-completer/", "phone-to-complete.png"), ("/tableau-de-bord/", None),
                       ("/interventions/", None)):
        page.goto(base + path)
        assert _no_sideways_scroll(page), (path, page.evaluate("document.documentElement.scrollWidth"))
        if shot:
            page.screenshot(path=str(SHOTS / shot), full_page=True)

    # The list starts with the recordings as cards; the filters wait behind their button.
    page.goto(base + "/")
    assert not page.locator("details.filters-box").evaluate("d => d.open")
    assert not page.locator("#id_camera").is_visible()
    first_card = page.locator("table.cards tbody tr").first
    assert first_card.evaluate("tr => getComputedStyle(tr).display") == "block"
    labels = first_card.locator("td").evaluate_all("tds => tds.map(td => getComputedStyle(td, '::before').content)")
    assert '"Agent porteur"' in labels and '"Conservation"' in labels  # each value says what it is
    page.click("details.filters-box > summary")
    assert page.locator("#id_camera").is_visible()
    page.fill("#id_camera", "0042")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("table.cards tbody tr").count() == 7
    assert _no_sideways_scroll(page)


def test_the_until_date_includes_the_whole_day_in_the_browser(browser, live_server, officer, day_of_work):  # noqa: F811
    page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
    _login(page, live_server.url, officer.username)
    page.goto(live_server.url + "/")
    page.fill("#id_started_after", "2026-12-06")
    page.fill("#id_started_before", "2026-12-06")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()

    shown = {int(h.split("/")[-2]) for h in page.locator("table.cards tbody a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))")}
    assert shown == {r.pk for r in day_of_work["day"]}
    assert page.input_value("#id_started_before") == "2026-12-06"  # the filter shown as typed
    assert "Jusqu'au (inclus)" in page.inner_text("form.filters")
    page.screenshot(path=str(SHOTS / "recordings.png"), full_page=True)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_refused_tagging_keeps_what_was_typed(browser, live_server, officer, day_of_work, viewport):  # noqa: F811
    page = browser.new_page(viewport=viewport, locale="fr-FR")
    _login(page, live_server.url, officer.username)
    rec = day_of_work["day"][1]  # untagged
    page.goto(f"{live_server.url}/a-completer/")
    page.select_option(f"#tr-{rec.pk}", "risk_of_incident")
    page.locator(f"form.tagform:has(#tr-{rec.pk}) input[name=subject_notified][value=false]").check()
    page.fill(f"#in-{rec.pk}", "PM-2026-999")
    page.locator(f"form.tagform:has(#tr-{rec.pk}) button[type=submit]").click()
    page.wait_for_load_state()

    assert "indiquez pourquoi les personnes filmées" in page.inner_text("main")
    assert page.input_value(f"#tr-{rec.pk}") == "risk_of_incident"
    assert page.locator(f"form.tagform:has(#tr-{rec.pk}) input[name=subject_notified][value=false]").is_checked()
    assert page.input_value(f"#in-{rec.pk}") == "PM-2026-999"
    rec.refresh_from_db()
    assert rec.trigger_reason == ""  # nothing saved until the reason is given
    page.fill(f"#nr-{rec.pk}", "individu en fuite")
    page.locator(f"form.tagform:has(#tr-{rec.pk}) button[type=submit]").click()
    page.wait_for_load_state()
    rec.refresh_from_db()
    assert (rec.trigger_reason, rec.subject_notified, rec.intervention) == ("risk_of_incident", False, "PM-2026-999")
    if viewport is PHONE:
        assert _no_sideways_scroll(page)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_hold_is_shown_on_the_recording_and_in_the_holds_page(browser, live_server, make_user, day_of_work,  # noqa: F811
                                                                 viewport):
    make_user("chef.bernard", role="supervisor")
    rec = day_of_work["day"][0]
    page = browser.new_page(viewport=viewport, locale="fr-FR")
    _login(page, live_server.url, "chef.bernard")
    page.goto(f"{live_server.url}/enregistrements/{rec.pk}/")
    assert "Effacement suspendu" not in page.inner_text("main")
    page.select_option("#id_procedure", "judicial")
    page.fill("#id_reference", "PV 2026/1234")
    page.fill("#id_motif", "Réquisition du parquet")
    page.click("text=Conserver pour procédure")
    page.wait_for_load_state()

    suspended = page.locator("#effacement-suspendu")
    assert "Effacement suspendu" in suspended.inner_text()
    assert "PV 2026/1234" in suspended.inner_text() and "Réquisition du parquet" in suspended.inner_text()
    if viewport is PHONE:
        assert _no_sideways_scroll(page)
    else:
        page.screenshot(path=str(SHOTS / "recording-held.png"), full_page=True)
    page.click("nav >> text=Conservations en cours")
    assert "PV 2026/1234" in page.inner_text("main")
    if viewport is DESKTOP:
        page.screenshot(path=str(SHOTS / "holds.png"), full_page=True)
    page.goto(f"{live_server.url}/?hold=held")
    assert page.locator("table.cards tbody tr").count() == 1
    assert "PV 2026/1234" in page.locator("table.cards tbody tr").inner_text()


def test_the_keyboard_reaches_the_first_recording_through_the_skip_link(browser, live_server, officer,  # noqa: F811
                                                                        day_of_work):
    page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
    _login(page, live_server.url, officer.username)
    page.goto(live_server.url + "/?sort=started_at")

    page.keyboard.press("Tab")
    focused = page.evaluate("({text: document.activeElement.textContent.trim(), visible: "
                            "document.activeElement.getBoundingClientRect().top >= 0})")
    assert focused == {"text": "Aller au contenu", "visible": True}
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "resultats"  # on the list: straight to the recordings
    first = Recording.objects.order_by("started_at").first()
    for presses in range(1, 40):  # the sort links of the columns, then the first row
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == f"/enregistrements/{first.pk}/":
            break
    assert presses <= 8, presses
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/enregistrements/{first.pk}/")


def test_the_skip_link_leads_to_the_content_on_other_pages(browser, live_server, officer, day_of_work):  # noqa: F811
    page = browser.new_page(viewport=PHONE, locale="fr-FR")
    _login(page, live_server.url, officer.username)
    page.goto(live_server.url + "/a-completer/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Aller au contenu"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "contenu"


def test_batch_tagging_with_thumbnails_on_a_real_offloaded_clip(browser, live_server, make_volume,  # noqa: F811
                                                                 clip_library, camera, officer, local_store):
    from audit.models import CustodyEvent

    from ..evidence.helpers import run_offload

    volume = make_volume("BWC-0042", {"DCIM/CLIP0001.MP4": clip_library["h264"],
                                       "DCIM/CLIP0002.MP4": clip_library["h264_noaudio"]})
    assert run_offload(volume)[0] == 0
    recs = list(Recording.objects.order_by("pk"))
    assert len(recs) == 2 and all(r.to_complete and r.poster_key for r in recs)
    page = browser.new_page(viewport=PHONE, locale="fr-FR")
    _login(page, live_server.url, officer.username)
    page.goto(f"{live_server.url}/a-completer/")
    assert page.locator("img.thumb").count() == 0  # no image before the logged consultation

    page.click("text=Afficher les vignettes")
    page.wait_for_load_state()
    page.wait_for_function("() => [...document.querySelectorAll('img.thumb')].every(i => i.complete && i.naturalWidth > 0)"
                           " && document.querySelectorAll('img.thumb').length === 2", timeout=20000)
    assert CustodyEvent.objects.filter(action="recording.consulted", motif__contains="vignettes").count() == 2
    assert _no_sideways_scroll(page)
    page.screenshot(path=str(SHOTS / "phone-to-complete-thumbnails.png"), full_page=True)

    for r in recs:
        page.check(f"input[name=ids][value='{r.pk}']")
    page.select_option("#bt-tr", "incident")
    page.locator("#batch-tag input[name=subject_notified][value=true]").check()
    page.click("text=Qualifier la sélection")
    page.wait_for_load_state()

    assert "2 enregistrement(s) qualifié(s)" in page.inner_text("main")
    assert [(r.trigger_reason, r.subject_notified) for r in Recording.objects.order_by("pk")] == [("incident", True)] * 2
    assert CustodyEvent.objects.filter(action="recording.tagged").count() == 2
