"""Motif before media (CSI R241-14): a consultation is logged, then media is served with Range."""
from tests.auth import sign_in
import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.access.services import CONSULTATION_MOTIFS
from evidence.models import Consultation, Recording

from .helpers import run_offload
from .test_api import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ready(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})
    assert run_offload(volume)[0] == 0
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.READY
    return rec


def _playback_bytes(store, rec):
    with store.local_path(rec.playback_key) as p:
        return p.read_bytes()


def test_consultation_is_logged_with_its_motif_before_any_byte_is_served(ready, officer, local_store):
    response = api(officer).post(f"/api/recordings/{ready.pk}/consultations/",
                                 {"motif": "Compte rendu de l'intervention"}, format="json")

    assert response.status_code == 201, response.content
    event = CustodyEvent.objects.get(action="recording.consulted")
    assert (event.recording_id, event.actor, event.motif) == (ready.pk, officer, "Compte rendu de l'intervention")
    media = api(officer).get(response.json()["media_url"])
    assert media.status_code == 200 and media["Content-Type"] == "video/mp4"
    assert b"".join(media.streaming_content) == _playback_bytes(local_store, ready)


def test_range_requests_serve_the_exact_bytes_for_instant_seeking(ready, officer, local_store):
    url = api(officer).post(f"/api/recordings/{ready.pk}/consultations/", {"motif": "contrôle"},
                            format="json").json()["media_url"]
    data = _playback_bytes(local_store, ready)

    part = api(officer).get(url, HTTP_RANGE="bytes=1000-1999")
    tail = api(officer).get(url, HTTP_RANGE="bytes=-500")
    beyond = api(officer).get(url, HTTP_RANGE=f"bytes={len(data) + 10}-")
    junk = api(officer).get(url, HTTP_RANGE="bytes=zzz")

    assert part.status_code == 206 and part["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert b"".join(part.streaming_content) == data[1000:2000]
    assert b"".join(tail.streaming_content) == data[-500:]
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(data)}"
    assert junk.status_code == 416


def test_a_consultation_without_motif_is_refused_and_nothing_is_logged(ready, officer):
    response = api(officer).post(f"/api/recordings/{ready.pk}/consultations/", {"motif": " "}, format="json")

    assert response.status_code == 400
    assert not Consultation.objects.exists()
    assert not CustodyEvent.objects.filter(action="recording.consulted").exists()


def test_the_media_url_is_bound_to_its_user_and_expires(ready, officer, make_user):
    url = api(officer).post(f"/api/recordings/{ready.pk}/consultations/", {"motif": "contrôle"},
                            format="json").json()["media_url"]
    chef = make_user("chef", role="supervisor")

    assert api(chef).get(url).status_code == 404  # someone else's link
    assert api().get(url).status_code == 404  # nobody's
    Consultation.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert api(officer).get(url).status_code == 404
    assert api(officer).get(url.replace("/video", "/poster")).status_code == 404


def test_forged_media_urls_reveal_nothing(ready, officer):
    assert api(officer).get("/media/c/forged-token/video").status_code == 404


def test_administrator_never_gets_media_and_other_officers_get_404(ready, make_user):
    admin = make_user("root", role="admin")
    other = make_user("agent.autre", matricule="M999")

    assert api(admin).post(f"/api/recordings/{ready.pk}/consultations/", {"motif": "curiosité"},
                           format="json").status_code == 404
    assert api(other).post(f"/api/recordings/{ready.pk}/consultations/", {"motif": "curiosité"},
                           format="json").status_code == 404
    assert not CustodyEvent.objects.filter(action="recording.consulted").exists()


def test_the_player_page_asks_the_motif_then_plays(ready, officer):
    client = Client()
    sign_in(client, officer)

    form = client.get(f"/enregistrements/{ready.pk}/lecture/").content.decode()
    assert "<video" not in form and "Motif" in form
    page = client.post(f"/enregistrements/{ready.pk}/lecture/",
                       {"motif_choice": CONSULTATION_MOTIFS[0], "motif_detail": "PV 12"}).content.decode()

    assert "<video" in page and "/media/c/" in page
    assert CustodyEvent.objects.get(action="recording.consulted").motif == f"{CONSULTATION_MOTIFS[0]} — PV 12"


def test_media_is_served_from_the_s3_store_too(make_volume, clip_library, camera, officer, s3_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})
    assert run_offload(volume)[0] == 0
    rec = Recording.objects.get()
    url = api(officer).post(f"/api/recordings/{rec.pk}/consultations/", {"motif": "contrôle"},
                            format="json").json()["media_url"]

    part = api(officer).get(url, HTTP_RANGE="bytes=10-109")

    with s3_store.local_path(rec.playback_key, rec.playback_version_id) as p:
        assert b"".join(part.streaming_content) == p.read_bytes()[10:110]


def test_custody_endpoint_lists_the_recordings_events_in_chain_order(ready, officer, make_user):
    api(officer).post(f"/api/recordings/{ready.pk}/consultations/", {"motif": "contrôle"}, format="json")

    events = api(officer).get(f"/api/recordings/{ready.pk}/custody/").json()

    actions = [e["action"] for e in events]
    assert actions[:3] == ["recording.collected", "recording.stored", "recording.verified"]
    assert actions[-1] == "recording.consulted" and events[-1]["motif"] == "contrôle"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert api(make_user("agent.x", matricule="MX")).get(f"/api/recordings/{ready.pk}/custody/").status_code == 404
