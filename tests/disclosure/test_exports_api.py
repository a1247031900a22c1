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


def test_a_training_package_names_no_person_place_intervention_camera_nor_time(recordings, users, local_store,
                                                                              tmp_path, org):
    """Issue 15 (LEGAL.md rule 6, CSI R241-13): files, file names, manifest, container metadata."""
    import json
    import subprocess

    if not redaction_ready():
        pytest.fail("evidence.redaction.services is missing: the redacted path cannot be tested")
    rec = recordings[0]  # sound, a place, an intervention number, camera BWC-0042, officer M042
    derivative = approved_copy(rec, "all", users["legal"])
    response = api(users["legal"]).post("/api/exports/", body([rec], purpose="training", redaction="all"),
                                        format="json")
    assert response.status_code == 201, response.content
    detail = api(users["legal"]).get(f"/api/exports/{response.json()['id']}/").json()
    assert detail["status"] == "ready", detail
    root = extract_zip(download(api(users["legal"]), detail["download_url"]), tmp_path / "z")

    m = manifest(root)
    assert m["format"] == "temoin-training/1" and "recordings" not in m and "custody" not in m
    (video,) = m["videos"]
    assert video["file"] == "videos/video-01.mp4" and video["audio"] == "removed"
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert names == sorted(["videos/video-01.mp4", "public_key.pem", "verify.py", "verify.html", "LISEZMOI.txt",
                            "manifest.json", "manifest.sig"])
    secrets = ["M042", users["officer"].username, "BWC-0042", "INT-2026-17", "45.5646", "5.9178", org.name,
               org.slug, "Chambéry", users["legal"].username, derivative.approved_by.username, str(rec.uuid),
               rec.sha256, derivative.sha256, f"{rec.started_at:%Y-%m-%d}", f"{rec.started_at:%d/%m/%Y}",
               f"{rec.started_at:%H:%M}"]
    for p in root.rglob("*"):
        data = p.read_bytes() if p.is_file() else b""
        for secret in secrets:
            assert secret.encode() not in data and secret not in str(p.relative_to(root)), (secret, p)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(root / video["file"])],
        capture_output=True, check=True).stdout)
    assert [s["codec_type"] for s in probe["streams"]] == ["video"]  # no sound, no data (GPS) track
    tags = {**probe["format"].get("tags", {}), **probe["streams"][0].get("tags", {})}
    assert not {k for k in tags if k.lower() not in ("major_brand", "minor_version", "compatible_brands",
                                                     "language", "vendor_id", "handler_name")}, tags
    assert tags.get("handler_name", "") in ("", "VideoHandler") and "creation_time" not in tags
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


# The DPO sees only the recordings of open access requests (issue 15): 404, as for anyone who cannot see them.
@pytest.mark.parametrize("role,expected", [
    ("officer", 403), ("other_officer", 404), ("supervisor", 201), ("legal", 201), ("dpo", 404), ("mayor", 403),
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
    from evidence.retention.holds import hold_place
    from evidence.retention.sweep import retention_sweep

    made = [api(users["legal"]).post("/api/exports/", body([r]), format="json").json()["id"] for r in recordings]
    first, second = (Export.objects.get(pk=pk) for pk in made)
    assert first.retain_until == recordings[0].retain_until  # locked until its recording's retention end
    with transaction.atomic():
        hold_place(by=users["legal"], procedure="judicial", reference="PV 2026/9",
                                     recording=recordings[1])

    time_machine.move_to(first.retain_until - dt.timedelta(seconds=1))
    assert retention_sweep().exports_erased == []
    time_machine.move_to(max(first.retain_until, second.retain_until) + dt.timedelta(seconds=1))
    erased = retention_sweep().exports_erased

    assert erased == [first.pk]  # the second one's recording is held for a procedure
    first.refresh_from_db()
    assert first.status == "erased" and not local_store.exists(first.store_key)
    assert local_store.exists(second.store_key)
    assert CustodyEvent.objects.filter(action="export.erased", subject_id=str(first.pk)).exists()
    assert api(users["legal"]).get(f"/api/exports/{first.pk}/download/").status_code == 404


def test_hostile_bodies_get_a_400_with_a_message_never_a_500_nor_a_rounded_number(recordings, users):
    """Issue 17 finding 5 on the disclosure routes: a JSON list for an object, NUL in a recipient,
    7.9 for a recording number, a number beyond 64 bits."""
    client = api(users["legal"])
    rec = recordings[0]
    as_list = client.post("/api/exports/", [body(recordings)], format="json")
    nul = client.post("/api/exports/", body(recordings, recipient="Parquet\x00de Chambéry"), format="json")
    fraction = client.post("/api/exports/", {**body(recordings), "recordings": [rec.pk + 0.9]}, format="json")
    huge = client.post("/api/exports/", {**body(recordings), "recordings": [2 ** 64]}, format="json")
    extraction = client.post(f"/api/recordings/{rec.pk}/extractions/", ["judicial"], format="json")
    dpo = api(users["dpo"]).post("/api/access-requests/", {
        "requester_name": "Jean Martin", "identity_checked": True, "identity_check_method": "CNI",
        "received_on": "2026-01-31", "description": "contrôle", "radius_m": 7.9}, format="json")

    # Refused by the API's strict JSON parser (config/parsers.py) before any view reads it.
    assert as_list.status_code == 400 and "must be a JSON object" in as_list.json()["detail"]
    assert nul.status_code == 400 and "NUL character" in nul.json()["detail"]
    assert fraction.status_code == 400 and "recordings" in fraction.json()
    assert huge.status_code == 400 and "recordings" in huge.json()
    assert extraction.status_code == 400 and "must be a JSON object" in extraction.json()["detail"]
    assert dpo.status_code == 400 and "radius_m" in dpo.json()
    assert not Export.objects.exists()


def test_the_export_list_is_paginated_with_a_bounded_number_of_queries(recordings, users, monkeypatch,
                                                                       django_assert_max_num_queries):
    """Issue 15 item 6: no more ``[:200]`` and one query per export."""
    monkeypatch.setattr(services, "export_enqueue", lambda **kw: None)  # stays queued: nothing built
    for n in range(51):
        services.export_create(recordings=recordings, by=users["legal"], purpose="judicial",
                               recipient="Parquet de Chambéry", motif=f"Réquisition n° {n}")
    client = api(users["legal"])
    with django_assert_max_num_queries(12):
        first = client.get("/api/exports/").json()
    second = client.get("/api/exports/?page=2").json()

    assert first["count"] == 51 and len(first["results"]) == 50 and first["next"].endswith("?page=2")
    assert len(second["results"]) == 1 and second["next"] is None
    assert all(len(e["recordings"]) == 2 for e in first["results"])
