"""Extraction for a procedure (CSI R241-12, R241-13; LEGAL.md rule 6): purpose, recipient and motif
stated and logged in the register before anything is produced; a short-lived link to the original."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import CustodyEvent
from audit.register import register_kind_of
from evidence.disclosure import services
from evidence.disclosure.models import Extraction

from .helpers import api, stored_bytes

pytestmark = pytest.mark.django_db(transaction=True)

BODY = {"purpose": "judicial", "recipient": "Parquet de Chambéry", "motif": "Réquisition PV 2026/01234"}


def test_extraction_is_logged_first_then_serves_the_original_bytes(recordings, users, local_store):
    rec = recordings[0]
    response = api(users["legal"]).post(f"/api/recordings/{rec.pk}/extractions/", BODY, format="json")

    assert response.status_code == 201, response.content
    assert {"download_url", "expires_at"} <= set(response.json())
    event = CustodyEvent.objects.get(action="recording.extracted")
    assert (event.recording_id, event.actor, event.motif, event.recipients) == (
        rec.pk, users["legal"], BODY["motif"], [BODY["recipient"]])
    assert register_kind_of(event.action) == "extraction" and event.details["purpose"] == "judicial"
    assert not CustodyEvent.objects.filter(action="extraction.downloaded").exists()  # nothing served yet

    data = b"".join(api(users["legal"]).get(response.json()["download_url"]).streaming_content)
    assert data == stored_bytes(local_store, rec.store_key)
    assert CustodyEvent.objects.filter(action="extraction.downloaded", recording=rec).count() == 1


def test_each_download_is_logged_and_range_is_supported(recordings, users, local_store):
    rec = recordings[0]
    url = api(users["supervisor"]).post(f"/api/recordings/{rec.pk}/extractions/", BODY,
                                        format="json").json()["download_url"]
    original = stored_bytes(local_store, rec.store_key)

    part = api(users["supervisor"]).get(url, HTTP_RANGE="bytes=100-199")
    beyond = api(users["supervisor"]).get(url, HTTP_RANGE=f"bytes={len(original) + 5}-")

    assert part.status_code == 206 and b"".join(part.streaming_content) == original[100:200]
    assert beyond.status_code == 416
    logged = CustodyEvent.objects.filter(action="extraction.downloaded", recording=rec)
    assert [e.details["range"] for e in logged] == [f"bytes 100-199/{len(original)}"]
    assert [e.details["bytes"] for e in logged] == [100] and logged[0].motif == BODY["motif"]
    assert Extraction.objects.get().downloads == 1


@pytest.mark.parametrize("missing,message", [
    ("purpose", "Indiquez la finalité"), ("recipient", "Indiquez le destinataire"), ("motif", "Indiquez le motif")])
def test_extraction_without_purpose_recipient_or_motif_is_refused(recordings, users, missing, message):
    body = {**BODY, missing: ""}
    response = api(users["legal"]).post(f"/api/recordings/{recordings[0].pk}/extractions/", body, format="json")

    assert response.status_code == 400
    assert message in response.json()[missing][0]
    assert not CustodyEvent.objects.filter(action="recording.extracted").exists()
    assert not Extraction.objects.exists()


def test_unknown_purpose_is_refused(recordings, users):
    response = api(users["legal"]).post(f"/api/recordings/{recordings[0].pk}/extractions/",
                                        {**BODY, "purpose": "curiosity"}, format="json")
    assert response.status_code == 400 and "finalité" in response.json()["purpose"][0]


def test_training_extraction_requires_full_anonymisation(recordings, users):
    rec = recordings[0]
    plain = api(users["legal"]).post(f"/api/recordings/{rec.pk}/extractions/", {**BODY, "purpose": "training"},
                                     format="json")
    others = api(users["legal"]).post(f"/api/recordings/{rec.pk}/extractions/",
                                      {**BODY, "purpose": "training", "redaction": "others"}, format="json")
    anonymised = api(users["legal"]).post(f"/api/recordings/{rec.pk}/extractions/",
                                          {**BODY, "purpose": "training", "redaction": "all"}, format="json")

    assert plain.status_code == others.status_code == 400
    assert "entièrement anonymisée" in plain.json()["redaction"][0]
    # No approved anonymised copy exists for this recording: refused, naming it.
    assert anonymised.status_code == 400
    assert f"n° {rec.pk}" in anonymised.json()["redaction"][0]
    assert not CustodyEvent.objects.filter(action="recording.extracted").exists()


def test_download_link_expires_and_is_bound_to_its_author(recordings, users):
    rec = recordings[0]
    extraction, token = services.extraction_create(recording=rec, by=users["legal"], now=timezone.now()
                                                   - services.EXTRACTION_TTL - dt.timedelta(seconds=1), **BODY)
    live, live_token = services.extraction_create(recording=rec, by=users["legal"], **BODY)
    from django.urls import reverse

    assert api(users["legal"]).get(reverse("extraction-download", args=[token])).status_code == 404
    assert api(users["supervisor"]).get(reverse("extraction-download", args=[live_token])).status_code == 404
    assert api().get(reverse("extraction-download", args=[live_token])).status_code == 404
    assert api(users["legal"]).get(reverse("extraction-download", args=[live_token])).status_code == 200


@pytest.mark.parametrize("role,own,expected", [
    ("officer", True, 403),        # sees their own recording, may not extract
    ("other_officer", False, 404),  # does not see it at all
    ("supervisor", True, 201),
    ("legal", True, 201),
    ("dpo", False, 404),            # issue 15: sees only the recordings of open access requests
    ("mayor", True, 403),
    ("admin", False, 404),          # never sees media
])
def test_extraction_role_matrix(recordings, users, role, own, expected):
    response = api(users[role]).post(f"/api/recordings/{recordings[0].pk}/extractions/", BODY, format="json")
    assert response.status_code == expected, response.content
    if expected == 404:
        assert b"sha256" not in response.content


@pytest.mark.parametrize("role", ["supervisor", "legal", "dpo", "mayor"])
def test_other_organisation_gets_404(recordings, other_org_users, role):
    response = api(other_org_users[role]).post(f"/api/recordings/{recordings[0].pk}/extractions/", BODY,
                                               format="json")
    assert response.status_code == 404
