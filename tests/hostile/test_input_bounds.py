"""Finding 5 of issue 17: inputs that gave server errors (dates before year 1, JSON nested
thousands deep, ids beyond 64 bits, lone surrogates, NUL, numbers beyond a double) now get a
clear 400 (or 404 for an id), never a 500, and write nothing."""
from __future__ import annotations

import json

import pytest

from .conftest import api_client

pytestmark = pytest.mark.django_db(transaction=True)

NO_5XX = "no 5xx"


def _text(response) -> str:
    return response.content.decode("utf-8", "replace")


def test_list_filters_out_of_range_are_400_with_a_message(world, reliability):
    officer = world.users["supervisor"]
    queries = ["started_before=0001-01-01", "started_after=0001-01-01T00:00:00", "started_before=9999-12-31",
               "started_after=0001-01-01T00:00:00%2B14:00", "started_before=10000-01-01", "started_after=2026-01-01T00:00:00-18:30", "q=%00", "camera=%00",
               "officer=%00abc", "intervention=a%00b", "q=%ED%A0%80"]
    reliability.describe(category="Hostile input", title="List filters: dates at the calendar's ends, NUL, bad UTF-8",
                         how="GET /api/recordings/ with started_before=0001-01-01 and other extreme dates, NUL and "
                             "undecodable bytes in text filters", unit="query", count=len(queries),
                         invariants=[NO_5XX, "400 naming the filter, or the (empty) list"])
    for query in queries:
        response = api_client(officer).get(f"/api/recordings/?{query}")
        assert response.status_code in (200, 400), (query, response.status_code, _text(response)[:300])
        if response.status_code == 400:
            assert _text(response).strip()
    # A date whose conversion to UTC leaves the calendar (an OverflowError on SQLite) is refused by name.
    for query in queries[:6]:
        response = api_client(officer).get(f"/api/recordings/?{query}")
        assert response.status_code == 400 and query.split("=")[0] in response.json(), query
    from django.test import Client

    from tests.auth import sign_in

    page = Client(raise_request_exception=False)
    sign_in(page, officer)
    for query in queries:
        assert page.get(f"/?{query}").status_code == 200, query  # the page shows the form's error


def test_hostile_json_bodies_are_400_and_write_nothing(world, reliability):
    from audit.models import CustodyEvent

    officer, supervisor = world.users["officer"], world.users["supervisor"]
    rec = world.recording
    deep = "[" * 100_000 + "]" * 100_000
    deep_object = '{"a":' * 5000 + "1" + "}" * 5000
    cases = [
        (officer, "patch", f"/api/recordings/{rec.pk}/", deep),
        (officer, "post", f"/api/recordings/{rec.pk}/consultations/", deep_object),
        (officer, "post", f"/api/recordings/{rec.pk}/consultations/", '{"motif": "\\ud800 contr\\u00f4le"}'),
        (officer, "post", f"/api/recordings/{rec.pk}/consultations/", '{"motif": "contr\\u0000le"}'),
        (officer, "patch", f"/api/recordings/{rec.pk}/", '{"intervention": "\\udfff"}'),
        (officer, "post", f"/api/recordings/{rec.pk}/annotations/", '{"text": "ok", "at_seconds": 1e400}'),
        (officer, "post", f"/api/recordings/{rec.pk}/annotations/", '{"text": "ok", "at_seconds": NaN}'),
        (officer, "post", f"/api/recordings/{rec.pk}/annotations/", '{"text": "ok", "at_seconds": -Infinity}'),
        (supervisor, "post", f"/api/recordings/{rec.pk}/holds/", '{"procedure": "judicial", "reference": "\\ud83d"}'),
        (supervisor, "post", f"/api/recordings/{rec.pk}/review/", '{"\\ud800": 1, "state": "reviewed"}'),
        (officer, "post", "/api/access-requests/", '{"radius_m": 1e400, "place": [45.5, 5.9]}'),
        (officer, "post", f"/api/recordings/{rec.pk}/consultations/", '["motif"]'),
        # Found by the live probe: views reading request.data.get(…) got a list, a string, null (500s).
        (supervisor, "post", "/api/exports/", '[1, 2]'),
        (supervisor, "post", "/api/exports/", '"recordings"'),
        (supervisor, "post", f"/api/recordings/{rec.pk}/extractions/", 'null'),
        (world.users["dpo"], "post", "/api/access-requests/", 'true'),
    ]
    reliability.describe(category="Hostile input", title="JSON bodies: nesting, lone surrogates, NUL, 1e400, NaN",
                         how="JSON nested 100,000 deep, lone UTF-16 surrogates and NUL in strings and keys, numbers "
                             "beyond a double (1e400), NaN and Infinity, a list for an object, on the recording routes",
                         unit="case", count=len(cases), invariants=[NO_5XX, "400 with a message; nothing written"])
    before = CustodyEvent.objects.count()
    for user, method, path, body in cases:
        response = getattr(api_client(user), method)(path, body, content_type="application/json")
        assert response.status_code in (400, 403), (path, body[:60], response.status_code, _text(response)[:300])
        assert _text(response).strip()
    assert CustodyEvent.objects.count() == before


def test_ids_beyond_64_bits_are_404_not_500(world, reliability):
    officer, legal = world.users["officer"], world.users["legal"]
    ids = [2**63, 2**63 - 1, 2**64, 10**30, -(2**63) - 1]
    routes = [("get", "/api/recordings/{}/"), ("get", "/api/recordings/{}/custody/"),
              ("post", "/api/recordings/{}/consultations/"), ("patch", "/api/recordings/{}/"),
              ("post", "/api/holds/{}/release/"), ("get", "/api/holds/{}/"), ("get", "/enregistrements/{}/"),
              ("get", "/registre/?enregistrement={}")]
    reliability.describe(category="Hostile input", title="Ids beyond 64 bits",
                         how="2^63, 2^64, 10^30 and below -2^63 as ids in the recording and hold routes and the "
                             "register's filter", unit="request", count=len(ids) * len(routes),
                         invariants=[NO_5XX, "404 (or 400 naming the filter)"])
    from django.test import Client

    from tests.auth import sign_in

    page = Client(raise_request_exception=False)
    sign_in(page, legal)
    for pk in ids:
        for method, route in routes:
            path = route.format(pk)
            if path.startswith("/api/"):
                client = api_client(legal if "holds" in path else officer)
                response = client.get(path) if method == "get" else getattr(client, method)(
                    path, json.dumps({"motif": "x"}), content_type="application/json")
            else:
                response = page.get(path)
            assert response.status_code in (200, 400, 404), (path, response.status_code)


def test_register_dates_beyond_what_postgresql_takes_are_400(world, reliability):
    """Found by the live probe: since=1669-12-06T15:38:40-18:30 reached PostgreSQL (a 500)."""
    mayor = world.users["mayor"]
    queries = ["until=1669-12-06T15:38:40.2-18:30", "since=2026-01-01T00:00:00+16:00", "since=0001-01-01T00:00:00Z",
               "until=9999-12-31T23:59:59-12:00", "recording=9223372036854775808", "recording=-1"]
    reliability.describe(category="Hostile input", title="Register API: dates and offsets PostgreSQL refuses",
                         how="GET /api/register/ with offsets beyond ±15:59, years 1 and 9999, ids beyond 64 bits",
                         unit="query", count=len(queries), invariants=[NO_5XX, "400 naming the parameter"])
    for query in queries:
        response = api_client(mayor).get(f"/api/register/?{query}")
        assert response.status_code == 400, (query, response.status_code)
        assert query.split("=")[0] in response.json()
