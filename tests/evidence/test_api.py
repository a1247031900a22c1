"""HTTP API contract, read part (ARCHITECTURE.md §7), and the server-rendered recording pages.

A user who may not see a recording gets 404 for it, never its metadata (CSI R241-12).
"""
from __future__ import annotations

from tests.auth import sign_in

import datetime as dt
import hashlib
import itertools

import pytest
import yaml
from django.db import transaction
from rest_framework.test import APIClient

from accounts.services import organisation_create
from devices.services import camera_register
from evidence.models import Recording

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc
CONTRACT_DETAIL_FIELDS = {
    "id", "sha256", "size", "camera", "officer", "started_at", "ended_at", "duration",
    "trigger_reason", "subject_notified", "purpose", "status", "retain_until", "holds",
}

_numbers = itertools.count(1)


def make_recording(*, camera, wearer=None, started_at=None, trigger_reason="incident",
                   status=Recording.Status.READY, **extra) -> Recording:
    """A recording as the pipeline leaves it, written directly (the API only reads)."""
    n = next(_numbers)
    started_at = started_at or dt.datetime(2026, 11, 20, 21, 30, tzinfo=UTC) + dt.timedelta(minutes=n)
    sha = hashlib.sha256(f"clip {n}".encode()).hexdigest()
    fields = dict(
        organisation=camera.organisation, camera=camera, wearer=wearer,
        wearer_source="assignment" if wearer else "",
        source_path=f"DCIM/100/CLIP{n:04d}.MP4", source_size=1_000_000 + n,
        source_mtime_ns=int(started_at.timestamp() * 1e9),
        store_key=f"originals/{camera.serial}/{sha}.mp4", ingested_at=started_at + dt.timedelta(hours=2),
        sha256=sha, size=1_000_000 + n, started_at=started_at, ended_at=started_at + dt.timedelta(seconds=90),
        duration=90.0, time_source="sidecar", time_attested=True,
        trigger_reason=trigger_reason, subject_notified=True, purpose="evidence",
        status=status, retain_until=dt.datetime(2026, 12, 20, 23, 0, tzinfo=UTC),
        verified_at=started_at + dt.timedelta(hours=2),
    )
    fields.update(extra)
    return Recording.objects.create(**fields)


def api(user=None) -> APIClient:
    client = APIClient()
    # Failures must show as HTTP statuses, not as exceptions raised through the test client.
    client.raise_request_exception = False
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.api_token}")
    return client


def ids(response) -> set[int]:
    return {r["id"] for r in response.json()["results"]}


@pytest.fixture
def other_officer(make_user):
    return make_user("agent.durand", matricule="M043")


@pytest.fixture
def supervisor(make_user):
    return make_user("chef.bernard", role="supervisor", matricule="S001")


@pytest.fixture
def second_camera(org):
    with transaction.atomic():
        return camera_register(serial="BWC-0043", organisation=org, model="Demo")


@pytest.fixture
def other_org(db):
    with transaction.atomic():
        return organisation_create(slug="aix-les-bains", name="Police municipale d'Aix-les-Bains")


@pytest.fixture
def other_org_camera(other_org):
    with transaction.atomic():
        return camera_register(serial="AIX-0001", organisation=other_org, model="Demo")


@pytest.fixture
def other_org_officer(make_user, other_org):
    return make_user("agent.aix", matricule="M042", organisation=other_org)


# --- Authentication --------------------------------------------------------------------------

def test_listing_recordings_without_a_token_is_401(camera, officer):
    make_recording(camera=camera, wearer=officer)

    response = api().get("/api/recordings/")

    assert response.status_code == 401


def test_recording_detail_without_a_token_is_401_and_shows_nothing(camera, officer):
    rec = make_recording(camera=camera, wearer=officer)

    response = api().get(f"/api/recordings/{rec.pk}/")

    assert response.status_code == 401
    assert rec.sha256 not in response.content.decode()


def test_an_unknown_token_is_401(camera, officer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    assert client.get("/api/recordings/").status_code == 401


def test_a_valid_token_authenticates(officer):
    assert api(officer).get("/api/recordings/").status_code == 200


# --- Shape of the answers --------------------------------------------------------------------

def test_list_is_paginated_with_count_and_results(camera, officer):
    for _ in range(51):
        make_recording(camera=camera, wearer=officer)

    first = api(officer).get("/api/recordings/").json()
    second = api(officer).get("/api/recordings/", {"page": 2}).json()

    assert first["count"] == 51
    assert len(first["results"]) == 50
    assert first["next"] is not None
    assert len(second["results"]) == 1
    seen = {r["id"] for r in first["results"] + second["results"]}
    assert seen == set(Recording.objects.values_list("pk", flat=True))


def test_list_is_ordered_from_most_recent_recording(camera, officer):
    old = make_recording(camera=camera, wearer=officer, started_at=dt.datetime(2026, 11, 1, 8, tzinfo=UTC))
    new = make_recording(camera=camera, wearer=officer, started_at=dt.datetime(2026, 11, 2, 8, tzinfo=UTC))

    body = api(officer).get("/api/recordings/").json()

    assert [r["id"] for r in body["results"]] == [new.pk, old.pk]


def test_detail_has_every_contract_field(camera, officer):
    rec = make_recording(camera=camera, wearer=officer)

    response = api(officer).get(f"/api/recordings/{rec.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert CONTRACT_DETAIL_FIELDS <= set(body), CONTRACT_DETAIL_FIELDS - set(body)
    assert body["id"] == rec.pk
    assert body["sha256"] == rec.sha256
    assert body["size"] == rec.size
    assert body["camera"] == "BWC-0042"
    assert body["officer"] == "M042"
    assert dt.datetime.fromisoformat(body["started_at"]) == rec.started_at
    assert dt.datetime.fromisoformat(body["ended_at"]) == rec.ended_at
    assert body["duration"] == 90.0
    assert body["trigger_reason"] == "incident"
    assert body["subject_notified"] is True
    assert body["purpose"] == "evidence"
    assert body["status"] == "ready"
    assert dt.datetime.fromisoformat(body["retain_until"]) == rec.retain_until
    assert body["holds"] == []


def test_detail_of_a_recording_with_unknown_wearer_has_a_null_officer(camera, supervisor):
    rec = make_recording(camera=camera, wearer=None, trigger_reason="", subject_notified=None)

    body = api(supervisor).get(f"/api/recordings/{rec.pk}/").json()

    assert body["officer"] is None
    assert body["trigger_reason"] == "" and body["subject_notified"] is None


# --- Who sees what ---------------------------------------------------------------------------

def test_officer_sees_only_own_recordings(camera, officer, other_officer):
    mine = make_recording(camera=camera, wearer=officer)
    make_recording(camera=camera, wearer=other_officer)
    make_recording(camera=camera, wearer=None)

    response = api(officer).get("/api/recordings/")

    assert response.json()["count"] == 1
    assert ids(response) == {mine.pk}


def test_officer_gets_404_on_another_officers_recording(camera, officer, other_officer):
    theirs = make_recording(camera=camera, wearer=other_officer)

    response = api(officer).get(f"/api/recordings/{theirs.pk}/")

    assert response.status_code == 404
    assert theirs.sha256 not in response.content.decode()


def test_officer_gets_404_on_a_recording_whose_wearer_is_unknown(camera, officer):
    unknown = make_recording(camera=camera, wearer=None)

    assert api(officer).get(f"/api/recordings/{unknown.pk}/").status_code == 404


def test_supervisor_sees_every_recording_of_the_organisation(camera, second_camera, officer, other_officer,
                                                              supervisor, other_org_camera, other_org_officer):
    ours = {
        make_recording(camera=camera, wearer=officer).pk,
        make_recording(camera=second_camera, wearer=other_officer).pk,
        make_recording(camera=camera, wearer=None).pk,
    }
    make_recording(camera=other_org_camera, wearer=other_org_officer)

    response = api(supervisor).get("/api/recordings/")

    assert response.json()["count"] == 3
    assert ids(response) == ours


def test_supervisor_gets_404_on_another_organisations_recording(supervisor, other_org_camera, other_org_officer):
    theirs = make_recording(camera=other_org_camera, wearer=other_org_officer)

    response = api(supervisor).get(f"/api/recordings/{theirs.pk}/")

    assert response.status_code == 404
    assert theirs.sha256 not in response.content.decode()


def test_officer_with_the_same_matricule_in_another_organisation_sees_nothing_of_ours(
        camera, officer, other_org_officer):
    ours = make_recording(camera=camera, wearer=officer)

    client = api(other_org_officer)

    assert client.get("/api/recordings/").json()["count"] == 0
    assert client.get(f"/api/recordings/{ours.pk}/").status_code == 404


def test_technical_admin_sees_no_recording(camera, officer, make_user):
    rec = make_recording(camera=camera, wearer=officer)
    admin = make_user("tech.admin", role="admin")

    response = api(admin).get("/api/recordings/")

    assert response.status_code == 200
    assert response.json()["count"] == 0 and response.json()["results"] == []
    assert api(admin).get(f"/api/recordings/{rec.pk}/").status_code == 404


@pytest.mark.parametrize("role", ["legal", "dpo", "mayor"])
def test_other_organisation_wide_roles_see_the_whole_organisation(camera, officer, other_officer, make_user, role):
    recs = {make_recording(camera=camera, wearer=officer).pk, make_recording(camera=camera, wearer=other_officer).pk}
    reader = make_user(f"reader.{role}", role=role)

    # Issue 15 (ARCHITECTURE.md §1): the DPO sees the recordings of open access requests only.
    assert ids(api(reader).get("/api/recordings/")) == (set() if role == "dpo" else recs)


def test_duplicates_are_not_listed(camera, officer):
    original = make_recording(camera=camera, wearer=officer)
    dup = make_recording(camera=camera, wearer=officer, status=Recording.Status.DUPLICATE, duplicate_of=original)

    client = api(officer)

    assert ids(client.get("/api/recordings/")) == {original.pk}
    assert client.get(f"/api/recordings/{dup.pk}/").status_code == 404


# --- Filters ---------------------------------------------------------------------------------

@pytest.fixture
def varied(camera, second_camera, officer, other_officer):
    """Four recordings differing along every filter; returned by letter."""
    return {
        "a": make_recording(camera=camera, wearer=officer, started_at=dt.datetime(2026, 11, 20, 10, tzinfo=UTC),
                            trigger_reason="incident", status=Recording.Status.READY),
        "b": make_recording(camera=second_camera, wearer=other_officer,
                            started_at=dt.datetime(2026, 11, 21, 10, tzinfo=UTC),
                            trigger_reason="risk_of_incident", status=Recording.Status.READY),
        "c": make_recording(camera=second_camera, wearer=officer, started_at=dt.datetime(2026, 11, 22, 10, tzinfo=UTC),
                            trigger_reason="incident", status=Recording.Status.UNPLAYABLE),
        "d": make_recording(camera=camera, wearer=other_officer, started_at=dt.datetime(2026, 11, 19, 10, tzinfo=UTC),
                            trigger_reason="", status=Recording.Status.PROCESSING),
    }


@pytest.mark.parametrize("params, expected", [
    ({"officer": "M042"}, "ac"),
    ({"officer": "M043"}, "bd"),
    ({"camera": "BWC-0043"}, "bc"),
    ({"camera": "BWC-0042"}, "ad"),
    ({"started_after": "2026-11-21T00:00:00Z"}, "bc"),
    ({"started_after": "2026-11-21T00:30:00+01:00"}, "bc"),
    ({"started_before": "2026-11-21T00:00:00+00:00"}, "ad"),
    ({"started_after": "2026-11-20T00:00:00Z", "started_before": "2026-11-22T00:00:00Z"}, "ab"),
    ({"trigger_reason": "risk_of_incident"}, "b"),
    ({"trigger_reason": "incident"}, "ac"),
    ({"status": "unplayable"}, "c"),
    ({"status": "processing"}, "d"),
    ({"officer": "M042", "status": "ready"}, "a"),
    ({"officer": "M999"}, ""),
    ({"camera": "BWC-9999"}, ""),
], ids=lambda v: "&".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else v)
def test_each_filter_narrows_the_list(varied, supervisor, params, expected):
    response = api(supervisor).get("/api/recordings/", params)

    assert response.status_code == 200
    assert ids(response) == {varied[letter].pk for letter in expected}
    assert response.json()["count"] == len(expected)


def test_filters_never_widen_an_officers_view(varied, officer):
    response = api(officer).get("/api/recordings/", {"officer": "M043"})

    assert response.json()["count"] == 0


@pytest.mark.parametrize("param", ["started_after", "started_before"])
def test_malformed_date_filter_is_400_naming_the_parameter(officer, param):
    response = api(officer).get("/api/recordings/", {param: "yesterday"})

    assert response.status_code == 400
    assert param in response.json()
    assert "ISO 8601" in str(response.json()[param])


def test_impossible_date_filter_is_400_not_500(officer):
    response = api(officer).get("/api/recordings/", {"started_after": "2026-13-45T10:00:00"})

    assert response.status_code == 400


def test_unknown_status_filter_is_400_listing_the_valid_statuses(officer):
    response = api(officer).get("/api/recordings/", {"status": "lost"})

    assert response.status_code == 400
    message = str(response.json()["status"])
    assert "ready" in message and "unplayable" in message


def test_unknown_trigger_reason_filter_is_400_listing_the_valid_reasons(officer):
    response = api(officer).get("/api/recordings/", {"trigger_reason": "boredom"})

    assert response.status_code == 400
    assert "risk_of_incident" in str(response.json()["trigger_reason"])


# --- OpenAPI ---------------------------------------------------------------------------------

def test_schema_is_an_openapi_3_document_describing_the_recordings_endpoints(officer):
    assert api().get("/api/schema/").status_code == 401  # the map of the API is for its users (issue 17)
    response = api(officer).get("/api/schema/")

    assert response.status_code == 200
    doc = yaml.safe_load(response.content)
    assert str(doc["openapi"]).startswith("3.")
    assert "/api/recordings/" in doc["paths"]
    assert "/api/recordings/{id}/" in doc["paths"]
    names = {p["name"] for p in doc["paths"]["/api/recordings/"]["get"]["parameters"]}
    assert {"officer", "camera", "started_after", "started_before", "trigger_reason", "status"} <= names


# --- Web pages -------------------------------------------------------------------------------

def test_home_page_redirects_anonymous_users_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith("/connexion/")


def test_logged_in_officer_sees_own_recording_on_the_home_page(client, camera, officer, other_officer):
    mine = make_recording(camera=camera, wearer=officer)
    theirs = make_recording(camera=camera, wearer=other_officer)
    sign_in(client, officer)

    response = client.get("/")

    assert response.status_code == 200
    assert [r.pk for r in response.context["page"]] == [mine.pk]
    assert theirs.pk not in {r.pk for r in response.context["page"].paginator.object_list}


def test_home_page_links_each_recording_to_its_web_page(client, camera, officer):
    mine = make_recording(camera=camera, wearer=officer)
    sign_in(client, officer)

    html = client.get("/").content.decode()

    assert f'href="/enregistrements/{mine.pk}/"' in html


def test_logging_in_leads_to_the_dashboard(client, officer):
    response = client.post("/connexion/", {"username": "agent.martin", "password": "Témoin-demo-2026"})

    assert response.status_code == 302
    assert response["Location"] == "/tableau-de-bord/"


def test_logged_in_officer_can_open_own_recording_page(client, camera, officer):
    mine = make_recording(camera=camera, wearer=officer)
    sign_in(client, officer)

    response = client.get(f"/enregistrements/{mine.pk}/")

    assert response.status_code == 200
    assert mine.sha256 in response.content.decode()


def test_logged_in_officer_gets_404_on_another_officers_recording_page(client, camera, officer, other_officer):
    theirs = make_recording(camera=camera, wearer=other_officer)
    sign_in(client, officer)

    response = client.get(f"/enregistrements/{theirs.pk}/")

    assert response.status_code == 404
    assert theirs.sha256 not in response.content.decode()


def test_recording_page_redirects_anonymous_users_to_the_login_page(client, camera, officer):
    rec = make_recording(camera=camera, wearer=officer)

    response = client.get(f"/enregistrements/{rec.pk}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/connexion/")
