"""Explicit hostile inputs: path traversal, oversized bodies, malformed Range headers, forged,
expired and other people's media URLs, the other organisation's ids. No server error, nothing of
the other organisation, a clear message each time."""
from __future__ import annotations

import datetime as dt
import io
import json
import os

import pytest
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.auth import sign_in

from .conftest import FOREIGN_MARKERS, ROLES, api_client, assert_no_foreign_data, examples

pytestmark = pytest.mark.django_db(transaction=True)

NO_5XX = "no 5xx"
NO_LEAK = "nothing of the other organisation"
MESSAGE = "a clear message"


def _consult(user, recording) -> str:
    response = api_client(user).post(f"/api/recordings/{recording.pk}/consultations/", {"motif": "contrôle"},
                                      format="json")
    assert response.status_code == 201, response.content
    return response.json()["media_url"].replace("http://testserver", "")


def _text(response) -> str:
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return body.decode("utf-8", "replace")


# --- Media URLs ------------------------------------------------------------------------------------

def test_forged_expired_and_other_peoples_media_urls_are_404_with_a_message(world, reliability):
    from evidence.access.services import consultation_open

    officer, supervisor = world.users["officer"], world.users["supervisor"]
    url = _consult(officer, world.recording)
    token = url.split("/")[3]
    expired, expired_token = consultation_open(recording=world.recording, by=officer, motif="ancien",
                                                        now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    foreign_url = _consult(world.foreign_user, world.foreign_recording)
    cases = {
        "forged token": (officer, "/media/c/" + "A" * 43 + "/video"),
        "token with one character changed": (officer, url.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))),
        "expired consultation": (officer, f"/media/c/{expired_token}/video"),
        "another user's link (same organisation)": (supervisor, url),
        "the other organisation's link": (officer, foreign_url),
        "the other organisation's link, poster": (officer, foreign_url.replace("/video", "/poster")),
        "no credentials": (None, url),
        "empty token": (officer, "/media/c/%20/video"),
    }
    reliability.describe(category="Hostile input", title="Media URLs: forged, expired, another user's, another "
                                                           "organisation's", how="; ".join(cases), unit="case",
                         count=len(cases), invariants=[NO_5XX, NO_LEAK, "404 that says nothing about the recording",
                                                       MESSAGE])
    for name, (user, target) in cases.items():
        response = api_client(user).get(target)
        assert response.status_code == 404, (name, response.status_code)
        assert _text(response).strip(), name
        assert_no_foreign_data(response)
    if "lien de consultation inconnu ou expiré" not in _text(api_client(officer).get(cases["forged token"][1])):
        reliability.finding("the 404 page is Django's generic English page: the view's French message "
                            "(« lien de consultation inconnu ou expiré ») is not shown — no templates/404.html")
    assert api_client(officer).get(url).status_code == 200  # the genuine link still works


def test_a_media_url_naming_an_unknown_part_is_a_404(world, reliability):
    officer = world.users["officer"]
    url = _consult(officer, world.recording)
    parts = ["audio", "..", "video.mp4", "%2e%2e", "VIDEO", "original"]
    reliability.describe(category="Hostile input", title="Media URLs: traversal and unknown parts",
                         how="a live consultation token with parts " + ", ".join(parts), unit="case",
                         count=len(parts), invariants=[NO_5XX, "404 with a message"])
    for part in parts:
        response = api_client(officer).get(url.rsplit("/", 1)[0] + "/" + part)
        assert response.status_code == 404, (part, response.status_code)
        assert _text(response).strip(), part


MALFORMED_RANGES = ["bytes=zzz", "bytes=", "bytes=-", "bytes=5-1", "bytes=0-0,2-3,4-5", "bytes=--1", "bytes=1--2",
                    "bytes=99999999999999999999999-", "bytes=-99999999999999999999999", "items=0-10", "bytes 0-10",
                    "bytes=0-10;", "bytes=\x00-1", "bytes=１-２", "bytes=" + "0-1," * 2000, "bytes=-0", "=0-1",
                    "bytes=1e3-2e3", "bytes=0x10-0x20", "bytes = 0 - 10"]


def test_malformed_range_headers_get_416_or_the_exact_bytes(world, local_store, reliability):
    officer = world.users["officer"]
    url = _consult(officer, world.recording)
    with local_store.local_path(world.recording.playback_key) as p:
        data = p.read_bytes()
    reliability.describe(category="Hostile input", title="Range headers: malformed list",
                         how="; ".join(repr(r)[:24] for r in MALFORMED_RANGES[:8]) + "; … (several ranges, 2000 "
                             "ranges, overflow, non-ASCII digits, NUL)", unit="case", count=len(MALFORMED_RANGES),
                         invariants=[NO_5XX, "416 with Content-Range bytes */size, or 200/206 with the exact bytes"])
    for header in MALFORMED_RANGES:
        _check_range(officer, url, header, data)


def _check_range(user, url, header, data) -> None:
    response = api_client(user).get(url, HTTP_RANGE=header)
    body = b"".join(response.streaming_content) if response.status_code in (200, 206) else response.content
    assert response.status_code in (200, 206, 416), (header, response.status_code)
    if response.status_code == 416:
        assert response["Content-Range"] == f"bytes */{len(data)}", header
    elif response.status_code == 206:
        first, last = map(int, response["Content-Range"].split()[1].split("/")[0].split("-"))
        assert body == data[first:last + 1] and int(response["Content-Length"]) == len(body), header
    else:
        assert body == data


range_headers = st.one_of(
    st.text(max_size=40),
    st.builds(lambda a, b: f"bytes={a}-{b}", st.one_of(st.integers(-10, 10 ** 12), st.just("")),
              st.one_of(st.integers(-10, 10 ** 12), st.just(""))),
    st.lists(st.builds(lambda a, b: f"{a}-{b}", st.integers(0, 10 ** 6), st.integers(0, 10 ** 6)),
             min_size=1, max_size=5).map(lambda r: "bytes=" + ",".join(r)),
)


def test_range_headers_fuzzed(world, local_store, reliability):
    officer = world.users["officer"]
    url = _consult(officer, world.recording)
    with local_store.local_path(world.recording.playback_key) as p:
        data = p.read_bytes()
    reliability.describe(category="Hostile input", title="Range headers: fuzzed (Hypothesis)",
                         how="random text, bytes=a-b with negative, empty and huge bounds, lists of ranges",
                         unit="example", invariants=[NO_5XX, "416 with Content-Range bytes */size, or 200/206 "
                                                                "with the exact bytes"])

    @settings(max_examples=examples(100))
    @given(header=range_headers)
    def run(header):
        reliability.tally()
        try:
            header.encode("latin-1")
        except UnicodeEncodeError:
            header = header.encode("utf-8").decode("latin-1")  # as a WSGI server hands it over
        _check_range(officer, url, header, data)

    run()


# --- Oversized bodies --------------------------------------------------------------------------------

def test_oversized_bodies_are_refused_with_a_message(world, reliability):
    officer, supervisor = world.users["officer"], world.users["supervisor"]
    rec = world.recording
    big = "x" * (6 * 1024 * 1024)
    cases = [
        (officer, "post", f"/api/recordings/{rec.pk}/annotations/", {"text": big, "at": 1.0}),
        (officer, "post", f"/api/recordings/{rec.pk}/consultations/", {"motif": big}),
        (officer, "patch", f"/api/recordings/{rec.pk}/", {"notice_omitted_reason": big}),
        (supervisor, "post", f"/api/recordings/{rec.pk}/holds/", {"procedure": "judicial", "reference": big}),
        (supervisor, "post", f"/api/recordings/{rec.pk}/review/", {"state": "flagged", "note": big}),
        (officer, "post", "/api/access-requests/", {"requester": big}),
    ]
    reliability.describe(category="Hostile input", title="Oversized bodies (6 MiB JSON)",
                         how="6 MiB JSON bodies on annotations, consultations, tags (PATCH), holds, review, access "
                             "requests", unit="case", count=len(cases),
                         invariants=[NO_5XX, "refused (400/413) with a message; nothing written"])
    from audit.models import CustodyEvent

    before = CustodyEvent.objects.count()
    for user, method, path, body in cases:
        response = getattr(api_client(user), method)(path, json.dumps(body), content_type="application/json")
        assert response.status_code in (400, 403, 404, 413), (path, response.status_code)
        assert _text(response).strip(), path
    assert CustodyEvent.objects.count() == before


# --- The other organisation's ids ---------------------------------------------------------------------

RECORDING_PAGES = ["/enregistrements/{}/", "/enregistrements/{}/lecture/", "/enregistrements/{}/tracabilite/",
                   "/enregistrements/{}/tracabilite.pdf", "/enregistrements/{}/etiquettes/",
                   "/enregistrements/{}/conservations/", "/enregistrements/{}/commentaires/",
                   "/enregistrements/{}/revue/", "/enregistrements/{}/extraction/", "/enregistrements/{}/floutage/"]
RECORDING_API = [("get", "/api/recordings/{}/"), ("get", "/api/recordings/{}/custody/"),
                 ("get", "/api/recordings/{}/annotations/"), ("post", "/api/recordings/{}/consultations/"),
                 ("post", "/api/recordings/{}/holds/"), ("post", "/api/recordings/{}/review/"),
                 ("patch", "/api/recordings/{}/"), ("post", "/api/recordings/{}/extractions/")]


def test_the_other_organisations_ids_are_404_for_every_role(world, reliability):
    from django.urls import resolve
    from django.urls.exceptions import Resolver404

    foreign = world.foreign_recording.pk
    pages = [p for p in RECORDING_PAGES if _resolves(p.format(foreign), resolve, Resolver404)]
    n = len(ROLES) * (len(pages) * 2 + len(RECORDING_API) + 2)
    reliability.describe(category="Hostile input", title="The other organisation's ids, every role",
                         how=f"{len(pages)} recording pages (GET and POST) and {len(RECORDING_API)} API operations "
                             "with the other organisation's recording id, and its hold id, as each role",
                         unit="case", count=n, invariants=[NO_5XX, NO_LEAK, "404 (403 for a role that never sees "
                                                                            "the page), with a message"])
    problems = []
    for role in ROLES:
        user = world.users[role]
        client = sign_in(Client(raise_request_exception=False), user)
        for page in pages:
            for method in ("get", "post"):
                response = getattr(client, method)(page.format(foreign))
                problems += _expect_refused(f"{role} {method.upper()} {page}", response)
        for method, path in RECORDING_API:
            response = getattr(api_client(user), method)(path.format(foreign), {"motif": "x"}, format="json")
            problems += _expect_refused(f"{role} {method.upper()} {path}", response)
        for method, path in (("get", "/api/holds/{}/"), ("post", "/api/holds/{}/release/")):
            response = getattr(api_client(user), method)(path.format(world.foreign_hold.pk), {"motif": "x"},
                                                         format="json")
            problems += _expect_refused(f"{role} {method.upper()} {path}", response)
    assert not problems, "\n".join(problems)


def _resolves(path, resolve, Resolver404) -> bool:
    try:
        resolve(path)
        return True
    except Resolver404:
        return False


def _expect_refused(where, response) -> list[str]:
    text = _text(response)
    out = []
    if response.status_code not in (403, 404, 405):
        out.append(f"{where} → {response.status_code} (expected 404)")
    if response.status_code in (403, 404) and not text.strip():
        out.append(f"{where} → {response.status_code} without a message")
    out += [f"{where} leaks {m!r}" for m in FOREIGN_MARKERS if m in text]
    return out


# --- Axis: object names, metadata, bodies ---------------------------------------------------------------

@pytest.fixture
def axis(world, org):
    from django.core.management import call_command

    out = io.StringIO()
    call_command("axis_connection_file", "--org", org.slug, "--url", "http://testserver", stdout=out,
                 stderr=io.StringIO())
    connection = json.loads(out.getvalue())
    client = Client(raise_request_exception=False)
    response = client.get("/axis/auth/v1.0", HTTP_X_AUTH_USER=connection["BlobAPIUserName"],
                          HTTP_X_AUTH_KEY=connection["BlobAPIKey"])
    assert response.status_code == 200, response.content
    base = response["X-Storage-Url"].replace("http://testserver", "")
    return client, base, {"HTTP_X_AUTH_TOKEN": response["X-Auth-Token"]}


TRAVERSAL_NAMES = ["../../../../etc/passwd", "..%2f..%2f..%2fetc%2fpasswd", "a/../../b.mp4", "%2e%2e/%2e%2e/x.mp4",
                   "..\\..\\windows\\x.mp4", "/abs.mp4", "x%00.mp4", "Users/../System/Capabilities.json",
                   "%C0%AE%C0%AE/x.mkv", "ok/" + "a" * 1100 + ".mp4"]


def test_axis_object_names_that_try_to_leave_their_container(axis, local_store, tmp_path, reliability):
    client, base, auth = axis
    reliability.describe(category="Hostile input", title="Axis: path traversal in object and container names",
                         how="PUT/HEAD/GET of objects named " + ", ".join(n[:22] for n in TRAVERSAL_NAMES[:6]) +
                             "…, in an unknown container, in System/Users/Devices and in containers named NUL, '..'", unit="case",
                         count=len(TRAVERSAL_NAMES) * 7,
                         invariants=[NO_5XX, "nothing written outside the store's own keys", MESSAGE])
    before = {p for p in tmp_path.rglob("*")}
    problems = []
    for name in TRAVERSAL_NAMES:
        for container in ("nope_B8A44F3A0042_20261120T213000Z", "Users", "Devices", "x%00y", "..", "%2e%2e"):
            response = client.put(f"{base}/{container}/{name}", data=b"payload", content_type="video/mp4",
                                  HTTP_X_OBJECT_META_NAME="x", **auth)
            if response.status_code >= 500:
                problems.append(f"PUT {container}/{name[:40]} → {response.status_code}: {response.content[:200]!r}")
        response = client.get(f"{base}/System/{name}", **auth)
        if response.status_code >= 500:
            problems.append(f"GET System/{name[:40]} → {response.status_code}: {response.content[:200]!r}")
    assert not problems, "\n".join(problems)
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if not p.is_relative_to(local_store.root)]
    assert not outside, outside
    assert not any("passwd" in str(p) or "windows" in str(p) for p in created)


def test_axis_metadata_with_nul_and_hostile_encodings_is_stored(axis, reliability):
    client, base, auth = axis
    values = ["%00", "a%00b", "%FF%FE", "%C0%AE", "%", "%E2%80%AE", "é".encode().decode("latin-1"), "x" * 5000]
    reliability.describe(category="Hostile input", title="Axis: NUL and broken encodings in metadata",
                         how="Users/Devices objects with metadata values " + ", ".join(v[:8] for v in values[:7]) +
                             ", 5000 characters (PostgreSQL refuses NUL in text and jsonb)", unit="case",
                         count=len(values), invariants=[NO_5XX, "stored (NUL shown as U+FFFD), never a crash"])
    for i, value in enumerate(values):
        response = client.put(f"{base}/Users/0000000{i}-aaaa-bbbb-cccc-000000000000", data=b"",
                              HTTP_X_OBJECT_META_NAME=value, HTTP_X_OBJECT_META_USERID=value, **auth)
        assert response.status_code in (201, 202), (value[:20], response.status_code, response.content[:200])


def test_axis_oversized_metadata_object_body_is_refused_without_a_server_error(axis, reliability):
    client, base, auth = axis
    reliability.describe(category="Hostile input", title="Axis: oversized body on a metadata object",
                         how="PUT Users/<uuid> with a 3 MiB body (metadata objects carry no data)", unit="case",
                         count=1, invariants=[NO_5XX, MESSAGE])
    response = client.put(f"{base}/Users/11111111-2222-3333-4444-555555555555", data=os.urandom(3 * 1024 * 1024),
                          content_type="application/octet-stream", **auth)
    assert response.status_code < 500, (response.status_code, response.content[:200])
    assert response.content.strip()


# --- Volumes: names and links the offload must survive -------------------------------------------------

def test_offload_of_a_volume_with_hostile_names_and_links(world, make_volume, clip_library, tmp_path, reliability):
    from devices.models import OffloadSession
    from evidence.models import Recording

    from tests.evidence.helpers import run_offload

    reliability.describe(category="Hostile input", title="Volume: non-UTF-8 names, links out, '..' names (offload)",
                         how="manage.py offload of a volume holding a Latin-1 clip name, a symlink to a file outside "
                             "the volume, a symlinked directory, a clip named '..mp4' and a normal clip",
                         unit="case", count=1,
                         invariants=[NO_5XX + " (no crash)", "normal clips offloaded; hostile entries left on the "
                                                             "camera and listed in the session report"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"SECRET")
    volume = make_volume("BWC-0042", {"DCIM/b.mp4": clip_library["h264_noaudio"], "DCIM/..mp4": b"\x00" * 64})
    os.close(os.open(os.fsencode(volume / "DCIM") + b"/\xe9t\xe9.mp4", os.O_CREAT | os.O_WRONLY))
    (volume / "DCIM" / "lien.mp4").symlink_to(outside / "secret.mp4")
    (volume / "DCIM" / "dossier").symlink_to(outside, target_is_directory=True)
    code, out = run_offload(volume, "--keep")
    assert code in (0, 2), out
    session = OffloadSession.objects.filter(camera__serial="BWC-0042").order_by("-pk").first()
    ignored = {i["path"]: i["reason"] for i in session.report["ignored"]}
    assert "DCIM/\\xe9t\\xe9.mp4" in ignored and "not valid UTF-8" in ignored["DCIM/\\xe9t\\xe9.mp4"]
    assert "symbolic link" in ignored["DCIM/lien.mp4"] and "symbolic link" in ignored["DCIM/dossier"]
    assert Recording.objects.filter(camera__serial="BWC-0042", source_path="DCIM/b.mp4").exists()
    assert not Recording.objects.filter(source_path__contains="lien").exists()
    assert os.path.exists(os.fsencode(volume / "DCIM") + b"/\xe9t\xe9.mp4")  # left on the camera


# --- Reported to the disclosure work (5xx found by Schemathesis) ------------------------------------------

def test_access_request_candidates_with_hostile_query_is_refused_with_a_message(world, reliability):
    dpo = world.users["dpo"]
    created = api_client(dpo).post("/api/access-requests/", {
        "requester_name": "Jean Dupont", "received_on": "2026-11-20", "description": "filmé le 20 novembre",
        "identity_checked": True, "identity_check_method": "CNI",
        "window_start": "2026-11-19T00:00:00+01:00", "window_end": "2026-11-21T00:00:00+01:00"}, format="json")
    assert created.status_code == 201, created.content
    queries = ["lat=nan&lon=1", "lat=1e400&lon=2", "lat=1&lon=-inf", "officer=%00"]
    reliability.describe(category="Hostile input", title="Access request candidates: NaN, ∞ and NUL in the query",
                         how="GET /api/access-requests/<id>/candidates/?" + " | ?".join(queries) + " as the DPO",
                         unit="case", count=len(queries), invariants=[NO_5XX, "400 with a message"])
    problems = []
    for query in queries:
        response = api_client(dpo).get(f"/api/access-requests/{created.json()['id']}/candidates/?{query}")
        if response.status_code != 400 or not _text(response).strip():
            problems.append(f"?{query} → {response.status_code}")
    assert not problems, problems
