"""A partner uploads with ``tuspy`` (the tus project's Python client, not our code) against the real
HTTP server: chunks, an interruption, a resume from HEAD's offset; the file ends verified, under
custody, with its source and regime (issue 22, "Done when")."""
from __future__ import annotations

import hashlib
import socket
from urllib.parse import urlsplit

import pytest
import requests
from tusclient import client as tus

from audit.models import CustodyEvent
from evidence.models import Recording
from evidence.requisitions.models import RequisitionUpload
from evidence.requisitions.staging import staging_dir

from ..evidence.helpers import stored_bytes
from .conftest import BIG_SIZE, requisition_body

pytestmark = pytest.mark.django_db(transaction=True)

CHUNK = 32 * 1024 * 1024


def issue_live(live_server, user, **extra) -> dict:
    response = requests.post(f"{live_server.url}/api/requisitions/", json=requisition_body(**extra),
                             headers={"Authorization": f"Token {user.api_token}"}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def get_live(live_server, user, path: str) -> dict:
    response = requests.get(f"{live_server.url}{path}", headers={"Authorization": f"Token {user.api_token}"},
                            timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def patch_cut_short(url: str, offset: int, data: bytes, announced: int) -> None:
    """A PATCH whose connection drops after ``len(data)`` of ``announced`` bytes (a bad network)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        head = (f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
                f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
                f"Content-Length: {announced}\r\nConnection: close\r\n\r\n")
        sock.sendall(head.encode() + data)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass


def test_a_300_mb_file_uploaded_in_chunks_with_an_interruption_ends_verified_under_custody(
        live_server, local_store, supervisor, big_file):
    path, sha = big_file
    created = issue_live(live_server, supervisor)
    upload_url = created["upload_url"]

    # A first client sends three chunks, then stops.
    first = tus.TusClient(upload_url).uploader(
        file_path=str(path), chunk_size=CHUNK, metadata={"filename": "bus-ligne-3.mp4", "sha256": sha})
    first.upload(stop_at=3 * CHUNK)
    assert first.offset == 3 * CHUNK
    # Then the connection drops in the middle of a PATCH: what arrived is kept.
    with open(path, "rb") as fh:
        fh.seek(3 * CHUNK)
        patch_cut_short(first.url, 3 * CHUNK, fh.read(5_000_000), announced=CHUNK)
    # A new client (another process, the next day) resumes from the offset HEAD gives.
    second = tus.TusClient(upload_url).uploader(file_path=str(path), url=first.url, chunk_size=CHUNK)
    assert 3 * CHUNK < second.offset <= 3 * CHUNK + 5_000_000
    second.upload()
    assert second.offset == BIG_SIZE

    upload = RequisitionUpload.objects.get(uid=first.url.rstrip("/").rsplit("/", 1)[1])
    assert upload.status == RequisitionUpload.Status.STORED
    recording = upload.recording
    assert (recording.source, recording.regime) == ("requisition", "videoprotection")
    assert recording.sha256 == sha and recording.size == BIG_SIZE
    assert recording.wearer is None and recording.camera.serial == "PARTNER-RESEAU-DE-BUS-STAC"
    # Random bytes are no video: stored, verified, and marked unplayable by the media step.
    assert recording.status == Recording.Status.UNPLAYABLE
    assert local_store.digest(recording.store_key) == (sha, BIG_SIZE)
    actions = list(CustodyEvent.objects.filter(recording=recording).order_by("seq").values_list("action", flat=True))
    assert actions[:3] == ["recording.collected", "recording.stored", "recording.verified"]
    verified = CustodyEvent.objects.get(recording=recording, action="recording.verified")
    assert verified.details["read_back_sha256"] == sha and verified.details["partner_hash_matches"] is True
    assert not (staging_dir() / upload.uid).exists()

    detail = get_live(live_server, supervisor, f"/api/requisitions/{created['id']}/")
    assert detail["status"] == "open" and detail["reference"] == "PV 2026/1234"
    assert [{k: f[k] for k in ("filename", "size", "sha256", "recording")} for f in detail["files"]] == [
        {"filename": "bus-ligne-3.mp4", "size": BIG_SIZE, "sha256": sha, "recording": recording.pk}]
    rec = get_live(live_server, supervisor, f"/api/recordings/{recording.pk}/")
    assert (rec["source"], rec["regime"], rec["sha256"]) == ("requisition", "videoprotection", sha)


def test_a_real_clip_uploaded_by_a_partner_goes_through_media_processing(
        live_server, local_store, legal, clip_library):
    data = clip_library["h264"].read_bytes()
    created = issue_live(live_server, legal, regime="body_worn", partner="Commune de La Motte-Servolex")
    uploader = tus.TusClient(created["upload_url"]).uploader(
        file_path=str(clip_library["h264"]), chunk_size=len(data) // 3 + 1,
        metadata={"filename": "camera-pieton.mp4"})
    uploader.upload()
    recording = Recording.objects.get(source="requisition")
    assert recording.status == Recording.Status.READY and recording.regime == "body_worn"
    assert recording.sha256 == hashlib.sha256(data).hexdigest()
    assert recording.playback_key and recording.media_info.get("video_codec") == "h264"
    assert stored_bytes(local_store, recording.store_key) == data
    listed = get_live(live_server, legal, "/api/recordings/?source=requisition")
    assert [r["id"] for r in listed["results"]] == [recording.pk]
    assert get_live(live_server, legal, "/api/recordings/?source=camera")["results"] == []
