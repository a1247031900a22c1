"""Holds through the API and the pages (CSI R241-13): who may place and release, and the 404 rule."""
from tests.auth import sign_in
import pytest
from django.test import Client

from audit.models import CustodyEvent
from evidence.models import Hold

from .test_api import api, make_recording

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(camera, officer, local_store):
    return make_recording(camera=camera, wearer=officer, intervention="PM-2026-0042")


def test_supervisor_places_a_hold_through_the_api_and_the_detail_shows_it(recording, make_user):
    chef = make_user("chef", role="supervisor")

    response = api(chef).post(f"/api/recordings/{recording.pk}/holds/",
                              {"procedure": "judicial", "reference": "PV 2026/77"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["active"] is True and response.json()["placed_by"] == "chef"
    detail = api(chef).get(f"/api/recordings/{recording.pk}/").json()
    assert [(h["procedure"], h["reference"]) for h in detail["holds"]] == [("judicial", "PV 2026/77")]
    assert CustodyEvent.objects.filter(recording=recording, action="hold.placed").exists()


def test_intervention_scope_holds_every_recording_of_the_intervention(recording, camera, officer, make_user):
    sibling = make_recording(camera=camera, wearer=officer, intervention="PM-2026-0042")
    lawyer = make_user("juriste", role="legal")

    response = api(lawyer).post(f"/api/recordings/{recording.pk}/holds/",
                                {"procedure": "disciplinary", "reference": "CD-3", "scope": "intervention"},
                                format="json")

    assert response.status_code == 201
    assert api(lawyer).get(f"/api/recordings/{sibling.pk}/").json()["holds"][0]["reference"] == "CD-3"


@pytest.mark.parametrize("role, expected", [("officer", 403), ("dpo", 404), ("mayor", 403), ("admin", 404)])
def test_other_roles_cannot_place_holds(role, expected, recording, make_user, officer):
    user = officer if role == "officer" else make_user(f"u-{role}", role=role)

    response = api(user).post(f"/api/recordings/{recording.pk}/holds/", {"procedure": "judicial", "reference": "X"},
                              format="json")

    assert response.status_code == expected
    assert not Hold.objects.exists()


def test_a_hold_without_reference_or_with_an_unknown_procedure_is_refused_clearly(recording, make_user):
    chef = make_user("chef", role="supervisor")

    missing = api(chef).post(f"/api/recordings/{recording.pk}/holds/", {"procedure": "judicial"}, format="json")
    unknown = api(chef).post(f"/api/recordings/{recording.pk}/holds/", {"procedure": "x", "reference": "R"}, format="json")

    assert missing.status_code == 400 and "reference" in missing.json()
    assert unknown.status_code == 400 and "procedure" in unknown.json()


def test_only_legal_staff_release_a_hold_and_only_with_a_motif(recording, make_user):
    chef, lawyer = make_user("chef", role="supervisor"), make_user("juriste", role="legal")
    hold_id = api(chef).post(f"/api/recordings/{recording.pk}/holds/", {"procedure": "judicial", "reference": "R"},
                             format="json").json()["id"]

    assert api(chef).post(f"/api/holds/{hold_id}/release/", {"motif": "fin"}, format="json").status_code == 403
    assert api(lawyer).post(f"/api/holds/{hold_id}/release/", {}, format="json").status_code == 400
    released = api(lawyer).post(f"/api/holds/{hold_id}/release/", {"motif": "jugement définitif"}, format="json")

    assert released.status_code == 200 and released.json()["active"] is False
    assert CustodyEvent.objects.get(action="hold.released").motif == "jugement définitif"


def test_a_hold_of_another_organisation_is_a_404(recording, make_user):
    from accounts.services import organisation_create
    from django.db import transaction

    chef = make_user("chef", role="supervisor")
    hold_id = api(chef).post(f"/api/recordings/{recording.pk}/holds/", {"procedure": "judicial", "reference": "R"},
                             format="json").json()["id"]
    with transaction.atomic():
        other = organisation_create(slug="aix", name="Aix-les-Bains")
    outsider = make_user("juriste-aix", role="legal", organisation=other)

    assert api(outsider).post(f"/api/holds/{hold_id}/release/", {"motif": "x"}, format="json").status_code == 404


def test_the_hold_form_on_the_recording_page_works_without_javascript(recording, make_user):
    chef = make_user("chef", role="supervisor")
    client = Client()
    sign_in(client, chef)

    page = client.get(f"/enregistrements/{recording.pk}/")
    assert "Conserver pour procédure" in page.content.decode()
    response = client.post(f"/enregistrements/{recording.pk}/conservations/",
                           {"procedure": "administrative", "reference": "ARR-5", "scope": "recording"}, follow=True)

    assert "Conservation pour procédure enregistrée" in response.content.decode()
    assert Hold.objects.get().reference == "ARR-5"


def test_upcoming_erasures_page_lists_what_goes_in_72_hours_and_highlights_untagged(camera, officer, make_user, local_store):
    import datetime as dt

    from django.utils import timezone

    soon = make_recording(camera=camera, wearer=officer, trigger_reason="", subject_notified=None,
                          retain_until=timezone.now() + dt.timedelta(hours=30))
    week = make_recording(camera=camera, wearer=officer, retain_until=timezone.now() + dt.timedelta(days=5))
    make_recording(camera=camera, wearer=officer, retain_until=timezone.now() + dt.timedelta(days=20))
    client = Client()
    sign_in(client, make_user("chef", role="supervisor"))

    html = client.get("/effacements/").content.decode()

    assert "Dans les 72 heures (1)" in html and "Dans les 7 jours (1)" in html
    assert f"/enregistrements/{soon.pk}/" in html and f"/enregistrements/{week.pk}/" in html
    assert 'class="row-todo"' in html and "non qualifié" in html
