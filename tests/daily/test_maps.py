"""Maps on the recording and access-request pages (issue 20): the vendored Leaflet, tiles from
TEMOIN_MAP_TILES_URL, and the page still drawn when no tile server answers."""
import datetime as dt
import json
import re

import pytest
from django.test import Client
from django.utils import timezone

from evidence.disclosure.access_requests import access_request_register
from tests.auth import sign_in
from tests.evidence.test_api import make_recording

from ..browser.test_flow import SHOTS, _login, browser  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]

T0 = dt.datetime(2026, 12, 1, 21, 30, tzinfo=dt.UTC)
TRACK = [[45.5646 + i * 0.0002, 5.9178 + i * 0.00025, T0.timestamp() + 2 * i] for i in range(8)]
PLACE = [45.5660, 5.9190]


def _map_data(html: str) -> dict | None:
    found = re.search(r'<script id="place-map-data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1)) if found else None


@pytest.fixture
def tracked(camera, officer):
    return make_recording(camera=camera, wearer=officer, started_at=T0, track=TRACK, location=None)


@pytest.fixture
def access_request(make_user):
    dpo = make_user("dpo.moreau", role="dpo")
    from django.db import transaction

    with transaction.atomic():
        ar = access_request_register(by=dpo, requester_name="Mme Requérante", identity_checked=True,
                                     identity_check_method="carte d'identité", received_on=timezone.localdate(),
                                     description="Contrôle place du Palais de justice", place=PLACE, radius_m=150,
                                     window_start=T0 - dt.timedelta(hours=1), window_end=T0 + dt.timedelta(hours=1))
    return dpo, ar


def test_the_recording_page_carries_its_track_and_the_access_request_page_its_place(
        tracked, officer, camera, access_request, settings):
    settings.TEMOIN_MAP_TILES_URL = "https://tuiles.example.fr/{z}/{x}/{y}.png"
    page = sign_in(Client(), officer).get(f"/enregistrements/{tracked.pk}/").content.decode()
    data = _map_data(page)
    assert data["track"] == [p[:2] for p in TRACK] and data["location"] is None
    assert data["tiles"] == "https://tuiles.example.fr/{z}/{x}/{y}.png"
    assert 'id="place-map"' in page and "leaflet-1.9.4/leaflet.js" in page

    nowhere = make_recording(camera=camera, wearer=officer, location=None, track=None)
    page = sign_in(Client(), officer).get(f"/enregistrements/{nowhere.pk}/").content.decode()
    assert _map_data(page) is None and 'id="place-map"' not in page  # nothing to place: no empty map

    dpo, ar = access_request
    page = sign_in(Client(), dpo).get(f"/demandes-acces/{ar.pk}/").content.decode()
    data = _map_data(page)
    assert (data["place"], data["radius"]) == (PLACE, 150)


def test_the_maps_are_drawn_without_a_tile_server(browser, live_server, tracked, officer, access_request):  # noqa: F811
    base = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
    failures = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    # No tile server: every tile request fails; the track, the marker and the circle must still be drawn.
    page.route("**/*.openstreetmap.fr/**", lambda route: route.abort())
    _login(page, base, officer.username)
    page.goto(f"{base}/enregistrements/{tracked.pk}/")
    page.wait_for_selector("#place-map path.map-track")
    assert page.locator("#place-map.leaflet-container").count() == 1
    assert page.locator("#place-map path.map-track").count() == 1
    assert page.locator("#place-map path.map-marker").count() == 1
    box = page.locator("#place-map path.map-track").bounding_box()
    assert box["width"] > 20 and box["height"] > 20  # fitted to the track, not a dot
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "recording-map.png"), full_page=True)

    page.context.clear_cookies()
    dpo, ar = access_request
    _login(page, base, dpo.username)
    page.goto(f"{base}/demandes-acces/{ar.pk}/")
    page.wait_for_selector("#place-map path.map-area")
    assert page.locator("#place-map path.map-area").count() == 1
    assert page.locator("#place-map path.map-marker").count() == 1
    page.screenshot(path=str(SHOTS / "access-request-map.png"), full_page=True)
    assert failures == []
