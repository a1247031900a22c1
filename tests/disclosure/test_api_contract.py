"""Issue 15 item 6: the disclosure API reads its input through serializers, so the OpenAPI schema
says what the code accepts (required fields, types, bounds) and what it answers when it refuses
(4xx bodies); the lists are paginated without a query per row."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.disclosure import services
from evidence.disclosure import access_requests
from evidence.disclosure.models import AccessRequest, Export, Share

from .helpers import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def schema(users):
    response = api(users["legal"]).get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def _component(doc, ref: str) -> dict:
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _request(doc, path: str, method: str = "post") -> dict:
    return _component(doc, doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"])


def test_the_schema_states_the_fields_each_operation_requires_and_their_bounds(schema):
    export = _request(schema, "/api/exports/")
    assert set(export["required"]) == {"recordings", "purpose", "recipient", "motif"}
    assert export["properties"]["recordings"]["maxItems"] == 200
    assert export["properties"]["recordings"]["items"]["minimum"] == 1
    assert export["properties"]["recipient"]["maxLength"] == 300

    share = _request(schema, "/api/exports/{id}/shares/")
    assert set(share["required"]) == {"recipient", "expires_at", "max_downloads"}
    assert (share["properties"]["max_downloads"]["minimum"], share["properties"]["max_downloads"]["maximum"]) == (1, 100)

    registered = _request(schema, "/api/access-requests/")
    assert set(registered["required"]) == {"requester_name", "identity_checked", "received_on", "description"}

    candidates = {p["name"]: p for p in schema["paths"]["/api/access-requests/{id}/candidates/"]["get"]["parameters"]}
    assert {"start", "end", "lat", "lon", "radius_m", "officer", "intervention"} <= set(candidates)
    assert candidates["lat"]["schema"]["maximum"] == 90


@pytest.mark.parametrize("path,method,codes", [
    ("/api/exports/", "post", {"201", "400", "401", "403", "404"}),
    ("/api/exports/{id}/", "get", {"200", "401", "404"}),
    ("/api/exports/{id}/shares/", "post", {"201", "400", "401", "403", "404"}),
    ("/api/access-requests/", "post", {"201", "400", "401", "403"}),
    ("/api/access-requests/{id}/candidates/", "get", {"200", "400", "401", "403", "404", "429"}),
    ("/api/access-requests/{id}/decision/", "post", {"200", "400", "401", "403", "404"}),
])
def test_the_schema_describes_the_refusals(schema, path, method, codes):
    responses = schema["paths"][path][method]["responses"]
    assert set(responses) == codes
    bad = responses.get("400")
    if bad:  # {"field": ["message", ...]} or, for a list's item, {"field": {"0": ["message", ...]}}
        body = bad["content"]["application/json"]["schema"]
        assert {"type": "array", "items": {"type": "string"}} in body["additionalProperties"]["oneOf"]


def test_the_list_schemas_are_paginated(schema):
    for path in ("/api/exports/", "/api/access-requests/"):
        ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        page = _component(schema, ok["$ref"])
        assert {"count", "next", "previous", "results"} <= set(page["properties"]), path


def test_a_missing_field_is_refused_before_the_service_with_the_services_own_words(recordings, users, monkeypatch):
    called = []
    monkeypatch.setattr(services, "export_create", lambda **kw: called.append(kw))
    body = {"recordings": [recordings[0].pk], "purpose": "judicial", "motif": "Réquisition n° 4"}

    response = api(users["legal"]).post("/api/exports/", body, format="json")

    assert response.status_code == 400 and response.json() == {"recipient": [str(services.EXPORT_RECIPIENT)]}
    assert not called


@pytest.mark.parametrize("field,value,words", [
    ("recordings", [], "au moins un enregistrement"),
    ("recordings", list(range(1, 202)), "200 enregistrements au plus"),
    ("recordings", "12", "Liste de numéros"),
    ("recordings", [True], "Numéro entier"),
    ("recordings", [0], "positif"),
    ("purpose", "amusement", "finalité"),
    ("redaction", "some", "Floutage inconnu"),
    ("recipient", "x" * 301, "300 caractères au plus"),
])
def test_export_bodies_out_of_shape_are_400s_naming_the_field(recordings, users, field, value, words):
    body = {"recordings": [recordings[0].pk], "purpose": "judicial", "recipient": "Parquet", "motif": "PV 12",
            field: value}
    response = api(users["legal"]).post("/api/exports/", body, format="json")
    assert response.status_code == 400 and words in str(response.json()[field]), response.json()  # {"0": [..]} by item
    assert not Export.objects.exists() and not CustodyEvent.objects.filter(action="export.created").exists()


@pytest.mark.parametrize("expires_at,words", [
    ("2026-12-31T10:00:00", "fuseau horaire"),  # no offset: a court's time must not depend on the server
    ("0001-01-01T00:00:00+01:00", "hors des limites"),
    ("2026-12-31T10:00:00-18:30", "hors des limites"),
    ("31/12/2026", "ISO 8601"),
])
def test_share_expiry_must_be_an_aware_date_the_database_can_hold(recordings, users, expires_at, words):
    export = services.export_create(recordings=recordings[:1], by=users["legal"], purpose="judicial",
                                    recipient="Parquet", motif="PV 12")
    Export.objects.filter(pk=export.pk).update(status=Export.Status.READY)
    response = api(users["legal"]).post(f"/api/exports/{export.pk}/shares/", {
        "recipient": "Avocat", "expires_at": expires_at, "max_downloads": 1}, format="json")
    assert response.status_code == 400 and words in response.json()["expires_at"][0], response.json()
    assert not Share.objects.exists()


def test_candidate_queries_out_of_shape_are_400s_naming_the_parameter(users):
    created = api(users["dpo"]).post("/api/access-requests/", {
        "requester_name": "Jean Martin", "identity_checked": True, "identity_check_method": "CNI",
        "received_on": timezone.localdate().isoformat(), "description": "contrôle"}, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/access-requests/{created.json()['id']}/candidates/"
    for query, field in [("lat=45.5", "lon"), ("lat=91&lon=5", "lat"), ("radius_m=7.9", "radius_m"),
                         ("radius_m=1000000", "radius_m"), ("start=2026-12-01", "start"), ("officer=a%01b", "officer")]:
        response = api(users["dpo"]).get(f"{url}?{query}")
        assert response.status_code == 400 and field in response.json(), (query, response.json())
    assert not CustodyEvent.objects.filter(action="access_request.searched").exists()  # nothing was searched


def test_the_access_request_list_costs_the_same_queries_for_3_or_30_requests(users, django_assert_num_queries):
    def register(n):
        for i in range(n):
            access_requests.access_request_register(by=users["dpo"], requester_name=f"Personne {i}", identity_checked=True,
                                             identity_check_method="CNI", received_on=timezone.localdate(),
                                             description="contrôle")

    def count() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert api(users["dpo"]).get("/api/access-requests/").status_code == 200
        return len(ctx.captured_queries)

    register(3)
    few = count()
    register(27)
    assert count() == few
    body = api(users["dpo"]).get("/api/access-requests/?page=1").json()
    assert body["count"] == 30 and len(body["results"]) == 30 and body["results"][0]["exports"] == []
    assert AccessRequest.objects.count() == 30 and dt.date.fromisoformat(body["results"][0]["deadline"])
