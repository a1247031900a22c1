"""Maps on the recording, intervention and access-request pages (issue 20): Leaflet bundled from the
locked npm package (`make assets`), tiles from TEMOIN_MAP_TILES (IGN's Géoplateforme by default, empty
for none) allowed by the CSP, and every page still drawn (track, markers, scale) when no tile loads."""
import base64
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

from evidence.disclosure.access_requests import access_request_register
from evidence.interventions.services import intervention_create
from tests.auth import sign_in
from tests.conftest import require_service
from tests.evidence.test_api import make_recording

from ..browser.test_flow import SHOTS, _login, browser  # noqa: F401  (fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "config" / "static" / "vendor" / "leaflet"
T0 = dt.datetime(2026, 12, 1, 21, 30, tzinfo=dt.UTC)
TRACK = [[45.5646 + i * 0.0002, 5.9178 + i * 0.00025, T0.timestamp() + 2 * i] for i in range(8)]
PLACE = [45.5660, 5.9190]
REFERENCE = "PM-2026-0777"
IGN_PLAN = ("https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&STYLE=normal&TILEMATRIXSET=PM&FORMAT=image/png"
            "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}")
TILE_RGB = (236, 226, 198)  # the fake tile's colour, looked for in the screenshots


# --- The bundle: exactly the files of the tarball package-lock.json pins ---------------------------

def _locked_leaflet() -> dict:
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"] == {"leaflet": lock["packages"]["node_modules/leaflet"]["version"]}
    return lock["packages"]["node_modules/leaflet"]


def _sums() -> dict[str, str]:
    lines = (BUNDLE / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def _in_package(name: str) -> str:
    """Where a bundled file comes from in the npm tarball."""
    return "package/LICENSE" if name == "LICENSE" else f"package/dist/{name}"


def _npm_tarball(integrity: str) -> bytes | None:
    """The locked tarball from npm's content-addressed cache (where `npm ci` put it), if there."""
    cache = os.environ.get("npm_config_cache")
    if not cache and shutil.which("npm"):
        cache = subprocess.run(["npm", "config", "get", "cache"], capture_output=True, text=True,
                               timeout=60).stdout.strip()
    digest = base64.b64decode(integrity.removeprefix("sha512-")).hex()
    path = Path(cache or Path.home() / ".npm") / "_cacache" / "content-v2" / "sha512"
    path = path / digest[:2] / digest[2:4] / digest[4:]
    return path.read_bytes() if path.is_file() else None


def test_the_bundle_is_what_make_assets_recorded_from_the_locked_package():
    locked = _locked_leaflet()
    assert (BUNDLE / "SOURCE").read_text(encoding="utf-8").split() == [
        f"leaflet@{locked['version']}", locked["integrity"]]  # the lock moved: run `make assets`
    sums = _sums()
    on_disk = {p.relative_to(BUNDLE).as_posix() for p in BUNDLE.rglob("*") if p.is_file()}
    assert on_disk - {"SOURCE", "SHA256SUMS"} == set(sums), "a file added to or missing from the bundle"
    assert {"leaflet.js", "leaflet.css", "LICENSE", "images/marker-icon.png"} <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((BUNDLE / name).read_bytes()).hexdigest() == digest, f"{name} edited by hand"
    assert not (ROOT / "config" / "static" / "interventions" / "vendor").exists()  # the hand-copied one


def test_the_bundle_is_byte_identical_to_the_locked_tarball():
    locked = _locked_leaflet()
    tarball = _npm_tarball(locked["integrity"])
    if tarball is not None:
        # The lock's integrity is the tarball's SHA-512: this is the very package npm resolved.
        assert "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode() == locked["integrity"]
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            original = {name: tar.extractfile(_in_package(name)).read() for name in _sums()}
    else:
        installed = ROOT / "node_modules" / "leaflet"
        hidden_lock = ROOT / "node_modules" / ".package-lock.json"
        # .ci/run runs `npm ci`: under CI=true a missing install fails instead of skipping.
        require_service("the locked leaflet (npm's cache or node_modules)", hidden_lock.is_file(),
                        "run `npm ci` or `make assets`")
        # `npm ci` checked the tarball against the lock and wrote what it installed here.
        installed_lock = json.loads(hidden_lock.read_text())["packages"]["node_modules/leaflet"]
        assert installed_lock["integrity"] == locked["integrity"]
        original = {name: (installed / _in_package(name).removeprefix("package/")).read_bytes() for name in _sums()}
    for name, content in original.items():
        assert (BUNDLE / name).read_bytes() == content, f"{name} differs from leaflet@{locked['version']}"


# --- Settings and CSP ------------------------------------------------------------------------------

def _settings_with(**environ) -> dict:
    """TEMOIN_MAP_* and the CSP's img-src as config/settings.py reads them from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMOIN_MAP_")} | environ
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps([s.TEMOIN_MAP_TILES, s.TEMOIN_MAP_ATTRIBUTION, "
            "s.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']]))")
    out = subprocess.run([sys.executable, "-c", code], env=env | {"DJANGO_SETTINGS_MODULE": "config.settings"},
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=True).stdout
    tiles, attribution, img_src = json.loads(out.strip().splitlines()[-1])
    return {"tiles": tiles, "attribution": attribution, "img-src": img_src}


def test_the_tile_source_comes_from_the_environment_and_the_csp_follows_its_origin():
    default = _settings_with()
    assert default["tiles"] == IGN_PLAN and "IGN" in default["attribution"]
    assert default["img-src"] == ["'self'", "data:", "blob:", "https://data.geopf.fr"]

    own = _settings_with(TEMOIN_MAP_TILES="https://tuiles.mairie.example:8443/plan/{z}/{x}/{y}.png",
                         TEMOIN_MAP_ATTRIBUTION="© Ville")
    assert (own["tiles"], own["attribution"]) == ("https://tuiles.mairie.example:8443/plan/{z}/{x}/{y}.png", "© Ville")
    assert own["img-src"] == ["'self'", "data:", "blob:", "https://tuiles.mairie.example:8443"]

    subdomains = _settings_with(TEMOIN_MAP_TILES="https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert subdomains["img-src"][-1] == "https://*.tile.example.org" and subdomains["attribution"] == ""

    none = _settings_with(TEMOIN_MAP_TILES="")
    assert none["tiles"] == "" and none["img-src"] == ["'self'", "data:", "blob:"]  # no outside origin at all

    former = _settings_with(TEMOIN_MAP_TILES_URL="https://osm.example.net/{z}/{x}/{y}.png")
    assert former["tiles"] == "https://osm.example.net/{z}/{x}/{y}.png"
    assert former["img-src"][-1] == "https://osm.example.net"


# --- The three pages, server side ------------------------------------------------------------------

def _map_data(html: str, name: str = "place-map-data") -> dict | None:
    found = re.search(rf'<script id="{name}" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(found.group(1)) if found else None


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="/static/([^"]+\.(?:js|css))"', html)


@pytest.fixture
def tracked(camera, officer):
    return make_recording(camera=camera, wearer=officer, started_at=T0, track=TRACK, location=None)


@pytest.fixture
def intervention(tracked, officer):
    from django.db import transaction

    with transaction.atomic():
        return intervention_create(by=officer, reference=REFERENCE, recordings=[tracked], place="place du Palais")


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


def test_the_three_pages_use_the_bundle_and_the_configured_tiles(
        tracked, intervention, officer, camera, access_request, settings):
    settings.TEMOIN_MAP_TILES = "https://tuiles.example.fr/{z}/{x}/{y}.png"
    settings.TEMOIN_MAP_ATTRIBUTION = "© Tuiles d'exemple"
    dpo, ar = access_request
    pages = {
        "recording": sign_in(Client(), officer).get(f"/enregistrements/{tracked.pk}/").content.decode(),
        "intervention": sign_in(Client(), officer).get(f"/interventions/{REFERENCE}/").content.decode(),
        "access request": sign_in(Client(), dpo).get(f"/demandes-acces/{ar.pk}/").content.decode(),
    }
    data = _map_data(pages["recording"])
    assert data["track"] == [p[:2] for p in TRACK] and data["location"] is None
    place = _map_data(pages["access request"])
    assert (place["place"], place["radius"]) == (PLACE, 150)
    iv = _map_data(pages["intervention"], "iv-data")
    assert [r["track"] for r in iv["recordings"]] == [TRACK]
    for name, html in pages.items():
        data = _map_data(html) or _map_data(html, "iv-data")
        assert data["tiles"] == "https://tuiles.example.fr/{z}/{x}/{y}.png", name
        assert data["attribution"] == "© Tuiles d'exemple", name
        assets = _assets(html)
        assert {"vendor/leaflet/leaflet.js", "vendor/leaflet/leaflet.css", "maps/background.js"} <= set(assets), name
        assert not [a for a in assets if "leaflet" in a and not a.startswith("vendor/leaflet/")], name
        assert all(finders.find(a) for a in assets), name  # every script and stylesheet is really served
        assert 'data-tiles-failed="Fond de carte indisponible"' in html, name
        # Leaflet before what uses it (the scripts are deferred: document order is execution order).
        assert assets.index("vendor/leaflet/leaflet.js") < assets.index("maps/background.js")

    nowhere = make_recording(camera=camera, wearer=officer, location=None, track=None)
    page = sign_in(Client(), officer).get(f"/enregistrements/{nowhere.pk}/").content.decode()
    assert _map_data(page) is None and 'id="place-map"' not in page  # nothing to place: no empty map


def test_the_csp_of_a_page_lets_the_configured_tile_server_in_and_nothing_more(tracked, officer, settings):
    response = sign_in(Client(), officer).get(f"/enregistrements/{tracked.pk}/")
    policy = dict(d.strip().split(" ", 1) for d in response["Content-Security-Policy"].split(";") if d.strip())
    tiles = urlsplit(settings.TEMOIN_MAP_TILES)
    assert f"{tiles.scheme}://{tiles.netloc}" in policy["img-src"].split()
    for directive in ("script-src", "connect-src", "style-src", "default-src"):
        assert tiles.netloc not in policy[directive]


# --- The three pages in Chromium -------------------------------------------------------------------

def _fake_tile() -> bytes:
    from PIL import Image, ImageDraw

    tile = Image.new("RGB", (256, 256), TILE_RGB)
    ImageDraw.Draw(tile).rectangle([0, 0, 255, 255], outline=(190, 180, 160))
    out = io.BytesIO()
    tile.save(out, format="PNG")
    return out.getvalue()


def _tile_pattern(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for name, rx in (("z", r"(?P<z>\d+)"), ("x", r"(?P<x>\d+)"), ("y", r"(?P<y>\d+)"), ("s", r"[a-z0-9]+")):
        pattern = pattern.replace(re.escape("{" + name + "}"), rx)
    return re.compile(f"^{pattern}$")


def _tile_share(page, selector: str) -> float:
    """The share of the map's pixels painted with the fake tile's colour."""
    from PIL import Image

    shot = Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")
    colours = shot.getcolors(shot.width * shot.height)
    painted = sum(n for n, rgb in colours if max(abs(a - b) for a, b in zip(rgb, TILE_RGB)) <= 3)
    return painted / (shot.width * shot.height)


def _visit(page, url: str, selector: str, track: str, marker: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"{selector} path.{track}")
    assert page.locator(f"{selector}.leaflet-container").count() == 1
    assert page.locator(f"{selector} path.{marker}").count() >= 1
    box = page.locator(f"{selector} path.{track}").first.bounding_box()
    assert box["width"] > 20 and box["height"] > 20  # fitted to the track, not a dot
    scale = page.locator(f"{selector} .leaflet-control-scale-line")
    assert scale.count() == 1 and re.fullmatch(r"\d+ k?m", scale.inner_text().strip())


PAGES = [  # (path, map element, the drawn shape, the marker, screenshot)
    ("recording", "#place-map", "map-track", "map-marker", "recording-map.png"),
    ("intervention", "#iv-map", "iv-track", "iv-marker", "intervention-map.png"),
    ("access request", "#place-map", "map-area", "map-marker", "access-request-map.png"),
]


def _urls(base, tracked, ar) -> dict:
    return {"recording": f"{base}/enregistrements/{tracked.pk}/", "intervention": f"{base}/interventions/{REFERENCE}/",
            "access request": f"{base}/demandes-acces/{ar.pk}/"}


def _open(browser, live_server, user):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
    page.failures = []
    page.on("pageerror", lambda exc: page.failures.append(str(exc)))
    _login(page, live_server.url, user.username)
    return page


def test_tiles_are_fetched_from_the_configured_source_and_drawn_on_the_three_pages(
        browser, live_server, tracked, intervention, officer, access_request, settings):  # noqa: F811
    template = settings.TEMOIN_MAP_TILES
    assert template, "this test needs a tile source (the default is IGN's)"
    pattern, tile, requested = _tile_pattern(template), _fake_tile(), []

    def serve(route):
        requested.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=tile)

    dpo, ar = access_request
    urls = _urls(live_server.url, tracked, ar)
    for name, selector, track, marker, shot in PAGES:
        page = _open(browser, live_server, dpo if name == "access request" else officer)
        # The tile server, played by Playwright: any request matching the configured template gets the fake tile.
        page.route(lambda url: bool(pattern.match(url)), serve)
        del requested[:]
        _visit(page, urls[name], selector, track, marker)
        page.wait_for_function(f"() => document.querySelectorAll('{selector} img.leaflet-tile-loaded').length >= 4")
        page.wait_for_timeout(300)  # Leaflet's fade-in
        assert requested and all(pattern.match(u) for u in requested)
        zooms = {int(pattern.match(u)["z"]) for u in requested}
        assert zooms and all(13 <= z <= 19 for z in zooms), zooms  # around the track, not the world
        assert page.evaluate(f"""() => [...document.querySelectorAll('{selector} img.leaflet-tile-loaded')]
                                 .every(i => i.complete && i.naturalWidth === 256)""")
        assert _tile_share(page, selector) > 0.5, name  # the background is the tiles
        assert settings.TEMOIN_MAP_ATTRIBUTION in page.inner_text(f"{selector} .leaflet-control-attribution")
        assert "indisponible" not in page.inner_text(f"{selector} .leaflet-control-attribution")
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / shot), full_page=True)
        assert page.failures == []
        page.close()


def test_with_every_tile_refused_the_three_maps_still_show_track_markers_and_scale(
        browser, live_server, tracked, intervention, officer, access_request, settings):  # noqa: F811
    pattern, aborted = _tile_pattern(settings.TEMOIN_MAP_TILES), []
    dpo, ar = access_request
    urls = _urls(live_server.url, tracked, ar)
    for name, selector, track, marker, _shot in PAGES:
        page = _open(browser, live_server, dpo if name == "access request" else officer)
        page.route(lambda url: bool(pattern.match(url)), lambda route: (aborted.append(route.request.url),
                                                                       route.abort()))
        _visit(page, urls[name], selector, track, marker)
        page.wait_for_function(f"() => document.querySelector('{selector}').classList.contains('map-tiles-failed')")
        assert "Fond de carte indisponible" in page.inner_text(f"{selector} .leaflet-control-attribution")
        assert page.locator(f"{selector} img.leaflet-tile-loaded").count() == 0
        assert _tile_share(page, selector) == 0
        assert page.failures == [], name
        page.close()
    assert aborted  # the tiles were asked for, and refused


def test_with_no_tile_source_no_request_leaves_for_a_tile_server(
        browser, live_server, tracked, intervention, officer, access_request, settings):  # noqa: F811
    settings.TEMOIN_MAP_TILES = ""
    dpo, ar = access_request
    urls = _urls(live_server.url, tracked, ar)
    for name, selector, track, marker, _shot in PAGES:
        page = _open(browser, live_server, dpo if name == "access request" else officer)
        elsewhere = []
        page.on("request", lambda r: None if r.url.startswith(live_server.url) else elsewhere.append(r.url))
        _visit(page, urls[name], selector, track, marker)
        assert page.locator(f"{selector} img.leaflet-tile").count() == 0
        assert "Sans fond de carte" in page.inner_text(f"{selector} .leaflet-control-attribution")
        assert elsewhere == [] and page.failures == [], name
        page.close()
