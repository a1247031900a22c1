"""A whole session as the body worn system plays it, against the real HTTP server, on both stores."""
import datetime as dt
import hashlib
import json

import pytest

from audit.models import CustodyEvent
from devices.axis.models import AxisBookmark, AxisRecording, AxisUser
from devices.models import Camera
from evidence.integrations import ffmpeg
from evidence.models import Recording

from ..evidence.helpers import stored_bytes
from .bws import BodyWornSystem, gnss_track, iso
from .conftest import TRIGGER_ON, clip_metadata, open_recording, sha256

pytestmark = pytest.mark.django_db(transaction=True)


def test_capabilities_and_categories_are_published_with_their_md5_etag(bws):
    capabilities = bws.get("System/Capabilities.json")
    categories = bws.get("System/Categories.json")

    assert capabilities.status_code == 200 and categories.status_code == 200
    assert capabilities.headers["Etag"] == hashlib.md5(capabilities.content).hexdigest()
    assert categories.headers["Etag"] == hashlib.md5(categories.content).hexdigest()
    published = {name for group in capabilities.json().values() for name, on in group.items() if on}
    assert {"ReadCategories", "StoreReadSystemID", "StoreUserIDKey", "StoreBookmarks",
            "StoreGNSSTrackRecording", "StoreRejectedContent"} <= published
    assert "StoreSignedVideo" not in published
    assert capabilities.json()["Read"] == {"ReadCategories": True}
    ids = {c["Id"]: c["Name"] for c in categories.json()}
    assert ids["purpose:evidence"] == "Collecte de preuves"
    assert ids["trigger_reason:risk_of_incident"] == "Risque d'incident"
    assert all(len(name.encode()) <= 32 for name in ids.values())
    # HEAD gives the same Etag without the body.
    head = bws.head("System/Capabilities.json")
    assert head.status_code == 200 and head.content == b"" and head.headers["Etag"] == capabilities.headers["Etag"]


def test_the_system_object_binds_the_body_worn_system_and_can_be_read_back(bws):
    system_id = "0f3c7a52-9d1e-4bb0-8c2a-5a7e0d1f2b3c"

    created = bws.put_object(f"System/{system_id}", metadata={"ConnectionId": "conn-1", "SystemName": "PM Chambéry"})
    renamed = bws.post_object(f"System/{system_id}", metadata={"ConnectionId": "conn-1", "SystemName": "PM Chambéry centre"})
    read = bws.head(f"System/{system_id}")

    assert (created.status_code, renamed.status_code, read.status_code) == (201, 202, 200)
    assert read.headers["X-Object-Meta-Systemname"] == "PM%20Chamb%C3%A9ry%20centre"
    assert bws.head("System/another-system").status_code == 404


@pytest.mark.parametrize("backend", ["local_store", "s3_store"])
def test_a_whole_recording_of_several_clips_becomes_verified_ready_recordings(
    backend, request, registered, officer, clip_library, org
):
    store = request.getfixturevalue(backend)
    reg, bws = registered, registered.bws
    assert AxisUser.objects.get(uuid=reg.user_uuid).user == officer
    camera = Camera.objects.get(serial=reg.serial)
    assert (camera.organisation, camera.model, camera.axis_device.name) == (org, "W110", "Caméra 42")

    container = open_recording(reg)
    clips = [("h264", TRIGGER_ON - dt.timedelta(seconds=30), 3),
             ("h264_noaudio", TRIGGER_ON + dt.timedelta(seconds=60), 2),
             ("hevc", TRIGGER_ON + dt.timedelta(seconds=120), 2)]
    sent = {}
    for i, (kind, start, seconds) in enumerate(clips):
        data = clip_library[kind].read_bytes()
        name = f"{start:%Y%m%dT%H%M%SZ}_{4711 + i}.mp4"
        response = bws.put_object(f"{container}/{name}", data, clip_metadata(start, seconds))
        assert response.status_code == 201, response.text
        sent[name] = (data, start, seconds)
        # The system controller checks what arrived.
        head = bws.head(f"{container}/{name}")
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    # GNSS track: one point in each clip's time window.
    track_points = [(45.5646 + i / 1000, 5.9178 + i / 1000, start + dt.timedelta(seconds=1))
                    for i, (_k, start, _s) in enumerate(clips)]
    gps = f"{TRIGGER_ON:%Y%m%d_%H%M%S}_4711_{reg.serial}_gpstrail.json"
    assert bws.put_object(f"{container}/{gps}", gnss_track(track_points, TRIGGER_ON - dt.timedelta(seconds=30)),
                          {"FileType": "json"}).status_code == 201
    # Bookmarks: a category (ours), a comment with tags, and a category unknown to us (an old one).
    bookmark_time = TRIGGER_ON + dt.timedelta(seconds=65)
    assert bws.put_object(f"{container}/bookmark_{bookmark_time:%Y%m%dT%H%M%SZ}_1", "Individu interpellé rue de Boigne".encode(),
                          {"CategoryID": "purpose:evidence", "CategoryName": "Collecte de preuves",
                           "Tags": "TriggerOn:Button;Zone:Centre", "StartTime": iso(bookmark_time)}).status_code == 201
    assert bws.put_object(f"{container}/bookmark_{bookmark_time:%Y%m%dT%H%M%SZ}_2", b"",
                          {"CategoryID": "old-42", "CategoryName": "Ancienne catégorie",
                           "StartTime": iso(bookmark_time)}).status_code == 201

    listing = bws.list(container)
    assert {e["name"] for e in listing.json()} >= set(sent)
    done = bws.post_container(container, {"Status": "Complete", "TriggerOff": "Button",
                                          "TriggerOffTimeISO": iso(TRIGGER_ON + dt.timedelta(seconds=125))})
    assert done.status_code == 204
    head = bws.head(container)
    assert head.status_code == 204 and head.headers["X-Container-Meta-Status"] == "Complete"

    axis_recording = AxisRecording.objects.get(name=container)
    assert axis_recording.status == AxisRecording.Status.COMPLETE and axis_recording.time_zone == "Europe/Paris"
    assert axis_recording.trigger_off == "Button"
    for i, (name, (data, start, seconds)) in enumerate(sent.items()):
        rec = Recording.objects.get(axis_clips__name=name)
        assert rec.sha256 == sha256(data) and rec.size == len(data)
        assert stored_bytes(store, rec.store_key, rec.store_version_id) == data
        assert rec.store_key.startswith(f"originals/{org.slug}/{reg.serial}/{rec.uuid}") and rec.store_key.endswith(".mp4")
        assert (rec.wearer, rec.wearer_source, rec.camera) == (officer, "axis", camera)
        assert rec.started_at == start and rec.ended_at == start + dt.timedelta(seconds=seconds)
        assert rec.time_attested and rec.trigger_source == "Button"
        assert rec.purpose == "evidence"  # from the category bookmark
        assert rec.location == [45.5646, 5.9178]  # TriggerOnLocation
        lat, lon, when = track_points[i]
        assert rec.track == [[lat, lon, when.timestamp()]]
        info = store.head(rec.store_key, rec.store_version_id)
        assert info.mode == "COMPLIANCE" and info.retain_until >= rec.retain_until
        # The media pipeline ran once the container was complete.
        assert rec.status == Recording.Status.READY, rec.status_message
        with store.local_path(rec.playback_key, rec.playback_version_id) as copy:
            assert ffmpeg.probe(copy).video_codec == "h264"
        actions = list(CustodyEvent.objects.filter(recording=rec).order_by("seq").values_list("action", flat=True))
        assert actions[:3] == ["recording.collected", "recording.stored", "recording.verified"]
        assert actions.count("recording.bookmarked") == 2 and "recording.playback_ready" in actions
        collected = CustodyEvent.objects.get(recording=rec, action="recording.collected")
        assert collected.actor_label == "system:axis" and collected.details["container"] == container
        bookmarked = [e.details for e in CustodyEvent.objects.filter(recording=rec, action="recording.bookmarked")]
        assert {"Individu interpellé rue de Boigne", ""} == {d["description"] for d in bookmarked}
    comment = AxisBookmark.objects.get(object__name__endswith="_1")
    assert comment.tags == [["TriggerOn", "Button"], ["Zone", "Centre"]] and comment.category_id == "purpose:evidence"
    unknown = AxisBookmark.objects.get(object__name__endswith="_2")
    assert unknown.category_name == "Ancienne catégorie"
    # The bookmark and the track are kept write-once too.
    gps_object = axis_recording.attachments.get(kind="track")
    assert json.loads(stored_bytes(store, gps_object.store_key, gps_object.store_version_id))["CoordinateEntries"]
    assert CustodyEvent.objects.filter(action="axis.transfer_finished", subject_id=str(axis_recording.pk)).exists()


def test_a_clip_verified_after_completion_still_enters_the_media_pipeline(registered, clip_library, local_store):
    reg, bws = registered, registered.bws
    container = open_recording(reg)
    assert bws.post_container(container, {"Status": "Complete"}).status_code == 204

    data = clip_library["h264"].read_bytes()
    response = bws.put_object(f"{container}/20261120T213000Z_1.mp4", data, clip_metadata(TRIGGER_ON, 3))

    assert response.status_code == 201
    assert Recording.objects.get(sha256=sha256(data)).status == Recording.Status.READY


def test_a_rejected_content_container_is_stored_under_custody_and_flagged(bws, clip_library, local_store, org):
    data = clip_library["truncated"].read_bytes()
    name = "RejectedContent_20261120T220000Z_5b0c3b8e-1f0a-4a4e-9d8e-0e1f2a3b4c5d"
    metadata = {"RejectedContentOriginalContainer": "unknown-user_B8A44F000099_20261120T213000Z",
                "RejectedContentReason": "user id does not exist", "BWCSerialNumber": "B8A44F000099",
                "RejectedContentTime": "20261120T220000Z"}

    assert bws.put_container(name, metadata).status_code == 201
    response = bws.put_object(f"{name}/20261120T213000Z_9.mp4", data, {
        "StartTime": "1795210200", "StopTime": "1795210203", "ContainerType": "mp4",
        "RejectedContentOriginalContainer": metadata["RejectedContentOriginalContainer"]})

    assert response.status_code == 201, response.text
    rec = Recording.objects.get(sha256=sha256(data))
    assert rec.camera.serial == "B8A44F000099" and rec.camera.organisation == org
    assert any("rejected by the Axis system (user id does not exist)" in f for f in rec.sidecar_errors)
    # Never refused: stored, verified, then through the media step (a truncated MP4 is unplayable).
    assert rec.status in (Recording.Status.UNPLAYABLE, Recording.Status.READY)
    assert list(CustodyEvent.objects.filter(recording=rec).values_list("action", flat=True))[:3] == [
        "recording.collected", "recording.stored", "recording.verified"]
    assert CustodyEvent.objects.get(recording=rec, action="recording.collected").details["rejected"] is True
    assert AxisRecording.objects.get(name=name).rejected


def test_recordings_cannot_be_read_back_over_the_api(registered, clip_library, local_store):
    container = open_recording(registered)
    data = clip_library["h264"].read_bytes()
    registered.bws.put_object(f"{container}/20261120T213000Z_1.mp4", data, clip_metadata(TRIGGER_ON, 3))

    assert registered.bws.get(f"{container}/20261120T213000Z_1.mp4").status_code == 403
    assert registered.bws.request("DELETE", f"{container}/20261120T213000Z_1.mp4").status_code == 403


def test_another_body_worn_system_with_its_own_credentials_cannot_use_this_account(
    registered, org, live_server, make_user
):
    from django.db import transaction

    from accounts.services import organisation_create

    from .conftest import connection_file

    with transaction.atomic():
        other_org = organisation_create(slug="aix", name="Police municipale d'Aix")
    other = BodyWornSystem(connection_file(other_org, live_server))
    assert other.authenticate().status_code == 200
    other.storage_url = registered.bws.storage_url  # the first organisation's account

    assert other.get("System/Capabilities.json").status_code == 403
    assert other.put_container("x_y_20261120T213000Z", {}).status_code == 403
