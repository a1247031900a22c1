"""The pages: plain HTML forms that work without JavaScript (extraction, shares, access requests)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.disclosure import services
from evidence.disclosure.models import AccessRequest, Export, Share
from tests.auth import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user) -> Client:
    client = Client()
    client.raise_request_exception = False
    return sign_in(client, user)


FORM = {"purpose": "judicial", "recipient": "Parquet de Chambéry", "motif": "Réquisition", "redaction": "none",
        "scope": "recording", "kind": "package"}


def test_extraction_form_creates_a_package_and_shows_its_progress_then_download(recordings, users):
    client = client_for(users["supervisor"])
    rec = recordings[0]
    form = client.get(f"/enregistrements/{rec.pk}/extraction/")
    assert form.status_code == 200 and 'name="motif"' in form.content.decode()

    response = client.post(f"/enregistrements/{rec.pk}/extraction/", FORM)

    export = Export.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exports/{export.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert export.status == "ready" and f"/exports/{export.pk}/telecharger/" in page and export.sha256 in page
    listing = client.get("/extractions/").content.decode()
    assert f'href="/exports/{export.pk}/"' in listing
    data = client.get(f"/exports/{export.pk}/telecharger/")
    assert data.status_code == 200 and data["Content-Type"] == "application/zip"


def test_whole_intervention_can_be_extracted_at_once(recordings, users):
    client = client_for(users["legal"])
    client.post(f"/enregistrements/{recordings[0].pk}/extraction/", {**FORM, "scope": "intervention"})
    assert sorted(Export.objects.get().items.values_list("recording_id", flat=True)) == sorted(r.pk for r in recordings)


def test_queued_export_page_shows_a_progress_bar_refreshing_itself(recordings, users, monkeypatch):
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)  # no worker running
    client = client_for(users["legal"])
    client.post(f"/enregistrements/{recordings[0].pk}/extraction/", FORM)
    page = client.get(f"/exports/{Export.objects.get().pk}/").content.decode()
    assert '<progress max="100" value="0">' in page and 'http-equiv="refresh"' in page


def test_form_without_recipient_is_refused_with_a_message(recordings, users):
    client = client_for(users["legal"])
    page = client.post(f"/enregistrements/{recordings[0].pk}/extraction/", {**FORM, "recipient": ""}, follow=True)
    assert page.status_code == 200 and "Destinataire" in page.content.decode()
    assert not Export.objects.exists() and not CustodyEvent.objects.filter(action="recording.extracted").exists()


def test_single_file_extraction_from_the_page(recordings, users, local_store):
    client = client_for(users["legal"])
    page = client.post(f"/enregistrements/{recordings[0].pk}/extraction/", {**FORM, "kind": "file"})
    html = page.content.decode()
    assert page.status_code == 200 and "/extractions/t/" in html
    url = html.split('href="/extractions/t/', 1)[1].split('"', 1)[0]
    data = client.get(f"/extractions/t/{url}")
    with local_store.local_path(recordings[0].store_key) as p:
        assert b"".join(data.streaming_content) == p.read_bytes()


@pytest.mark.parametrize("role,status", [("officer", 403), ("other_officer", 404), ("dpo", 404), ("mayor", 403),
                                         ("admin", 404)])
def test_extraction_page_roles(recordings, users, role, status):
    assert client_for(users[role]).get(f"/enregistrements/{recordings[0].pk}/extraction/").status_code == status


def test_share_created_and_revoked_from_the_export_page(recordings, users):
    client = client_for(users["legal"])
    client.post(f"/enregistrements/{recordings[0].pk}/extraction/", FORM)
    export = Export.objects.get()
    response = client.post(f"/exports/{export.pk}/partages/", {
        "recipient": "Maître Dupont", "expires_on": (timezone.localdate() + dt.timedelta(days=5)).isoformat(),
        "max_downloads": "2"})
    page = client.get(response["Location"]).content.decode()
    share = Share.objects.get()
    assert "http://testserver/partage/" in page
    token_url = page.split("http://testserver", 1)[1].split("<", 1)[0]
    assert Client().get(token_url).status_code == 200
    assert "http://testserver/partage/" not in client.get(f"/exports/{export.pk}/").content.decode()  # shown once

    client.post(f"/partages/{share.pk}/revocation/", {"motif": "fin de la procédure"})
    assert Client().get(token_url).status_code == 410


def test_access_request_pages_for_the_dpo(recordings, users, clip_start):
    client = client_for(users["dpo"])
    response = client.post("/demandes-acces/nouvelle/", {
        "requester_name": "Jean Martin", "identity_checked": "yes", "identity_check_method": "passeport",
        "received_on": (timezone.localdate() - dt.timedelta(days=40)).isoformat(), "description": "Contrôle du soir",
        "officer": "M042"})
    r = AccessRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/demandes-acces/{r.pk}/"

    listing = client.get("/demandes-acces/").content.decode()
    assert "en retard" in listing and 'class="overdue"' in listing
    search = client.get(f"/demandes-acces/{r.pk}/", {"rechercher": "1", "officer": "M042",
                                                       "start": (clip_start - dt.timedelta(hours=1))
                                                       .strftime("%Y-%m-%dT%H:%M")}).content.decode()
    assert f'value="{recordings[0].pk}"' in search and f'value="{recordings[1].pk}"' in search
    client.post(f"/demandes-acces/{r.pk}/enregistrements/", {"recordings": [recordings[0].pk]})
    client.post(f"/demandes-acces/{r.pk}/decision/", {"decision": "partial", "legal_ground": "others_rights",
                                                       "note": "Tiers visibles"})
    page = client.get(f"/demandes-acces/{r.pk}/").content.decode()
    assert "Pas encore de copie floutée approuvée" in page  # said clearly, before any attempt
    client.post(f"/demandes-acces/{r.pk}/remise/", {"delivered_on": timezone.localdate().isoformat(),
                                                     "means": "courrier recommandé"})
    r.refresh_from_db()
    assert (r.decision, r.legal_ground, r.delivery_means) == ("partial", "others_rights", "courrier recommandé")
    assert r.closed_at is not None
    assert [e.action for e in CustodyEvent.objects.filter(subject_type="disclosure.accessrequest").order_by("seq")] == [
        "access_request.registered", "access_request.searched", "access_request.recordings_selected",
        "access_request.decided", "access_request.delivered"]


def test_mayor_reads_access_requests_but_cannot_act(users):
    client = client_for(users["mayor"])
    assert client.get("/demandes-acces/").status_code == 200
    assert client.get("/demandes-acces/nouvelle/").status_code == 403
    assert client_for(users["legal"]).get("/demandes-acces/").status_code == 403
