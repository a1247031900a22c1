"""The intervention pages without JavaScript: motif form, clock correction form, suggestions."""
import datetime as dt

import pytest
from django.db import transaction
from django.test import Client

from audit.models import CustodyEvent
from devices.services import camera_register
from evidence.interventions.models import InterventionClockCorrection, InterventionLink
from evidence.interventions.services import intervention_create
from tests.auth import sign_in
from tests.evidence.test_api import make_recording

pytestmark = pytest.mark.django_db
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 20, 22, 14, tzinfo=UTC)


@pytest.fixture
def chef(make_user):
    return make_user("chef", role="supervisor")


@pytest.fixture
def setting(org, camera, officer, make_user, chef, local_store):
    durand = make_user("agent.durand", matricule="M043")
    with transaction.atomic():
        cam2 = camera_register(serial="BWC-0043", organisation=org, model="Demo")
        cam3 = camera_register(serial="BWC-0044", organisation=org, model="Demo")
    mine = make_recording(camera=camera, wearer=officer, started_at=T0, playback_key="playback/1.mp4",
                          track=[[45.5646, 5.9178, T0.timestamp()]])
    theirs = make_recording(camera=cam2, wearer=durand, started_at=T0 + dt.timedelta(seconds=5),
                            playback_key="playback/2.mp4")
    nearby = make_recording(camera=cam3, wearer=durand, started_at=T0 + dt.timedelta(seconds=20),
                            location=[45.5647, 5.9179])
    with transaction.atomic():
        intervention_create(by=chef, reference="PM-2026-0042", recordings=[mine, theirs], place="place Saint-Léger")
    return mine, theirs, nearby, durand


def _client(user):
    return sign_in(Client(raise_request_exception=False), user)


def test_one_motif_on_the_page_opens_one_consultation_per_recording_the_officer_may_see(setting, officer):
    mine, theirs, _nearby, _durand = setting

    response = _client(officer).post("/interventions/PM-2026-0042/consultation/",
                                     {"motif_choice": "Compte rendu de l'intervention par l'agent porteur"})

    assert response.status_code == 200
    assert response.content.count(b"<video") == 1 and f'data-recording="{mine.pk}"'.encode() in response.content
    assert list(CustodyEvent.objects.filter(action="recording.consulted").values_list("recording_id", flat=True)) == [
        mine.pk]


def test_without_a_motif_nothing_is_shown_nor_logged(setting, chef):
    response = _client(chef).post("/interventions/PM-2026-0042/consultation/", {"motif_choice": ""})

    assert response.status_code == 400 and b"<video" not in response.content
    assert not CustodyEvent.objects.filter(action="recording.consulted").exists()


def test_the_page_shows_the_timeline_and_the_map_data_and_no_media_before_a_motif(setting, chef):
    mine, theirs, _nearby, _durand = setting

    response = _client(chef).get("/interventions/PM-2026-0042/")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="iv-clip"') == 2 and "<video" not in html
    assert 'id="iv-data"' in html and "vendor/leaflet/leaflet.js" in html
    assert "place Saint-Léger" in html


def test_an_officer_cannot_correct_a_cameras_clock_a_supervisor_can(setting, officer, chef):
    mine, *_ = setting
    form = {"camera": mine.camera.serial, "seconds": "-2,5", "motif": "horloge en avance"}

    refused = _client(officer).post("/interventions/PM-2026-0042/horloge/", form)
    done = _client(chef).post("/interventions/PM-2026-0042/horloge/", form)

    assert refused.status_code == 403
    assert done.status_code == 302
    assert InterventionClockCorrection.objects.get().seconds == -2.5


def test_the_wearer_confirms_a_suggested_recording_of_their_own_on_the_page(setting, chef):
    _mine, _theirs, nearby, durand = setting

    page = _client(durand).get("/interventions/PM-2026-0042/")
    confirmed = _client(durand).post("/interventions/PM-2026-0042/suggestions/", {"recordings": [nearby.pk]})

    assert f'value="{nearby.pk}"'.encode() in page.content
    assert confirmed.status_code == 302
    link = InterventionLink.objects.get(recording=nearby)
    assert (link.source, link.linked_by) == ("suggestion", durand)


def test_the_list_shows_only_interventions_with_a_visible_recording(setting, make_user):
    stranger = make_user("agent.petit", matricule="M099")

    assert b"PM-2026-0042" not in _client(stranger).get("/interventions/").content
    assert b"PM-2026-0042" in _client(make_user("maire", role="mayor")).get("/interventions/").content


def test_the_motif_form_opens_only_the_recordings_chosen_and_at_most_six(setting, chef, camera, officer):
    mine, theirs, *_ = setting
    from evidence.interventions.models import Intervention
    from evidence.interventions.services import intervention_link

    extra = [make_recording(camera=camera, wearer=officer, started_at=T0 + dt.timedelta(seconds=40 + i),
                            playback_key=f"playback/x{i}.mp4") for i in range(5)]
    with transaction.atomic():
        intervention_link(intervention=Intervention.objects.get(), by=chef, recordings=extra)
    client = _client(chef)

    too_many = client.post("/interventions/PM-2026-0042/consultation/", {"motif_choice": "Contrôle"})
    chosen = client.post("/interventions/PM-2026-0042/consultation/",
                         {"motif_choice": "Contrôle", "recordings": [theirs.pk, extra[0].pk]})

    assert too_many.status_code == 400 and b"<video" not in too_many.content
    assert chosen.status_code == 200 and chosen.content.count(b"<video") == 2
    assert sorted(CustodyEvent.objects.filter(action="recording.consulted").values_list("recording_id", flat=True)) == \
        sorted([theirs.pk, extra[0].pk])


def test_the_recording_page_and_the_menu_lead_to_the_intervention(setting, officer, make_user):
    mine, _theirs, nearby, _durand = setting

    page = _client(officer).get(f"/enregistrements/{mine.pk}/").content.decode()
    assert 'href="/interventions/PM-2026-0042/"' in page and "voir l'intervention" in page
    assert 'href="/interventions/"' in page  # the menu
    unlinked = _client(make_user("chef2", role="supervisor")).get(f"/enregistrements/{nearby.pk}/").content.decode()
    assert "voir l'intervention" not in unlinked
    admin_page = _client(make_user("admin.tech", role="admin")).get("/").content.decode()
    assert 'href="/interventions/"' not in admin_page
