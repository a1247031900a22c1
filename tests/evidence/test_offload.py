"""A docked camera with several real-format clips, end to end on both stores."""
import datetime as dt
import json

import pytest

from audit.models import CustodyEvent
from devices.models import OffloadItem, OffloadSession
from evidence.integrations import ffmpeg
from evidence.models import Recording

from .helpers import run_offload, sha256_file, stored_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _dock_mixed_volume(make_volume, clip_library):
    files = {
        "DCIM/100/CLIP0001.MP4": clip_library["h264"],
        "DCIM/100/CLIP0002.MP4": clip_library["hevc"],
        "DCIM/100/CLIP0003.AVI": clip_library["mjpeg"],
        "DCIM/100/CLIP0004.MP4": clip_library["h264_noaudio"],
    }
    sidecars = {
        "DCIM/100/CLIP0001.json": {
            "started_at": "2026-11-20T22:30:00+01:00", "ended_at": "2026-11-20T22:30:03+01:00",
            "officer": "M042", "trigger_reason": "incident", "trigger_source": "button",
            "purpose": "evidence", "subject_notified": True, "location": [45.5646, 5.9178],
            "sha256": sha256_file(clip_library["h264"]), "intervention": "PM-2026-1142",
        },
        "DCIM/100/CLIP0002.json": {
            "started_at": "2026-11-20T23:01:00+01:00", "trigger_reason": "risk_of_incident",
            "subject_notified": False, "notice_omitted_reason": "fuite de l'individu",
        },
    }
    volume = make_volume("BWC-0042", files, sidecars)
    originals = {rel: sha256_file(volume / rel) for rel in files}
    return volume, originals


@pytest.mark.parametrize("backend", ["local_store", "s3_store"])
def test_offload_stores_verifies_tags_and_wipes_every_real_format_clip(
    backend, request, make_volume, clip_library, camera, officer
):
    store = request.getfixturevalue(backend)
    volume, originals = _dock_mixed_volume(make_volume, clip_library)

    code, output = run_offload(volume)

    assert code == 0, output
    assert OffloadSession.objects.get().status == OffloadSession.Status.COMPLETE
    for rel, sha in originals.items():
        rec = Recording.objects.get(source_path=rel)
        # Stored bytes identical to the camera's, and SHA-256 equal to an independent computation.
        assert stored_bytes(store, rec.store_key, rec.store_version_id) == (clip_library_path(clip_library, rel)).read_bytes()
        assert rec.sha256 == sha
        info = store.head(rec.store_key, rec.store_version_id)
        assert info.mode == "COMPLIANCE" and info.retain_until >= rec.retain_until
        # Playback copy decodable in a browser: H.264, index before data.
        assert rec.status == Recording.Status.READY, rec.status_message
        with store.local_path(rec.playback_key, rec.playback_version_id) as copy:
            assert ffmpeg.probe(copy).video_codec == "h264"
            ffmpeg.decode_check(copy)
            atoms = ffmpeg.mp4_atom_order(copy)
            assert atoms.index("moov") < atoms.index("mdat")
        assert store.exists(rec.poster_key)
        # Custody: collected, stored, verified, released from the device, playback ready.
        actions = list(CustodyEvent.objects.filter(recording=rec).values_list("action", flat=True))
        if rec.intervention:  # the sidecar names an intervention: linked once verified (issue #21)
            assert actions[3] == "intervention.linked"
            actions.remove("intervention.linked")
        assert actions == ["recording.collected", "recording.stored", "recording.verified",
                           "recording.released_from_device", "recording.playback_ready"] or \
            actions == ["recording.collected", "recording.stored", "recording.verified",
                        "recording.playback_ready", "recording.released_from_device"]
        # Wiped from the camera only once verified.
        assert not (volume / rel).exists()

    h264 = Recording.objects.get(source_path="DCIM/100/CLIP0001.MP4")
    assert h264.playback_method == "remux"
    assert h264.stream_hashes["original"] == h264.stream_hashes["playback"]
    assert set(h264.stream_hashes["original"]) == {"v:0", "a:0"}
    assert h264.wearer == officer and h264.wearer_source == "sidecar"
    assert (h264.trigger_reason, h264.trigger_source, h264.purpose) == ("incident", "button", "evidence")
    assert h264.subject_notified is True and h264.intervention == "PM-2026-1142"
    assert h264.location == [45.5646, 5.9178]
    assert h264.started_at == dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.timezone.utc)
    assert h264.time_attested and h264.camera_hash_matches is True
    assert not h264.to_complete
    # CSI R241-13: recorded 20 November (Paris) → kept through 20 December, erasable 21 December.
    assert h264.retain_until == dt.datetime(2026, 12, 20, 23, 0, tzinfo=dt.timezone.utc)

    hevc = Recording.objects.get(source_path="DCIM/100/CLIP0002.MP4")
    assert hevc.playback_method == "transcode"
    assert hevc.subject_notified is False and hevc.notice_omitted_reason == "fuite de l'individu"
    assert hevc.wearer == officer and hevc.wearer_source == "assignment"

    mjpeg = Recording.objects.get(source_path="DCIM/100/CLIP0003.AVI")
    assert mjpeg.playback_method == "transcode" and mjpeg.to_complete
    assert mjpeg.trigger_reason == "" and mjpeg.subject_notified is None

    # Sidecars went to the store with their clip and left the camera with it.
    assert not (volume / "DCIM/100/CLIP0001.json").exists()
    sidecar = json.loads(stored_bytes(store, h264.sidecar_key))
    assert sidecar["intervention"] == "PM-2026-1142"
    assert (volume / "DEVICE.json").exists()


def clip_library_path(clip_library, rel):
    return {
        "DCIM/100/CLIP0001.MP4": clip_library["h264"],
        "DCIM/100/CLIP0002.MP4": clip_library["hevc"],
        "DCIM/100/CLIP0003.AVI": clip_library["mjpeg"],
        "DCIM/100/CLIP0004.MP4": clip_library["h264_noaudio"],
    }[rel]


def test_offload_with_keep_leaves_every_clip_on_the_camera(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})

    code, output = run_offload(volume, "--keep")

    assert code == 0, output
    assert (volume / "a.mp4").exists()
    assert OffloadItem.objects.get().wiped is False
    assert Recording.objects.get().status == Recording.Status.READY


def test_offload_of_several_docked_cameras_at_once_verifies_each_and_reports_a_refused_one(
    make_volume, clip_library, camera, org, local_store
):
    from django.db import transaction

    from devices.services import camera_register

    with transaction.atomic():
        camera_register(serial="BWC-0043", organisation=org)
    first = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})
    second = make_volume("BWC-0043", {"b.mp4": clip_library["hevc"], "c.avi": clip_library["mjpeg"]})
    stranger = make_volume("BWC-9999", {"d.mp4": clip_library["h264_noaudio"]})

    code, output = run_offload(first, str(second), str(stranger), "--jobs", "2")

    assert code == 2 and "1 volume(s) refused" in output
    assert Recording.objects.filter(status=Recording.Status.READY).count() == 3
    assert {s.camera.serial for s in OffloadSession.objects.all()} == {"BWC-0042", "BWC-0043"}
    assert not (first / "a.mp4").exists() and not (second / "b.mp4").exists()
    assert (stranger / "d.mp4").exists()


@pytest.mark.parametrize("limit, method", [(512 * 1024 * 1024, "byte-for-byte"), (1024, "sha256")])
def test_read_back_compares_bytes_in_memory_or_hashes_large_clips_again(
    limit, method, make_volume, clip_library, camera, local_store, settings
):
    settings.TEMOIN_READBACK_COMPARE_MAX = limit
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})

    assert run_offload(volume)[0] == 0

    verified = CustodyEvent.objects.get(action="recording.verified")
    assert verified.details["read_back"] == method
    assert verified.details["read_back_sha256"] == Recording.objects.get().sha256
