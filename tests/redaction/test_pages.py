"""Redaction pages: access (404 for anyone who may not redact), motif before media, the editor's
plain-form save, progress, approval."""
import json

import pytest
from django.test import Client

from audit.models import CustodyEvent
from evidence.redaction.models import Derivative, RedactionJob, Track
from tests.auth import sign_in

from .helpers import analysed_job, dpo_on_request, offload_clip, render

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recording(make_volume, carphone_clip, camera, local_store):
    return offload_clip(make_volume, carphone_clip)


@pytest.fixture
def chef(make_user):
    return make_user("chef.durand", role="supervisor")


@pytest.fixture
def job(recording, chef):
    return analysed_job(recording, chef, mode="others")


def client_for(user):
    return sign_in(Client(), user)


def _consult(client, job):
    response = client.post(f"/floutage/{job.pk}/consultation/", {
        "motif_choice": "Demande d'accès d'une personne filmée", "motif_detail": "demande n° 7", "next": "editor"})
    assert response.status_code == 302 and response["Location"].endswith(f"/floutage/{job.pk}/editeur/")
    token = client.session[f"redaction-consultation-{job.recording_id}"]
    return token


def test_only_supervisors_legal_staff_and_the_dpo_reach_redaction_pages(job, recording, chef, officer, make_user):
    from accounts.services import organisation_create
    from django.db import transaction

    with transaction.atomic():
        other_org = organisation_create(slug="annecy", name="Police municipale d'Annecy")
    outsiders = [officer,  # the wearer himself
                 make_user("maire", role="mayor"), make_user("admin.tech", role="admin"),
                 make_user("chef.annecy", role="supervisor", organisation=other_org)]
    urls = [f"/floutage/{job.pk}/", f"/floutage/{job.pk}/editeur/", f"/enregistrements/{recording.pk}/floutage/"]
    for user in outsiders:
        c = client_for(user)
        for url in urls:
            assert c.get(url).status_code == 404, (user.username, url)
        assert c.post(f"/floutage/{job.pk}/production/").status_code == 404
        assert c.post(f"/floutage/{job.pk}/relecture/", {"boxes": "[]"}).status_code == 404
    for role in ("supervisor", "legal", "dpo"):
        user = dpo_on_request(recording, make_user, "u.dpo") if role == "dpo" else make_user(f"u.{role}", role=role)
        c = client_for(user)
        assert all(c.get(url).status_code == 200 for url in urls), role
    assert client_for(officer).get("/floutage/").status_code == 404
    listing = client_for(chef).get("/floutage/")
    assert listing.status_code == 200 and f'href="/floutage/{job.pk}/"' in listing.content.decode()


def test_a_request_through_the_page_needs_a_motif_and_starts_the_detection(recording, chef):
    c = client_for(chef)
    refused = c.post(f"/enregistrements/{recording.pk}/floutage/", {"mode": "all", "motif": ""})
    assert refused.status_code == 400 and "motif" in refused.content.decode()
    assert not RedactionJob.objects.exists()
    response = c.post(f"/enregistrements/{recording.pk}/floutage/", {"mode": "all", "motif": "Formation des agents"})
    job = RedactionJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/floutage/{job.pk}/"
    assert job.status == RedactionJob.Status.REVIEW and job.tracks.exists()
    page = c.get(f"/floutage/{job.pk}/").content.decode()
    assert "à relire" in page and "Relire les zones floutées" in page


def test_progress_is_shown_while_a_step_runs(job, chef):
    RedactionJob.objects.filter(pk=job.pk).update(status=RedactionJob.Status.RENDERING, progress=42)
    page = client_for(chef).get(f"/floutage/{job.pk}/").content.decode()
    assert 'value="42"' in page and "42 %" in page and 'http-equiv="refresh"' in page


def test_editor_frames_are_served_only_after_a_consultation_with_its_motif(job, chef, make_user):
    c = client_for(chef)
    page = c.get(f"/floutage/{job.pk}/editeur/").content.decode()
    assert 'id="redaction-data"' not in page and "motif_choice" in page
    assert not CustodyEvent.objects.filter(action="recording.consulted").exists()
    assert c.get(f"/floutage/m/forged/{job.pk}/0.jpg").status_code == 404

    token = _consult(c, job)
    event = CustodyEvent.objects.get(action="recording.consulted")
    assert event.actor == chef and "demande n° 7" in event.motif
    page = c.get(f"/floutage/{job.pk}/editeur/").content.decode()
    assert 'id="redaction-data"' in page and "redaction/editor.js" in page
    image = c.get(f"/floutage/m/{token}/{job.pk}/10.jpg")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"
    assert c.get(f"/floutage/m/{token}/{job.pk}/{job.frame_count}.jpg").status_code == 404
    # The token is bound to its user: a colleague with the same rights gets nothing with it.
    assert client_for(make_user("juriste", role="legal")).get(f"/floutage/m/{token}/{job.pk}/10.jpg").status_code == 404


def test_a_box_past_the_frames_edge_keeps_its_size_through_a_review_and_absurd_ones_are_brought_back(job, chef):
    """Issue 16: a face leaving the frame keeps its size beyond the edge (detection._unclipped); the
    editor sends every track back on save, which must not cut it down again."""
    w, h = job.width, job.height
    edits = [{"number": None, "keyframes": [[4, w - 20, 10, 60, 40], [8, -30, h - 10, 50, 40],
                                            [12, 10 * w, -5 * h, 9 * w, 40]]}]
    response = client_for(chef).post(f"/floutage/{job.pk}/relecture/", {"boxes": json.dumps(edits)})
    assert response.status_code == 302
    manual = job.tracks.get(kind=Track.Kind.MANUAL)
    assert manual.keyframes == [[4, w - 20, 10, 60, 40], [8, -30, h - 10, 50, 40], [12, w - 2, 2 - 40, w, 40]]


def test_the_editor_form_moves_adds_removes_boxes_and_keeps_or_drops_tracks(job, chef):
    c = client_for(chef)
    tracks = list(job.tracks.all())
    face = tracks[0]
    moved = [list(k) for k in face.keyframes]
    moved[0] = [moved[0][0], moved[0][1] + 10, moved[0][2] + 5, moved[0][3], moved[0][4]]
    edits = [{"number": face.number, "keyframes": moved},
             {"number": None, "keyframes": [[20, 300, 10, 40, 30], [60, 310, 12, 40, 30]]}]
    if len(tracks) > 1:
        edits.append({"number": tracks[1].number, "keyframes": []})
    form = {"boxes": json.dumps(edits), f"seen_{face.number}": "1", f"kept_{face.number}": "on",
            f"subject_{face.number}": "on", "mute_start": ["0,5", ""], "mute_end": ["1.5", ""]}
    response = c.post(f"/floutage/{job.pk}/relecture/", form)
    assert response.status_code == 302
    face.refresh_from_db()
    assert face.keyframes == moved and face.is_subject and face.kept
    manual = job.tracks.get(kind=Track.Kind.MANUAL)
    assert manual.keyframes == [[20, 300, 10, 40, 30], [60, 310, 12, 40, 30]] and manual.blurred
    if len(tracks) > 1:
        assert not job.tracks.filter(number=tracks[1].number).exists()
    job.refresh_from_db()
    assert job.mute_ranges == [[0.5, 1.5]]
    event = CustodyEvent.objects.get(action="redaction.reviewed")
    assert event.actor == chef and event.details["added"] == [manual.number]
    assert event.details["boxes_edited"] == [face.number] and event.details["subject"] == [face.number]

    # Unticking "garder" drops the track (a false detection): it is no longer blurred.
    c.post(f"/floutage/{job.pk}/relecture/", {f"seen_{manual.number}": "1"})
    manual.refresh_from_db()
    assert not manual.kept and not manual.blurred


def test_bad_mute_ranges_are_refused_with_a_clear_message(job, chef):
    c = client_for(chef)
    response = c.post(f"/floutage/{job.pk}/relecture/", {"mute_start": ["3"], "mute_end": ["1"]}, follow=True)
    assert "la fin doit suivre le début" in response.content.decode()
    job.refresh_from_db()
    assert job.mute_ranges == []


def test_the_approver_watches_the_copy_then_approves_it(job, chef, make_user):
    face = job.tracks.first()
    from evidence.redaction import services

    services.redaction_review_save(job=job, by=chef, decisions={face.number: {"kept": True, "is_subject": True}})
    derivative = render(job, chef)
    dpo = dpo_on_request(job.recording, make_user)
    c = client_for(dpo)
    page = c.get(f"/floutage/{job.pk}/").content.decode()
    assert "à approuver" in page and derivative.sha256 in page and "<video" not in page  # motif first
    token = _consult(c, job)
    page = c.get(f"/floutage/{job.pk}/").content.decode()
    url = f"/floutage/m/{token}/copies/{derivative.pk}.mp4"
    assert url in page
    part = c.get(url, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and len(b"".join(part.streaming_content)) == 100
    assert derivative.check_passed is True and "aucun visage reconnaissable" in page
    # Approving before having played the copy through is refused, with a log entry.
    refused = c.post(f"/floutage/copies/{derivative.pk}/approbation/", {"motif": "Vérifiée"}, follow=True)
    assert "visionnez la copie en entier" in refused.content.decode()
    assert CustodyEvent.objects.get(action="redaction.approval_refused").details["reason"] == "not_watched"
    # The player reports the seconds actually played.
    watched = c.post(f"/floutage/copies/{derivative.pk}/visionnage/", {"played": str(job.duration)})
    assert watched.status_code == 200 and json.loads(watched.content)["coverage"] == 1.0
    assert CustodyEvent.objects.get(action="redaction.copy_watched").actor == dpo
    response = c.post(f"/floutage/copies/{derivative.pk}/approbation/", {"motif": "Vérifiée"})
    assert response.status_code == 302
    derivative.refresh_from_db()
    assert derivative.approved_by == dpo and derivative.approval_motif == "Vérifiée"
    assert client_for(make_user("agent.x", role="officer")).post(
        f"/floutage/copies/{derivative.pk}/approbation/").status_code == 404
    # Covering the faces left and reporting the viewing: 404 for whoever may not redact this copy.
    from accounts.services import organisation_create
    from django.db import transaction

    with transaction.atomic():
        other_org = organisation_create(slug="annecy", name="Police municipale d'Annecy")
    for outsider in (make_user("agent.y", role="officer"), make_user("maire.z", role="mayor"),
                     make_user("chef.annecy", role="supervisor", organisation=other_org)):
        c = client_for(outsider)
        assert c.post(f"/floutage/copies/{derivative.pk}/couvrir/").status_code == 404, outsider.username
        assert c.post(f"/floutage/copies/{derivative.pk}/visionnage/", {"played": "1"}).status_code == 404
    assert CustodyEvent.objects.filter(action="redaction.copy_watched").count() == 1
    assert Derivative.objects.filter(approved_at__isnull=False).count() == 1


def test_the_editor_shows_the_frames_the_copy_is_made_of(job, chef, recording, local_store):
    """Issue 16: the editor's frame 0 showed the clip's frame 1 (a seek to the middle of a frame)."""
    import cv2
    import numpy as np

    from .helpers import frames

    c = client_for(chef)
    token = _consult(c, job)
    with local_store.local_path(recording.store_key) as path:
        decoded, _, _ = frames(path)
    assert len(decoded) == job.frame_count
    for k in (0, 1, job.frame_count // 2, job.frame_count - 1):
        image = c.get(f"/floutage/m/{token}/{job.pk}/{k}.jpg")
        assert image.status_code == 200, k
        shown = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR).astype(float)
        errors = [float(np.mean((shown - f.astype(float)) ** 2)) for f in decoded]
        assert int(np.argmin(errors)) == k, (k, int(np.argmin(errors)))


def test_the_requester_is_refused_approval_with_a_clear_message_on_the_page(job, chef):
    face = job.tracks.first()
    from evidence.redaction import services

    services.redaction_review_save(job=job, by=chef, decisions={face.number: {"kept": True, "is_subject": True}})
    derivative = render(job, chef)
    c = client_for(chef)
    page = c.get(f"/floutage/{job.pk}/").content.decode()
    assert "une autre personne habilitée doit l'approuver" in page
    response = c.post(f"/floutage/copies/{derivative.pk}/approbation/", {}, follow=True)
    assert "Approbation refusée" in response.content.decode()
    assert "contrôle à quatre yeux" in response.content.decode()
    derivative.refresh_from_db()
    assert not derivative.approved
    event = CustodyEvent.objects.get(action="redaction.approval_refused")
    assert event.actor == chef and event.details["reason"] == "requester"
