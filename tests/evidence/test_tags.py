"""Tags (CSI L241-2): the wearer completes trigger reason and notice; every change is logged."""
from tests.auth import sign_in
import pytest
from django.test import Client

from audit.models import CustodyEvent
from evidence.models import Recording

from .test_api import api, make_recording

pytestmark = pytest.mark.django_db


@pytest.fixture
def untagged(camera, officer):
    return make_recording(camera=camera, wearer=officer, trigger_reason="", subject_notified=None)


def test_wearer_completes_tags_through_the_api_and_old_values_are_logged(untagged, officer):
    response = api(officer).patch(f"/api/recordings/{untagged.pk}/",
                                  {"trigger_reason": "incident", "subject_notified": True, "intervention": "PM-9"},
                                  format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["trigger_reason"], body["subject_notified"], body["to_complete"]) == ("incident", True, False)
    event = CustodyEvent.objects.get(recording=untagged, action="recording.tagged")
    assert event.actor == officer
    assert event.details["changes"] == {"trigger_reason": ["", "incident"], "subject_notified": [None, True],
                                        "intervention": ["", "PM-9"]}


def test_not_informing_the_people_filmed_requires_the_reason(untagged, officer):
    refused = api(officer).patch(f"/api/recordings/{untagged.pk}/",
                                 {"trigger_reason": "incident", "subject_notified": False}, format="json")
    accepted = api(officer).patch(f"/api/recordings/{untagged.pk}/",
                                  {"trigger_reason": "incident", "subject_notified": False,
                                   "notice_omitted_reason": "individu en fuite"}, format="json")

    assert refused.status_code == 400 and "notice_omitted_reason" in refused.json()
    assert accepted.status_code == 200 and accepted.json()["to_complete"] is False


def test_another_officer_cannot_tag_and_gets_404(untagged, make_user):
    other = make_user("agent.autre", matricule="M999")

    response = api(other).patch(f"/api/recordings/{untagged.pk}/", {"trigger_reason": "incident"}, format="json")

    assert response.status_code == 404
    assert not CustodyEvent.objects.filter(action="recording.tagged").exists()


@pytest.mark.parametrize("role", ["legal", "dpo", "mayor"])
def test_roles_that_only_read_cannot_tag(role, untagged, make_user):
    response = api(make_user(f"u-{role}", role=role)).patch(
        f"/api/recordings/{untagged.pk}/", {"trigger_reason": "incident"}, format="json")

    # The DPO does not see a recording outside an open access request (issue 15): 404.
    assert response.status_code == (404 if role == "dpo" else 403)


def test_supervisor_may_tag_a_recording_of_the_service(untagged, make_user):
    response = api(make_user("chef", role="supervisor")).patch(
        f"/api/recordings/{untagged.pk}/", {"purpose": "evidence"}, format="json")

    assert response.status_code == 200 and response.json()["purpose"] == "evidence"


def test_unknown_values_are_refused_with_a_clear_message(untagged, officer):
    response = api(officer).patch(f"/api/recordings/{untagged.pk}/", {"trigger_reason": "ennui"}, format="json")

    assert response.status_code == 400 and "trigger_reason" in response.json()


def test_the_to_complete_queue_lists_the_wearers_untagged_recordings_and_the_form_completes_them(
    untagged, camera, officer, make_user
):
    tagged = make_recording(camera=camera, wearer=officer)
    someone_elses = make_recording(camera=camera, wearer=make_user("agent.b", matricule="M2"), trigger_reason="")
    client = Client()
    sign_in(client, officer)

    html = client.get("/a-completer/").content.decode()

    assert f"/enregistrements/{untagged.pk}/etiquettes/" in html
    assert f"/enregistrements/{tagged.pk}/etiquettes/" not in html
    assert f"/enregistrements/{someone_elses.pk}/" not in html

    response = client.post(f"/enregistrements/{untagged.pk}/etiquettes/",
                           {"trigger_reason": "risk_of_incident", "subject_notified": "false",
                            "notice_omitted_reason": "", "next": "/a-completer/"}, follow=True)
    assert "indiquez pourquoi" in response.content.decode()
    client.post(f"/enregistrements/{untagged.pk}/etiquettes/",
                {"trigger_reason": "risk_of_incident", "subject_notified": "false",
                 "notice_omitted_reason": "foule hostile", "next": "/a-completer/"})
    untagged.refresh_from_db()
    assert not untagged.to_complete and untagged.notice_omitted_reason == "foule hostile"
    assert f"/enregistrements/{untagged.pk}/etiquettes/" not in client.get("/a-completer/").content.decode()


def test_an_erased_recording_cannot_be_tagged(camera, officer):
    erased = make_recording(camera=camera, wearer=officer, trigger_reason="", status=Recording.Status.ERASED)

    response = api(officer).patch(f"/api/recordings/{erased.pk}/", {"trigger_reason": "incident"}, format="json")

    assert response.status_code == 400
