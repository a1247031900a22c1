"""The intervention page in headless Chromium (issue #21): three cameras of one intervention whose
clocks disagree by a few seconds, one motif, one clock for the three players, the map's tracks."""
import datetime as dt
import json

import pytest
from django.db import transaction

from audit.models import CustodyEvent
from devices.services import camera_assign, camera_register
from evidence.integrations import ffmpeg
from evidence.models import InterventionLink, Recording
from tests.browser.test_flow import SHOTS, _login, browser  # noqa: F401
from tests.evidence.helpers import run_offload

pytestmark = [pytest.mark.django_db(transaction=True)]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 20, 21, 14, tzinfo=UTC)
REFERENCE = "PM-2026-0500"
# Where each camera's clock put the start of the same scene: B's clock is 3 s fast, C's 2 s slow.
STARTS = {"BWC-0042": 0.0, "BWC-0051": 3.0, "BWC-0052": -2.0}


def _track(start: dt.datetime, lat: float, lon: float) -> list:
    return [[lat + i * 0.0001, lon + i * 0.00012, start.timestamp() + i * 2] for i in range(6)]


@pytest.fixture
def scene(tmp_path, make_volume, camera, officer, make_user, org, local_store):
    others = [make_user("agent.durand", matricule="M043"), make_user("agent.petit", matricule="M044")]
    with transaction.atomic():
        cams = {"BWC-0042": (camera, officer)}
        for serial, wearer in zip(["BWC-0051", "BWC-0052"], others):
            cam = camera_register(serial=serial, organisation=org, model="Demo")
            camera_assign(camera=cam, officer=wearer, starts_at=T0 - dt.timedelta(days=3))
            cams[serial] = (cam, wearer)
    clip = ffmpeg.synthesize_clip(tmp_path / "scene.mp4", seconds=10, creation_time=T0)
    for n, (serial, shift) in enumerate(STARTS.items()):
        start = T0 + dt.timedelta(seconds=shift)
        sidecar = {"started_at": start.isoformat(), "ended_at": (start + dt.timedelta(seconds=10)).isoformat(),
                   "officer": cams[serial][1].matricule, "intervention": REFERENCE, "trigger_reason": "incident",
                   "subject_notified": True, "track": _track(start, 45.5646 + n * 0.0003, 5.9178)}
        volume = make_volume(serial, {"DCIM/CLIP0001.MP4": clip}, {"DCIM/CLIP0001.json": json.dumps(sidecar).encode()})
        assert run_offload(volume)[0] == 0
    assert InterventionLink.objects.filter(intervention__reference=REFERENCE).count() == 3
    assert set(Recording.objects.values_list("status", flat=True)) == {Recording.Status.READY}
    return cams


def _offsets(page) -> list[dict]:
    return page.evaluate("""() => window.temoinIntervention.videos.map(v => ({
        id: +v.dataset.recording, offset: +v.dataset.offset, current: v.currentTime, seeking: v.seeking,
        clock: window.temoinIntervention.time()}))""")


def test_three_cameras_play_on_one_clock_after_seeking_and_the_map_draws_their_tracks(
        browser, live_server, scene, make_user):  # noqa: F811
    chef = make_user("chef", role="supervisor", matricule="S001")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    # No network in tests: map tiles (IGN's by default) fail to load; the tracks must still be drawn.
    page.route("https://data.geopf.fr/**", lambda route: route.abort())
    base = live_server.url
    _login(page, base, chef.username)

    page.goto(f"{base}/interventions/{REFERENCE}/")
    assert REFERENCE in page.inner_text("h1")
    assert page.locator(".iv-clip").count() == 3
    # C's camera was 2 s slow: the supervisor corrects it (logged), the shared clock follows.
    page.select_option("#id_camera", "BWC-0052")
    page.fill("#id_seconds", "2")
    page.fill("#id_motif", "horloge de la caméra en retard de 2 s (comparaison des images)")
    page.click("form[action$='/horloge/'] button[type=submit]")
    page.wait_for_load_state()
    assert CustodyEvent.objects.filter(action="intervention.clock_corrected").count() == 1

    # One motif, three consultations.
    page.select_option("#id_motif_choice", index=2)
    page.fill("#id_motif_detail", "revue de l'intervention")
    page.click("form[action$='/consultation/'] button[type=submit]")
    page.wait_for_function("() => window.temoinIntervention && window.temoinIntervention.videos.length === 3 && "
                           "window.temoinIntervention.videos.every(v => v.readyState >= 1)", timeout=30000)
    assert CustodyEvent.objects.filter(action="recording.consulted").count() == 3
    offsets = {o["id"]: o["offset"] for o in _offsets(page)}
    by_camera = {r.camera.serial: r.pk for r in Recording.objects.select_related("camera")}
    # A at 0 s, B 3 s later, C corrected from −2 s to 0 s.
    assert offsets == {by_camera["BWC-0042"]: 0.0, by_camera["BWC-0051"]: 3.0, by_camera["BWC-0052"]: 0.0}

    for clock in (6.5, 2.25, 11.8, 4.0):
        # Seek with the shared clock's slider, as a user drags it.
        page.evaluate("(t) => { const s = document.getElementById('iv-clock'); s.value = t; "
                      "s.dispatchEvent(new Event('input', {bubbles: true})); }", clock)
        page.wait_for_function("() => window.temoinIntervention.videos.every(v => !v.seeking && v.readyState >= 2)",
                               timeout=20000)
        for o in _offsets(page):
            expected = min(max(clock - o["offset"], 0.0), 10.0)
            assert abs(o["clock"] - clock) < 1e-6
            assert abs(o["current"] - expected) < 0.1, (clock, o)

    # Playing then pausing leaves every player on the shared clock again.
    page.click("#iv-play")
    page.wait_for_function("() => window.temoinIntervention.time() > 4.3", timeout=20000)
    page.click("#iv-play")
    page.wait_for_function("() => window.temoinIntervention.videos.every(v => !v.seeking && v.paused)",
                           timeout=20000)
    for o in _offsets(page):
        assert abs(o["current"] - min(max(o["clock"] - o["offset"], 0.0), 10.0)) < 0.1, o

    # The map: three tracks drawn without tiles, one marker per camera moving with the clock.
    assert page.locator("path.iv-track").count() == 3
    assert page.locator("path.iv-marker").count() == 3
    before = page.evaluate("window.temoinIntervention.markers()")
    page.evaluate("window.temoinIntervention.seek(8)")
    after = page.evaluate("window.temoinIntervention.markers()")
    assert all(a != b for a, b in zip(before, after))

    page.evaluate("window.temoinIntervention.seek(5)")
    page.wait_for_function("() => window.temoinIntervention.videos.every(v => !v.seeking && v.readyState >= 2)",
                           timeout=20000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "interventions.png"), full_page=True)
