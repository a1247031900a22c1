"""The error answers of the specification: 400, 401, 403, 503, 507, and uploads that go wrong."""
import errno
import uuid

import pytest

from audit.models import CustodyEvent
from devices.axis.models import AxisClip
from evidence.integrations import store as store_module
from evidence.integrations.store import LocalStore
from evidence.models import Recording

from .bws import BodyWornSystem, recording_container_name
from .conftest import (
    SERIAL,
    TRIGGER_ON,
    clip_metadata,
    open_recording,
    sha256,
    upload_clip,
)

pytestmark = pytest.mark.django_db(transaction=True)


# --- 401 / 403 -----------------------------------------------------------------------------------

def test_wrong_credentials_get_401(connection):
    bws = BodyWornSystem(connection)

    assert bws.authenticate(key="not-the-key").status_code == 401
    assert bws.authenticate(user="someone-else").status_code == 401
    assert bws.authenticate(user="", key="").status_code == 401
    assert "X-Auth-Token" not in bws.authenticate(key="not-the-key").headers


def test_requests_without_a_valid_token_get_401(bws):
    good = bws.token
    bws.token = ""
    assert bws.get("System/Capabilities.json").status_code == 401
    bws.token = "forged"
    assert bws.put_container("Users", {}).status_code == 401
    bws.token = good
    assert bws.get("System/Capabilities.json").status_code == 200


def test_an_expired_token_gets_401_and_a_new_token_works(connection, settings):
    bws = BodyWornSystem(connection)
    settings.TEMOIN_AXIS_TOKEN_SECONDS = 0  # every token is born expired
    assert bws.authenticate().status_code == 200

    assert bws.get("System/Capabilities.json").status_code == 401

    settings.TEMOIN_AXIS_TOKEN_SECONDS = 3600
    response = bws.authenticate()
    assert response.status_code == 200 and int(response.headers["X-Auth-Token-Expires"]) > 3500
    assert bws.get("System/Capabilities.json").status_code == 200


def test_a_revoked_credential_can_no_longer_authenticate_nor_use_its_tokens(connection, bws):
    from devices.axis.models import AxisCredential
    from devices.axis.tokens import credential_revoke

    credential_revoke(credential=AxisCredential.objects.get(username=connection["BlobAPIUserName"]))

    assert bws.get("System/Capabilities.json").status_code == 401
    assert BodyWornSystem(connection).authenticate().status_code == 401


def test_a_camera_of_another_organisation_cannot_be_claimed(bws, make_user):
    """Nor detected (issue 17): the registration is this organisation's own camera, as for any new serial."""
    from django.db import transaction

    from accounts.services import organisation_create
    from devices.models import Camera
    from devices.services import camera_register

    with transaction.atomic():
        other = organisation_create(slug="aix", name="Aix")
        theirs = camera_register(serial="B8A44F999999", organisation=other)

    assert bws.put_object("Devices/B8A44F999999", metadata={"Name": "x", "Model": "W110"}).status_code == 201
    assert Camera.objects.get(pk=theirs.pk).organisation == other
    assert Camera.objects.filter(serial="B8A44F999999").exclude(pk=theirs.pk).get().organisation != other


# --- 400: content we can never store -----------------------------------------------------------------

def test_a_recording_of_an_unknown_user_gets_400(registered, clip_library, local_store):
    name = recording_container_name(str(uuid.uuid4()), registered.serial, TRIGGER_ON)

    response = registered.bws.put_container(name, {"BWCSerialNumber": registered.serial})

    assert response.status_code == 400 and "does not exist" in response.text
    assert registered.bws.head(name).status_code == 404
    assert not Recording.objects.exists()


def test_a_recording_of_an_unknown_device_gets_400(registered, local_store):
    name = recording_container_name(registered.user_uuid, "B8A44F000000", TRIGGER_ON)

    response = registered.bws.put_container(name, {"UserID": registered.user_uuid})

    assert response.status_code == 400 and "B8A44F000000" in response.text


def test_a_clip_with_no_duration_gets_400(registered, local_store):
    container = open_recording(registered)

    empty = registered.bws.put_object(f"{container}/20261120T213000Z_1.mp4", b"", clip_metadata(TRIGGER_ON, 3))
    instant = registered.bws.put_object(f"{container}/20261120T213000Z_2.mp4", b"x" * 100, clip_metadata(TRIGGER_ON, 0))

    assert (empty.status_code, instant.status_code) == (400, 400)
    assert not Recording.objects.exists()


# --- Uploads that go wrong --------------------------------------------------------------------------

def test_a_truncated_upload_is_never_verified_and_the_clip_can_be_sent_again(registered, clip_library, local_store):
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()
    name = "20261120T213000Z_1.mp4"

    status = registered.bws.put_truncated(f"{container}/{name}", data[: len(data) // 2], declared=len(data),
                                          metadata=clip_metadata(TRIGGER_ON, 3))

    assert status == 499
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.FAILED and rec.sha256 == ""
    assert not local_store.exists(rec.store_key)
    assert list(CustodyEvent.objects.filter(recording=rec).values_list("action", flat=True)) == [
        "recording.collected", "recording.store_failed"]
    assert registered.bws.head(f"{container}/{name}").status_code == 404  # the controller sends it again

    again = registered.bws.put_object(f"{container}/{name}", data, clip_metadata(TRIGGER_ON, 3))

    assert again.status_code == 201
    _assert_received_on_the_failed_recording(rec, data)


READ_BACK = [(512 * 1024 * 1024, "byte-for-byte"), (0, "sha256")]


@pytest.mark.parametrize("compare_max, method", READ_BACK, ids=["in-memory", "second-hash"])
def test_each_clip_is_read_back_from_the_store_before_it_is_acknowledged(
        compare_max, method, registered, clip_library, local_store, settings):
    settings.TEMOIN_READBACK_COMPARE_MAX = compare_max
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()

    _name, response = upload_clip(registered, container, data, TRIGGER_ON)

    assert response.status_code == 201
    verified = CustodyEvent.objects.get(action="recording.verified")
    assert verified.details["read_back"] == method and verified.details["read_back_sha256"] == sha256(data)


@pytest.mark.parametrize("compare_max, method", READ_BACK, ids=["in-memory", "second-hash"])
def test_a_store_that_reads_back_other_bytes_than_written_fails_the_clip(
        compare_max, method, registered, clip_library, local_store, settings, monkeypatch):
    # A disk that returns garbage: one byte differs when the object is read back. Nothing is
    # acknowledged, so the system controller keeps the clip and sends it again.
    settings.TEMOIN_READBACK_COMPARE_MAX = compare_max
    real_put = LocalStore.put

    def put_then_corrupt(self, key, source, **kw):
        stored = real_put(self, key, source, **kw)
        path = self.objects / key
        path.chmod(0o600)
        with open(path, "r+b") as fh:
            fh.seek(100)
            byte = fh.read(1)
            fh.seek(100)
            fh.write(bytes([byte[0] ^ 0xFF]))
        return stored

    monkeypatch.setattr(LocalStore, "put", put_then_corrupt)
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()

    name, response = upload_clip(registered, container, data, TRIGGER_ON)

    assert response.status_code == 500 and "read-back mismatch" in response.text
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.FAILED and rec.sha256 == ""
    assert not CustodyEvent.objects.filter(recording=rec, action="recording.verified").exists()
    assert registered.bws.head(f"{container}/{name}").status_code == 404


def test_the_same_clip_sent_twice_is_stored_once(registered, clip_library, local_store):
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()

    _name, first = upload_clip(registered, container, data, TRIGGER_ON)
    _name, second = upload_clip(registered, container, data, TRIGGER_ON)

    assert (first.status_code, second.status_code) == (201, 201)
    rec = Recording.objects.get()
    assert rec.sha256 == sha256(data) and AxisClip.objects.get().uploads == 1
    seen = CustodyEvent.objects.get(recording=rec, action="recording.seen_again")
    assert seen.details["same_content"] is True
    assert sum(1 for p in (local_store.root / "objects").rglob("*") if p.is_file()) == 1


def test_other_content_under_a_stored_clip_name_gets_400_and_is_never_overwritten(
    registered, clip_library, local_store
):
    container = open_recording(registered)
    original = clip_library["h264"].read_bytes()
    upload_clip(registered, container, original, TRIGGER_ON)

    _name, response = upload_clip(registered, container, clip_library["hevc"].read_bytes(), TRIGGER_ON)

    assert response.status_code == 400
    rec = Recording.objects.get()
    assert rec.sha256 == sha256(original)
    assert CustodyEvent.objects.get(recording=rec, action="recording.seen_again").details["same_content"] is False


def test_a_clip_whose_bytes_differ_from_the_etag_sent_gets_422_and_is_not_verified(
    registered, clip_library, local_store
):
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()
    name = "20261120T213000Z_1.mp4"

    response = registered.bws.put_object(f"{container}/{name}", data, clip_metadata(TRIGGER_ON, 3),
                                          headers={"ETag": "0" * 32})
    assert response.status_code == 422
    assert Recording.objects.get().status == Recording.Status.FAILED

    import hashlib

    ok = registered.bws.put_object(f"{container}/{name}", data, clip_metadata(TRIGGER_ON, 3),
                                   headers={"ETag": hashlib.md5(data).hexdigest()})
    assert ok.status_code == 201 and ok.headers["Etag"] == hashlib.md5(data).hexdigest()
    # The bytes of the failed attempt stay under their own recording (erased at its retention end).
    assert Recording.objects.filter(status=Recording.Status.STORED, sha256=sha256(data)).count() == 1
    assert Recording.objects.filter(status=Recording.Status.FAILED).count() == 1


@pytest.mark.parametrize("same_content", [True, False], ids=["same-bytes", "other-bytes"])
def test_the_same_clip_sent_twice_at_once_is_kept_twice_under_custody(
        same_content, registered, clip_library, local_store, monkeypatch):
    # The BWS gave up waiting and sent the clip again while the first upload was still being
    # written: nothing is in the database before the bytes are stored, so both uploads go through.
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()
    again = data if same_content else data[:-1] + bytes([data[-1] ^ 0xFF])
    real_put, answers, puts = LocalStore.put, [], []

    def put_while_sent_again(self, key, source, **kw):
        puts.append(key)
        if len(puts) == 1:  # the first upload is being written: the second comes in
            answers.append(upload_clip(registered, container, again, TRIGGER_ON)[1])
        return real_put(self, key, source, **kw)

    monkeypatch.setattr(LocalStore, "put", put_while_sent_again)
    _name, first = upload_clip(registered, container, data, TRIGGER_ON)

    assert (first.status_code, answers[0].status_code) == (201, 201)
    clip = AxisClip.objects.get()
    second, first_rec = clip.recording, Recording.objects.exclude(pk=clip.recording_id).get()
    assert second.status == Recording.Status.STORED and second.sha256 == sha256(again)  # verified first
    assert first_rec.sha256 == sha256(data)
    if same_content:
        assert first_rec.status == Recording.Status.DUPLICATE and first_rec.duplicate_of_id == second.pk
    else:
        assert first_rec.status == Recording.Status.STORED and "at the same time" in first_rec.status_message
    for rec in (first_rec, second):  # both sets of bytes are in the store, each under custody
        assert list(CustodyEvent.objects.filter(recording=rec).order_by("seq").values_list("action", flat=True)) == [
            "recording.collected", "recording.stored", "recording.verified"]
    assert sum(1 for p in (local_store.root / "objects").rglob("*") if p.is_file()) == 2


def _assert_received_on_the_failed_recording(rec, data: bytes) -> None:
    """A clip sent again after a failed upload that stored nothing: the same recording receives it."""
    rec.refresh_from_db()
    assert rec.status == Recording.Status.STORED and rec.sha256 == sha256(data) and rec.status_message == ""
    clip = AxisClip.objects.get()
    assert clip.recording_id == rec.pk and clip.uploads == 2
    assert list(CustodyEvent.objects.filter(recording=rec).order_by("seq").values_list("action", flat=True)) == [
        "recording.collected", "recording.store_failed", "recording.collect_retried", "recording.stored",
        "recording.verified"]


class FullDiskStore(LocalStore):
    """Test double: a disk that fills up during the write (a full disk cannot be produced safely here)."""

    def put(self, key, source, *, retain_until, content_type="application/octet-stream"):
        source.read(64 * 1024)  # the first bytes are written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_store_answers_507_and_the_clip_is_accepted_once_there_is_space(
    registered, clip_library, local_store, tmp_path
):
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()
    store_module._store = FullDiskStore(tmp_path / "full")

    _name, response = upload_clip(registered, container, data, TRIGGER_ON)

    assert response.status_code == 507
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.FAILED
    assert not CustodyEvent.objects.filter(recording=rec, action="recording.verified").exists()

    store_module._store = local_store  # the administrator made room
    _name, again = upload_clip(registered, container, data, TRIGGER_ON)

    assert again.status_code == 201
    _assert_received_on_the_failed_recording(rec, data)


def test_too_many_uploads_at_once_get_503_with_retry_after(registered, clip_library, local_store, settings):
    container = open_recording(registered)
    settings.TEMOIN_AXIS_MAX_UPLOADS = 0

    _name, response = upload_clip(registered, container, clip_library["h264"].read_bytes(), TRIGGER_ON)

    assert response.status_code == 503 and response.headers["Retry-After"]
    assert not Recording.objects.exists()


def test_metadata_of_an_unknown_container_gets_404(registered):
    assert registered.bws.post_container("nobody_nothing_20261120T213000Z", {"Status": "Complete"}).status_code == 404
    assert registered.bws.put_object("nobody_nothing_20261120T213000Z/a.mp4", b"abc").status_code == 404


def test_users_and_devices_updates_change_names_and_flags(registered, officer):
    from devices.axis.models import AxisDevice, AxisUser

    bws = registered.bws
    assert bws.post_object(f"Users/{registered.user_uuid}", {"Name": "Jeanne Martin-Dupont", "Active": "False",
                                                            "UserID": officer.matricule}).status_code == 202
    assert bws.post_object(f"Devices/{SERIAL}", {"Name": "Caméra 42 bis", "Model": "W110",
                                                 "Active": "False"}).status_code == 202

    user = AxisUser.objects.get(uuid=registered.user_uuid)
    device = AxisDevice.objects.get(serial=SERIAL)
    assert (user.name, user.active, user.user) == ("Jeanne Martin-Dupont", False, officer)
    assert (device.name, device.active) == ("Caméra 42 bis", False)
    assert bws.head(f"Users/{registered.user_uuid}").headers["X-Object-Meta-Name"] == "Jeanne%20Martin-Dupont"


def test_a_user_whose_matricule_is_unknown_becomes_an_officer_without_password(bws, org):
    from accounts.models import User

    assert bws.put_object(f"Users/{uuid.uuid4()}", metadata={"Name": "Paul Durand", "UserID": "M777"}).status_code == 201

    user = User.objects.get(matricule="M777")
    assert (user.organisation, user.role, user.first_name, user.last_name) == (org, "officer", "Paul", "Durand")
    assert not user.has_usable_password()
    assert CustodyEvent.objects.filter(action="role.granted", subject_id=str(user.pk)).exists()


def test_a_clip_that_cannot_fit_in_the_local_store_is_refused_with_507_before_it_is_read(
    registered, clip_library, local_store, settings
):
    container = open_recording(registered)
    settings.TEMOIN_AXIS_FREE_SPACE_RESERVE = 10**18  # more than any disk has free

    _name, response = upload_clip(registered, container, clip_library["h264"].read_bytes(), TRIGGER_ON)

    assert response.status_code == 507
    assert not Recording.objects.exists()
