"""Review, timecoded comments and bookmarks, individual grants and the list filters (issue #4)."""
import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.access.services import consultation_open, recording_access_grant
from evidence.review.services import recording_review
from evidence.models import Annotation, Recording
from tests.auth import sign_in

from .test_api import api, ids, make_recording

pytestmark = pytest.mark.django_db


@pytest.fixture
def chef(make_user):
    return make_user("chef", role="supervisor")


@pytest.fixture
def rec(camera, officer):
    return make_recording(camera=camera, wearer=officer, intervention="PM-2026-117")


def test_a_comment_placed_through_the_api_is_timecoded_and_logged(rec, officer):
    response = api(officer).post(f"/api/recordings/{rec.pk}/annotations/",
                                 {"at_seconds": 42.5, "text": "Sommation verbale", "kind": "bookmark"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["at_seconds"] == 42.5 and response.json()["kind"] == "bookmark"
    listed = api(officer).get(f"/api/recordings/{rec.pk}/annotations/").json()
    assert [a["text"] for a in listed] == ["Sommation verbale"]
    event = CustodyEvent.objects.get(action="recording.annotated", recording=rec)
    assert event.actor == officer and event.details["at_seconds"] == 42.5


@pytest.mark.parametrize("body,field", [({"at_seconds": 500, "text": "x"}, "at_seconds"),
                                        ({"at_seconds": 3, "text": "   "}, "text"),
                                        ({"at_seconds": -1, "text": "x"}, "at_seconds")])
def test_a_comment_outside_the_recording_or_empty_is_refused_with_the_field(rec, officer, body, field):
    response = api(officer).post(f"/api/recordings/{rec.pk}/annotations/", body, format="json")

    assert response.status_code == 400 and field in response.json()
    assert not Annotation.objects.exists()


def test_another_officer_cannot_comment_and_gets_404(rec, make_user):
    other = make_user("agent.autre", matricule="M999")
    response = api(other).post(f"/api/recordings/{rec.pk}/annotations/", {"at_seconds": 1, "text": "x"}, format="json")
    assert response.status_code == 404


def test_the_comment_form_takes_minutes_and_seconds(rec, officer):
    client = sign_in(Client(), officer)
    response = client.post(f"/enregistrements/{rec.pk}/commentaires/", {"at": "1:15", "text": "Interpellation"})

    assert response.status_code == 302
    assert Annotation.objects.get().at_seconds == 75.0
    assert "Interpellation" in client.get(f"/enregistrements/{rec.pk}/").content.decode()


def test_a_supervisor_flags_a_recording_with_a_note_and_it_leaves_the_unreviewed_queue(rec, chef):
    refused = api(chef).post(f"/api/recordings/{rec.pk}/review/", {"state": "flagged"}, format="json")
    assert refused.status_code == 400 and "note" in refused.json()

    response = api(chef).post(f"/api/recordings/{rec.pk}/review/",
                              {"state": "flagged", "note": "Usage de la force à vérifier"}, format="json")

    assert response.status_code == 200 and response.json()["review_state"] == "flagged"
    client = sign_in(Client(), chef)
    assert "Usage de la force" in client.get("/revue/?file=flagged").content.decode()
    assert str(rec.pk) not in [str(r.pk) for r in client.get("/revue/").context["page"]]
    event = CustodyEvent.objects.get(action="recording.reviewed")
    assert event.details == {"from": "unreviewed", "to": "flagged", "note": "Usage de la force à vérifier"}


def test_an_officer_cannot_review(rec, officer):
    response = api(officer).post(f"/api/recordings/{rec.pk}/review/", {"state": "reviewed"}, format="json")
    assert response.status_code == 403
    assert sign_in(Client(), officer).get("/revue/").status_code == 403


def test_the_random_sample_is_stable_for_a_week_and_within_the_service(camera, officer, chef):
    now = timezone.now()
    for i in range(30):
        make_recording(camera=camera, wearer=officer, started_at=now - dt.timedelta(days=1, minutes=i))
    first = {r.pk for r in services_sample(chef, now)}
    again = {r.pk for r in services_sample(chef, now + dt.timedelta(minutes=5))}
    assert len(first) == 10 and first == again


def services_sample(user, now):
    from evidence.review.selectors import recordings_review_queue_for

    return recordings_review_queue_for(user=user, queue="sample", now=now)


def test_an_investigator_sees_the_granted_intervention_until_the_date_only(camera, officer, chef, make_user):
    granted = make_recording(camera=camera, wearer=officer, intervention="PM-2026-117")
    other = make_recording(camera=camera, wearer=officer, intervention="PM-2026-118")
    investigator = make_user("enqueteur", matricule="E01")
    assert api(investigator).get(f"/api/recordings/{granted.pk}/").status_code == 404

    n = recording_access_grant(grantee=investigator, by=chef, intervention="PM-2026-117",
                                        until=timezone.now() + dt.timedelta(days=7), motif="Enquête administrative 12")

    assert n == 1
    assert api(investigator).get(f"/api/recordings/{granted.pk}/").status_code == 200
    assert api(investigator).get(f"/api/recordings/{other.pk}/").status_code == 404
    event = CustodyEvent.objects.get(action="access.granted")
    assert event.motif == "Enquête administrative 12" and event.details["recordings"] == [granted.pk]

    from evidence.models import RecordingGrant

    RecordingGrant.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert api(investigator).get(f"/api/recordings/{granted.pk}/").status_code == 404


def test_grants_are_refused_to_officers_across_organisations_and_without_motif(camera, officer, chef, make_user):
    from accounts.services import organisation_create

    make_recording(camera=camera, wearer=officer, intervention="PM-1")
    other_org = organisation_create(slug="aix", name="Aix-les-Bains")
    stranger = make_user("etranger", organisation=other_org)
    until = timezone.now() + dt.timedelta(days=1)
    with pytest.raises(PermissionError):
        recording_access_grant(grantee=stranger, by=officer, intervention="PM-1", until=until, motif="m")
    with pytest.raises(ValueError):
        recording_access_grant(grantee=stranger, by=chef, intervention="PM-1", until=until, motif="m")
    with pytest.raises(ValueError, match="motif"):
        recording_access_grant(grantee=officer, by=chef, intervention="PM-1", until=until, motif=" ")


def test_the_grants_page_grants_and_revokes(camera, officer, chef, make_user):
    make_recording(camera=camera, wearer=officer, intervention="PM-7")
    investigator = make_user("enqueteur", matricule="E01")
    client = sign_in(Client(), chef)
    until = (timezone.localtime() + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")

    client.post("/habilitations/", {"grantee": investigator.pk, "intervention": "PM-7", "until": until,
                                    "motif": "Enquête"})
    assert api(investigator).get("/api/recordings/").json()["count"] == 1
    client.post("/habilitations/", {"grantee": investigator.pk, "action": "revoke", "motif": "fin"})
    assert api(investigator).get("/api/recordings/").json()["count"] == 0
    assert CustodyEvent.objects.filter(action="access.revoked").exists()


def test_the_list_filters_by_purpose_notice_intervention_and_review_and_sorts(camera, officer, chef):
    a = make_recording(camera=camera, wearer=officer, purpose="evidence", intervention="A")
    b = make_recording(camera=camera, wearer=officer, purpose="", subject_notified=None, intervention="B",
                       duration=12.0)
    Recording.objects.filter(pk=a.pk).update(playback_key="playback/a.mp4")
    a.refresh_from_db()
    consultation_open(recording=a, by=chef, motif="Contrôle")  # issue 20: consulted before "reviewed"
    recording_review(recording=a, by=chef, state="reviewed")
    client = api(chef)

    assert ids(client.get("/api/recordings/?subject_notified=unknown")) == {b.pk}
    assert ids(client.get("/api/recordings/?intervention=A")) == {a.pk}
    assert ids(client.get("/api/recordings/?review_state=unreviewed")) == {b.pk}
    assert ids(client.get("/api/recordings/?purpose=evidence")) == {a.pk}
    assert [r["id"] for r in client.get("/api/recordings/?sort=duration").json()["results"]] == [b.pk, a.pk]
    assert client.get("/api/recordings/?review_state=nope").status_code == 400

    page = sign_in(Client(), chef).get("/?intervention=B&sort=-started_at")
    assert [r.pk for r in page.context["page"]] == [b.pk]
    assert page.context["form"].is_valid()


def test_the_list_page_shows_a_clear_error_for_a_bad_filter_and_still_lists(camera, officer):
    make_recording(camera=camera, wearer=officer)
    page = sign_in(Client(), officer).get("/?started_after=hier")
    assert page.status_code == 200 and page.context["page"].paginator.count == 1
    assert "Depuis" in page.content.decode()


def test_list_counts_are_exact_up_to_the_limit_then_estimated_on_postgresql(camera, officer, monkeypatch):
    from django.db import connection

    from evidence import pagination

    for _ in range(8):
        make_recording(camera=camera, wearer=officer)
    assert api(officer).get("/api/recordings/").json()["count_exact"] is True

    monkeypatch.setattr(pagination, "EXACT_COUNT_LIMIT", 5)
    body = api(officer).get("/api/recordings/").json()

    if connection.vendor == "postgresql":
        assert body["count_exact"] is False and body["count"] >= 6
    else:
        assert body["count_exact"] is True and body["count"] == 8
    assert len(body["results"]) == 8 and body["next"] is None  # never cut short by an estimate
    monkeypatch.setattr(pagination.RecordingPagination, "page_size", 3)
    pages, client, url = [], api(officer), "/api/recordings/"
    while url:
        body = client.get(url).json()
        pages.append(len(body["results"]))
        url = body["next"]
    assert pages == [3, 3, 2]
