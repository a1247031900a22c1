"""Requisitions and their tus link: bad input gets a clear answer; nothing is lost, overwritten, or
written outside the store and the staging folder (issue 22, "Bad input")."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
import time_machine
from django.db import transaction
from django.test import Client

from accounts.services import organisation_create
from audit.models import CustodyEvent
from evidence.models import Recording
from evidence.requisitions import upload as upload_module
from evidence.requisitions.models import Requisition, RequisitionUpload
from evidence.requisitions.staging import staging_dir

from .conftest import api, requisition_body

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
OCTETS = "application/offset+octet-stream"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def create(client: Client, upload_url: str, length: int, **metadata) -> str:
    meta = ",".join(f"{k} {b64(v)}" for k, v in metadata.items())
    response = client.post(path_of(upload_url), HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=meta, **TUS)
    assert response.status_code == 201, response.content
    return path_of(response["Location"])


def patch(client: Client, url: str, offset: int, data: bytes, **headers):
    return client.generic("PATCH", url, data, content_type=OCTETS, HTTP_UPLOAD_OFFSET=str(offset),
                          **{**TUS, **headers})


def send(client: Client, upload_url: str, data: bytes, **metadata) -> str:
    url = create(client, upload_url, len(data), **metadata)
    response = patch(client, url, 0, data)
    assert response.status_code == 204, response.content
    return url


@pytest.fixture
def link(issue, local_store):
    return issue()


def test_options_says_what_the_server_supports(link):
    response = Client().options(path_of(link["upload_url"]))
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0" and response["Tus-Resumable"] == "1.0.0"
    assert {"creation", "termination", "expiration"} <= set(response["Tus-Extension"].split(","))
    assert int(response["Tus-Max-Size"]) > 0


def test_an_upload_says_until_when_it_can_be_resumed(link):
    from django.utils.http import parse_http_date

    client = Client()
    url = create(client, link["upload_url"], 10)
    head = client.head(url, **TUS)
    expires_at = dt.datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    assert parse_http_date(head["Upload-Expires"]) == int(expires_at.timestamp())


def test_a_request_without_tus_resumable_is_refused_with_412(link):
    response = Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="10")
    assert response.status_code == 412 and response["Tus-Version"] == "1.0.0"
    assert not RequisitionUpload.objects.exists()


def test_a_patch_at_the_wrong_offset_is_refused_with_409_and_nothing_is_written(link):
    client = Client()
    url = create(client, link["upload_url"], 10, filename="a.mp4")
    assert patch(client, url, 0, b"01234").status_code == 204
    response = patch(client, url, 3, b"xxxxx")
    assert response.status_code == 409
    head = client.head(url, **TUS)
    assert head.status_code == 200 and head["Upload-Offset"] == "5" and head["Upload-Length"] == "10"
    assert (staging_dir() / url.rsplit("/", 1)[1]).read_bytes() == b"01234"


def test_a_patch_without_the_offset_content_type_is_refused_with_415(link):
    client = Client()
    url = create(client, link["upload_url"], 4)
    response = client.generic("PATCH", url, b"abcd", content_type="application/octet-stream",
                              HTTP_UPLOAD_OFFSET="0", **TUS)
    assert response.status_code == 415


def test_a_file_larger_than_tus_max_size_is_refused_at_creation(link, settings):
    settings.TEMOIN_REQUISITION_MAX_SIZE = 1000
    response = Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="1001", **TUS)
    assert response.status_code == 413
    assert not RequisitionUpload.objects.exists()


def test_bytes_beyond_upload_length_are_refused_and_the_offset_stays(link):
    client = Client()
    url = create(client, link["upload_url"], 4)
    assert patch(client, url, 0, b"abcdef").status_code == 413
    assert client.head(url, **TUS)["Upload-Offset"] == "0"


def test_after_expiry_every_request_answers_410(issue, local_store):
    link = issue()
    client = Client()
    url = create(client, link["upload_url"], 4)
    expires_at = dt.datetime.fromisoformat(link["expires_at"].replace("Z", "+00:00"))
    with time_machine.travel(expires_at + dt.timedelta(seconds=1)):
        assert client.options(path_of(link["upload_url"])).status_code == 410
        assert client.post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="4", **TUS).status_code == 410
        assert client.head(url, **TUS).status_code == 410
        assert patch(client, url, 0, b"abcd").status_code == 410
    assert RequisitionUpload.objects.get().offset == 0


def test_an_unknown_link_answers_404(link):
    response = Client().post("/requisitions/depot/not-a-token/", HTTP_UPLOAD_LENGTH="4", **TUS)
    assert response.status_code == 404


def test_a_filename_with_path_characters_stays_metadata(link, local_store, tmp_path):
    client = Client()
    data = b"partner bytes " * 100
    url = send(client, link["upload_url"], data, filename="../../etc/x")
    upload = RequisitionUpload.objects.get()
    assert upload.filename == "../../etc/x" and upload.status == "stored"
    assert url.rsplit("/", 1)[1] == upload.uid and len(upload.uid) == 32
    recording = upload.recording
    assert ".." not in recording.store_key and "etc" not in recording.store_key
    assert recording.store_key.endswith(f"/{recording.uuid}.bin")
    assert local_store.digest(recording.store_key) == (hashlib.sha256(data).hexdigest(), len(data))
    # The staging folder holds only files named by upload ids; nothing was written anywhere else
    # than the data folder and the store, and no path has the partner's name in it.
    assert all(len(p.name) == 32 for p in staging_dir().iterdir())
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.parts[0] in ("data", "store") for p in written)
    assert not any("etc" in p.parts or p.name == "x" for p in written)


def test_a_file_whose_sha256_differs_from_the_partners_is_refused_and_kept_under_custody(link, local_store,
                                                                                          supervisor):
    client = Client()
    data = b"what the partner sent"
    url = create(client, link["upload_url"], len(data), filename="clip.mp4", sha256="0" * 64)
    response = patch(client, url, 0, data)
    assert response.status_code == 422
    assert "differs" in response.content.decode()
    upload = RequisitionUpload.objects.get()
    assert upload.status == "refused" and upload.sha256 == hashlib.sha256(data).hexdigest()
    recording = upload.recording
    assert recording.status == Recording.Status.FAILED and recording.camera_hash_matches is False
    assert local_store.digest(recording.store_key)[0] == upload.sha256  # kept, locked, as evidence
    actions = set(CustodyEvent.objects.filter(recording=recording).values_list("action", flat=True))
    assert {"recording.collected", "recording.stored", "recording.verified", "recording.store_failed"} <= actions
    files = api(supervisor).get(f"/api/requisitions/{link['id']}/").json()["files"]
    assert files[0]["status"] == "refused" and "differs" in files[0]["message"]


def test_the_same_file_twice_under_a_requisition_is_recorded_as_a_duplicate(link, local_store):
    client = Client()
    data = b"same footage" * 1000
    send(client, link["upload_url"], data, filename="a.mp4")
    send(client, link["upload_url"], data, filename="a-again.mp4")
    first, second = RequisitionUpload.objects.order_by("id")
    assert (first.status, second.status) == ("stored", "duplicate")
    assert second.recording.status == Recording.Status.DUPLICATE
    assert second.recording.duplicate_of_id == first.recording_id


def test_a_resume_in_another_process_hashes_the_staged_prefix_again(link, local_store):
    client = Client()
    data = bytes(range(256)) * 4000
    url = create(client, link["upload_url"], len(data), filename="a.mp4",
                 sha256=hashlib.sha256(data).hexdigest())
    assert patch(client, url, 0, data[:300_000]).status_code == 204
    upload_module._HASHES.clear()  # what another worker process, or a restart, starts with
    assert patch(client, url, 300_000, data[300_000:]).status_code == 204
    upload = RequisitionUpload.objects.get()
    assert upload.status == "stored" and upload.sha256 == hashlib.sha256(data).hexdigest()


def test_termination_removes_an_unfinished_upload(link, django_capture_on_commit_callbacks):
    client = Client()
    url = create(client, link["upload_url"], 10)
    patch(client, url, 0, b"12345")
    staged = staging_dir() / url.rsplit("/", 1)[1]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.delete(url, **TUS).status_code == 204
    assert callbacks and not staged.exists()
    assert RequisitionUpload.objects.get().status == "failed"
    assert CustodyEvent.objects.filter(action="requisition.upload_terminated").exists()


# --- The API --------------------------------------------------------------------------------------

def test_creating_a_requisition_is_in_the_custody_log_and_the_link_works_alone(supervisor, local_store):
    response = api(supervisor).post("/api/requisitions/", requisition_body(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "upload_url", "expires_at"}
    requisition = Requisition.objects.get(pk=body["id"])
    token = body["upload_url"].rstrip("/").rsplit("/", 1)[1]
    assert token not in requisition.token_sha256 and len(token) >= 40
    event = CustodyEvent.objects.get(action="requisition.created")
    assert event.actor_id == supervisor.pk and event.details["reference"] == "PV 2026/1234"
    assert event.motif.startswith("Agression")
    # No session, no token: the URL alone opens the tus endpoint.
    assert Client().options(path_of(body["upload_url"])).status_code == 204


def test_legal_staff_may_issue_a_requisition(legal):
    response = api(legal).post("/api/requisitions/", requisition_body(regime="body_worn"), format="json")
    assert response.status_code == 201


def test_an_officer_cannot_issue_a_requisition(officer):
    response = api(officer).post("/api/requisitions/", requisition_body(), format="json")
    assert response.status_code == 403
    assert not Requisition.objects.exists() and not CustodyEvent.objects.filter(action="requisition.created").exists()


def test_a_requisition_with_an_unknown_regime_or_a_past_expiry_is_refused(supervisor):
    assert api(supervisor).post("/api/requisitions/", requisition_body(regime="nvr"), format="json").status_code == 400
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()
    assert api(supervisor).post("/api/requisitions/", requisition_body(expires_at=past),
                                format="json").status_code == 400
    assert not Requisition.objects.exists()


def test_another_communes_requisition_answers_404(issue, make_user):
    link = issue()
    with transaction.atomic():
        other = organisation_create(slug="aix-les-bains", name="Police municipale d'Aix-les-Bains")
    stranger = make_user("chef.aix", role="supervisor", organisation=other)
    assert api(stranger).get(f"/api/requisitions/{link['id']}/").status_code == 404


def test_an_officer_of_the_same_commune_cannot_read_a_requisition(issue, officer):
    link = issue()
    assert api(officer).get(f"/api/requisitions/{link['id']}/").status_code == 404


def test_recordings_filter_by_source(link, supervisor, local_store):
    send(Client(), link["upload_url"], b"bus footage" * 10, filename="bus.mp4")
    recording = Recording.objects.get()
    listed = api(supervisor).get("/api/recordings/?source=requisition").json()["results"]
    assert [(r["id"], r["source"], r["regime"]) for r in listed] == [(recording.pk, "requisition", "videoprotection")]
    assert api(supervisor).get("/api/recordings/?source=camera").json()["results"] == []
    assert api(supervisor).get("/api/recordings/?source=usb").status_code == 400


def test_a_patch_after_the_last_byte_stores_nothing_twice(link, local_store):
    client = Client()
    data = b"finished footage" * 50
    url = send(client, link["upload_url"], data, filename="a.mp4")
    # The test client leaves the content type out of a request without a body: given here.
    response = patch(client, url, len(data), b"", CONTENT_TYPE=OCTETS, CONTENT_LENGTH="0")
    assert response.status_code == 403 and "finished" in response.content.decode()
    assert Recording.objects.count() == 1
    assert client.head(url, **TUS)["Upload-Offset"] == str(len(data))


def test_an_empty_file_is_refused_at_creation(link):
    response = Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="0", **TUS)
    assert response.status_code == 400 and "empty" in response.content.decode()
    assert not RequisitionUpload.objects.exists()


def test_malformed_metadata_is_refused(link):
    response = Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="4",
                             HTTP_UPLOAD_METADATA="filename not*base64!", **TUS)
    assert response.status_code == 400 and "Upload-Metadata" in response.content.decode()


def test_a_request_that_read_the_upload_before_it_finished_does_not_store_it_again(link, local_store):
    """Two PATCHes racing at the end: the one that loaded the upload while it was still receiving
    finds it finished once it holds the staging file's lock."""
    import io

    client = Client()
    data = b"raced footage" * 50
    url = create(client, link["upload_url"], len(data), filename="a.mp4")
    stale = RequisitionUpload.objects.get()
    assert patch(client, url, 0, data).status_code == 204
    appended = upload_module.upload_append(upload=stale, offset=len(data), body=io.BytesIO(b""), content_length=0)
    assert appended.upload.status == "stored"
    assert Recording.objects.count() == 1


def test_a_partners_file_shows_in_the_recordings_pages(link, supervisor, local_store):
    from tests.auth import sign_in

    send(Client(), link["upload_url"], b"bus footage" * 10, filename="bus.mp4")
    recording = Recording.objects.get()
    client = sign_in(Client(), supervisor)
    listing = client.get("/?source=requisition")
    assert listing.status_code == 200 and f"/enregistrements/{recording.pk}/" in listing.content.decode()
    assert client.get(f"/enregistrements/{recording.pk}/").status_code == 200


def test_an_empty_sha256_in_the_metadata_means_no_hash_given(link, local_store):
    """The page sends ``sha256`` empty for a file too large to hash in the browser (depot.js)."""
    client = Client()
    data = b"large footage, hashed by the server only" * 100
    response = client.post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH=str(len(data)),
                           HTTP_UPLOAD_METADATA=f"filename {b64('big.mp4')},sha256 ", **TUS)
    assert response.status_code == 201, response.content
    assert patch(client, path_of(response["Location"]), 0, data).status_code == 204
    upload = RequisitionUpload.objects.get()
    assert upload.partner_sha256 == "" and upload.status == "stored"
    assert upload.recording.camera_hash_matches is None
