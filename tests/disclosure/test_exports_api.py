"""POST /api/exports/ and GET /api/exports/{id}/ (ARCHITECTURE.md §7): rules, roles, progress, failures."""
from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from django.db import transaction

from audit.models import CustodyEvent
from evidence.disclosure import services
from evidence.disclosure.models import Export

from .helpers import api, approved_copy, download, extract_zip, manifest, redaction_ready, run_verify

pytestmark = pytest.mark.django_db(transaction=True)


def body(recordings, **extra):
    return {"recordings": [r.pk for r in recordings], "purpose": "disciplinary", "recipient": "Conseil de discipline",
            "motif": "Procédure disciplinaire n° 12", "redaction": "none", **extra}


@pytest.mark.parametrize("missing", ["purpose", "recipient", "motif"])
def test_export_without_purpose_recipient_or_motif_is_refused(recordings, users, missing):
    response = api(users["legal"]).post("/api/exports/", body(recordings, **{missing: ""}), format="json")

    assert response.status_code == 400 and response.json()[missing][0].startswith("Indiquez")
    assert not Export.objects.exists() and not CustodyEvent.objects.filter(action="recording.extracted").exists()


def test_training_export_requires_full_anonymisation(recordings, users):
    response = api(users["legal"]).post("/api/exports/", body(recordings, purpose="training"), format="json")
    assert response.status_code == 400 and "anonymisée" in response.json()["redaction"][0]


def test_redacted_export_is_refused_naming_recordings_without_an_approved_copy(recordings, users):
    response = api(users["legal"]).post("/api/exports/", body(recordings, redaction="others"), format="json")

    assert response.status_code == 400
    message = response.json()["redaction"][0]
    assert "Aucune copie floutée approuvée" in message
    assert all(f"{r.pk}" in message for r in recordings)
    assert not Export.objects.exists()


def test_training_export_of_an_approved_anonymised_copy_verifies(recordings, users, local_store, tmp_path):
    if not redaction_ready():
        pytest.fail("evidence.redaction.services is missing: the redacted path cannot be tested")
    rec = recordings[1]
    derivative = approved_copy(rec, "all", users["legal"])
    response = api(users["legal"]).post("/api/exports/", body([rec], purpose="training", redaction="all"),
                                        format="json")
    assert response.status_code == 201, response.content
    detail = api(users["legal"]).get(f"/api/exports/{response.json()['id']}/").json()
    assert detail["status"] == "ready", detail
    root = extract_zip(download(api(users["legal"]), detail["download_url"]), tmp_path / "z")
    m = manifest(root)
    (meta,) = m["recordings"]
    with local_store.local_path(derivative.store_key) as p:
        assert (root / meta["file"]).read_bytes() == p.read_bytes()
    assert meta["redacted"]["sha256"] == derivative.sha256 != rec.sha256
    assert meta["redacted"]["original_sha256"] == rec.sha256
    result = run_verify(root)
    assert result.returncode == 0, result.stdout


def test_status_and_progress_while_queued_then_running_then_ready(recordings, users, monkeypatch):
    # No worker: the export stays queued, as the API shows it.
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)
    response = api(users["legal"]).post("/api/exports/", body(recordings), format="json")
    queued = api(users["legal"]).get(f"/api/exports/{response.json()['id']}/").json()
    assert (response.json()["status"], queued["status"], queued["progress"]) == ("queued", "queued", 0)
    assert "download_url" not in queued

    seen = []
    original = services.export_progress

    def spy(*, export, progress):
        original(export=export, progress=progress)
        seen.append(Export.objects.get(pk=export.pk).progress)

    monkeypatch.setattr(services, "export_progress", spy)
    export = services.export_build(export=Export.objects.get(pk=queued["id"]))

    assert export.status == "ready" and export.progress == 100
    assert seen == sorted(seen) and 0 < len(seen) and max(seen) < 100
    ready = api(users["legal"]).get(f"/api/exports/{export.pk}/").json()
    assert ready["status"] == "ready" and ready["download_url"].endswith(f"/api/exports/{export.pk}/download/")


def test_export_fails_loudly_when_the_store_returns_other_bytes(recordings, users, local_store, monkeypatch):
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)
    export_id = api(users["legal"]).post("/api/exports/", body(recordings), format="json").json()["id"]
    # Simulate silent corruption on disk, behind the store's back.
    path = local_store.objects / recordings[0].store_key
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    export = services.export_build(export=Export.objects.get(pk=export_id))

    assert export.status == "failed" and f"recording {recordings[0].pk}" in export.status_message
    # Nothing half-built was committed to the write-once store.
    assert not list((local_store.objects / "exports").rglob("*.zip"))
    assert CustodyEvent.objects.filter(action="export.failed", subject_id=str(export_id)).exists()
    assert api(users["legal"]).get(f"/api/exports/{export_id}/").json()["status"] == "failed"


@pytest.mark.parametrize("role,expected", [
    ("officer", 403), ("other_officer", 404), ("supervisor", 201), ("legal", 201), ("dpo", 403), ("mayor", 403),
    ("admin", 404)])
def test_export_creation_role_matrix(recordings, users, role, expected, monkeypatch):
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)
    response = api(users[role]).post("/api/exports/", body(recordings[:1]), format="json")
    assert response.status_code == expected, response.content


@pytest.mark.parametrize("role,expected", [
    ("officer", 404), ("other_officer", 404), ("supervisor", 200), ("legal", 200), ("dpo", 404), ("mayor", 200),
    ("admin", 404)])
def test_export_read_role_matrix(recordings, users, role, expected, monkeypatch):
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)
    export_id = api(users["legal"]).post("/api/exports/", body(recordings[:1]), format="json").json()["id"]
    assert api(users[role]).get(f"/api/exports/{export_id}/").status_code == expected
    assert api(users[role]).get(f"/api/exports/{export_id}/download/").status_code == 404  # not ready yet


@pytest.mark.parametrize("role", ["supervisor", "legal", "dpo", "mayor"])
def test_other_organisation_cannot_export_or_read(recordings, users, other_org_users, role, monkeypatch):
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)
    export_id = api(users["legal"]).post("/api/exports/", body(recordings[:1]), format="json").json()["id"]
    outsider = other_org_users[role]
    assert api(outsider).post("/api/exports/", body(recordings[:1]), format="json").status_code == 404
    assert api(outsider).get(f"/api/exports/{export_id}/").status_code == 404
    assert api(outsider).get(f"/api/exports/{export_id}/download/").status_code == 404


def test_erased_recording_cannot_be_exported(recordings, users):
    from evidence.models import Recording

    Recording.objects.filter(pk=recordings[0].pk).update(status=Recording.Status.ERASED)
    response = api(users["legal"]).post("/api/exports/", body(recordings[:1]), format="json")
    assert response.status_code == 400 and "non extractible" in response.json()["recordings"][0]


def test_packages_follow_their_recordings_fate_unless_held(recordings, users, local_store, time_machine):
    from evidence import services as evidence_services

    made = [api(users["legal"]).post("/api/exports/", body([r]), format="json").json()["id"] for r in recordings]
    first, second = (Export.objects.get(pk=pk) for pk in made)
    assert first.retain_until == recordings[0].retain_until  # locked until its recording's retention end
    with transaction.atomic():
        evidence_services.hold_place(by=users["legal"], procedure="judicial", reference="PV 2026/9",
                                     recording=recordings[1])

    time_machine.move_to(first.retain_until - dt.timedelta(seconds=1))
    assert evidence_services.retention_sweep().exports_erased == []
    time_machine.move_to(max(first.retain_until, second.retain_until) + dt.timedelta(seconds=1))
    erased = evidence_services.retention_sweep().exports_erased

    assert erased == [first.pk]  # the second one's recording is held for a procedure
    first.refresh_from_db()
    assert first.status == "erased" and not local_store.exists(first.store_key)
    assert local_store.exists(second.store_key)
    assert CustodyEvent.objects.filter(action="export.erased", subject_id=str(first.pk)).exists()
    assert api(users["legal"]).get(f"/api/exports/{first.pk}/download/").status_code == 404
