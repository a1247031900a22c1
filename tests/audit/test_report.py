"""Custody report of one recording: identifiers, hashes (file and streams), every entry, and the
verification result with the signed checkpoint it relies on — as a page and as a PDF."""
from __future__ import annotations

from tests.auth import sign_in

import pytest
from django.db import transaction
from django.test import Client

from audit.models import Checkpoint
from audit.services import custody_checkpoint_create, custody_event_append

from .helpers import append, guards_off, make_recording, raw

pytestmark = pytest.mark.django_db

STREAMS = {"original": {"v:0": "a" * 64, "a:0": "b" * 64}, "playback": {"v:0": "a" * 64, "a:0": "c" * 64}}


@pytest.fixture
def recording(camera, officer, make_user):
    rec = make_recording(camera=camera, wearer=officer, stream_hashes=STREAMS, camera_sha256="d" * 64,
                         camera_hash_matches=True, intervention="PM-2026-0042")
    lawyer = make_user("juriste", role="legal")
    with transaction.atomic():
        custody_event_append(action="recording.collected", subject=rec, actor_label="system:offload@dock1",
                             details={"source_path": rec.source_path})
        custody_event_append(action="recording.stored", subject=rec, actor_label="system:offload@dock1",
                             details={"sha256": rec.sha256})
    append(3)  # other entries in between
    custody_checkpoint_create()
    with transaction.atomic():
        custody_event_append(action="recording.consulted", subject=rec, actor=lawyer, motif="Plainte n° 2026-118")
    return rec


def login(user) -> Client:
    c = Client()
    sign_in(c, user)
    return c


def test_the_report_shows_identifiers_hashes_events_and_the_checkpoint_it_relies_on(recording, make_user):
    chef = make_user("chef", role="supervisor")

    response = login(chef).get(f"/enregistrements/{recording.pk}/tracabilite/")

    body = response.content.decode()
    report = response.context["report"]
    assert response.status_code == 200
    assert str(recording.uuid) in body and recording.sha256 in body and "d" * 64 in body
    assert "a" * 64 in body and "c" * 64 in body and "copie de lecture" in body
    assert [e["action"] for e in report["events"]] == ["collecte depuis la caméra", "stockage inaltérable",
                                                       "consultation"]
    assert "Plainte n° 2026-118" in body
    verification = report["verification"]
    assert verification["ok"], verification["lines"]
    assert "Intègre" in verification["headline"]
    checkpoint = Checkpoint.objects.get()
    assert any(f"point de contrôle signé n° {checkpoint.seq} " in line and checkpoint.head_hash in line
               for line in verification["lines"])
    assert any("postérieurs au dernier point de contrôle" in line for line in verification["lines"])


def test_the_report_pdf_is_served_for_a_visible_recording(recording, officer):
    response = login(officer).get(f"/enregistrements/{recording.pk}/tracabilite.pdf")

    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and len(response.content) > 2000


@pytest.mark.parametrize("url", ["/enregistrements/{}/tracabilite/", "/enregistrements/{}/tracabilite.pdf"])
def test_a_recording_the_user_may_not_see_answers_404(url, recording, make_user):
    other_officer = make_user("agent.durand", matricule="M043")
    admin = make_user("technicien", role="admin")

    assert login(other_officer).get(url.format(recording.pk)).status_code == 404
    assert login(admin).get(url.format(recording.pk)).status_code == 404


def test_the_report_says_when_the_entries_of_the_recording_were_altered(recording, make_user):
    chef = make_user("chef", role="supervisor")
    seq = recording.custody_events.order_by("seq").first().seq
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET details = %s WHERE seq = %s", ['{"source_path": "ailleurs"}', seq])

    report = login(chef).get(f"/enregistrements/{recording.pk}/tracabilite/").context["report"]

    assert not report["verification"]["ok"]
    assert "NON INTÈGRE" in report["verification"]["headline"]
    assert any(f"(entrée n° {seq})" in line for line in report["verification"]["lines"])
