"""Bad input and faults during offload: a clear message, nothing lost, nothing wiped unverified."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.models import CustodyEvent
from devices.models import OffloadItem
from evidence.ingest.services import offload_item_pull, offload_session_finish, offload_session_start
from evidence.retention.sweep import store_sweep_incomplete
from evidence.models import Recording

from ..conftest import MotoS3
from .helpers import run_offload, sha256_file, stored_bytes

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def test_truncated_mp4_without_index_is_stored_verified_and_marked_unplayable(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"CLIP.MP4": clip_library["truncated"]})
    original = (volume / "CLIP.MP4").read_bytes()

    code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.UNPLAYABLE
    assert "moov" in rec.status_message or "ffprobe" in rec.status_message
    assert stored_bytes(local_store, rec.store_key) == original
    assert CustodyEvent.objects.filter(recording=rec, action="recording.unplayable").exists()


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 this is a zip, not a video" * 100], ids=["zero-byte", "not-video"])
def test_files_that_are_not_video_are_kept_as_evidence_and_marked_unplayable(content, make_volume, camera, local_store):
    volume = make_volume("BWC-0042", {"DCIM/odd.mp4": content})

    code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    assert rec.status == Recording.Status.UNPLAYABLE
    assert rec.size == len(content)
    assert stored_bytes(local_store, rec.store_key) == content


def test_hostile_sidecar_fields_are_reported_and_valid_ones_kept(make_volume, clip_library, camera, officer, local_store):
    sidecar = {"started_at": "yesterday", "officer": 42, "trigger_reason": "boredom", "subject_notified": "yes",
               "location": [999, 5], "sha256": "abc", "purpose": "evidence", "intervention": "X-1",
               "track": [[45.0, 5.0, "t"]], "<script>": 1}
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}, {"a.json": sidecar})

    code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    errors = " | ".join(rec.sidecar_errors)
    for field in ("started_at", "officer", "trigger_reason", "subject_notified", "location", "sha256", "track"):
        assert field in errors
    assert rec.purpose == "evidence" and rec.intervention == "X-1"
    assert rec.to_complete and rec.trigger_reason == "" and rec.subject_notified is None
    assert rec.time_source == "container"  # the bad sidecar time falls back to the MP4's creation_time
    assert rec.wearer == officer and rec.wearer_source == "assignment"
    assert rec.status == Recording.Status.READY


def test_ten_megabytes_of_junk_as_sidecar_is_kept_in_the_store_but_not_parsed(make_volume, clip_library, camera, local_store):
    junk = os.urandom(10 * 1024 * 1024)
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}, {"a.json": junk})

    code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    assert any("exceeds" in e for e in rec.sidecar_errors)
    assert stored_bytes(local_store, rec.sidecar_key) == junk
    assert not (volume / "a.json").exists()


def test_sidecar_time_without_offset_is_flagged_not_attested(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]},
                         {"a.json": {"started_at": "2026-11-20T22:30:00", "trigger_reason": "incident"}})

    run_offload(volume)

    rec = Recording.objects.get()
    assert rec.time_source == "sidecar" and rec.time_attested is False
    assert rec.started_at.isoformat() == "2026-11-20T21:30:00+00:00"  # read in the organisation's zone


def test_camera_hash_mismatch_keeps_the_clip_on_the_camera_and_fails_the_offload(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}, {"a.json": {"sha256": "0" * 64}})

    code, output = run_offload(volume)

    assert code == 2
    assert "differs" in output
    assert (volume / "a.mp4").exists() and (volume / "a.json").exists()
    rec = Recording.objects.get()
    assert rec.camera_hash_matches is False
    assert rec.sha256 == sha256_file(volume / "a.mp4")
    assert OffloadItem.objects.get().status == OffloadItem.Status.MISMATCH


def test_symlinks_are_not_followed_and_nothing_outside_the_volume_is_touched(make_volume, clip_library, camera, local_store, tmp_path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clip_library["h264"].read_bytes())
    outside_dir = tmp_path / "outside_dir"
    outside_dir.mkdir()
    (outside_dir / "x.mp4").write_bytes(b"secret")
    volume = make_volume("BWC-0042", {"real.mp4": clip_library["h264_noaudio"]})
    (volume / "link.mp4").symlink_to(outside)
    (volume / "linkdir").symlink_to(outside_dir)

    code, output = run_offload(volume)

    assert code == 0, output
    assert "link.mp4: symbolic link not followed" in output
    assert "linkdir: symbolic link not followed" in output
    assert Recording.objects.get().source_path == "real.mp4"
    assert outside.exists() and (outside_dir / "x.mp4").read_bytes() == b"secret"
    assert (volume / "link.mp4").is_symlink()


def test_same_camera_docked_twice_creates_no_duplicate_and_releases_the_clips(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"]})
    assert run_offload(volume, "--keep")[0] == 0

    code, output = run_offload(volume)

    assert code == 0, output
    assert Recording.objects.count() == 2
    second = OffloadItem.objects.filter(session__in=[max(OffloadItem.objects.values_list("session", flat=True))])
    assert {i.status for i in second} == {OffloadItem.Status.DUPLICATE}
    assert not (volume / "a.mp4").exists() and not (volume / "b.mp4").exists()


def test_store_failing_mid_upload_leaves_the_clip_on_the_camera_and_a_retry_succeeds(make_volume, camera, settings):
    from evidence.integrations import store as store_module
    from evidence.integrations.s3 import S3Store

    server = MotoS3()
    try:
        settings.STORE_BACKEND, settings.S3_ENDPOINT_URL, settings.S3_BUCKET = "s3", server.url, "failing"
        settings.S3_ACCESS_KEY_ID = settings.S3_SECRET_ACCESS_KEY = "testing"
        settings.S3_PART_SIZE = 5 * 1024 * 1024
        store_module.reset_store()
        store = store_module.get_store()
        assert isinstance(store, S3Store)
        store.ensure_bucket()
        payload = os.urandom(16 * 1024 * 1024)
        volume = make_volume("BWC-0042", {"big.mp4": payload})
        session = offload_session_start(volume=volume)
        item = session.items.get()
        read = {"bytes": 0}

        def stop_the_store_midway(n):
            read["bytes"] += n
            if read["bytes"] >= 6 * 1024 * 1024 and server.server is not None:
                server.stop()
                server.server = None

        item = offload_item_pull(item=item, progress=stop_the_store_midway)
        session = offload_session_finish(session=session)

        assert item.status == OffloadItem.Status.FAILED and "S3" in item.message
        assert (volume / "big.mp4").read_bytes() == payload
        assert Recording.objects.get().status == Recording.Status.FAILED
        assert CustodyEvent.objects.filter(action="recording.store_failed").exists()

        server.restart()
        code, output = run_offload(volume)

        assert code == 0, output
        rec = Recording.objects.get()
        assert rec.status in (Recording.Status.READY, Recording.Status.UNPLAYABLE)
        assert stored_bytes(store, rec.store_key, rec.store_version_id) == payload
        assert not (volume / "big.mp4").exists()
    finally:
        if server.server is not None:
            server.stop()
        store_module.reset_store()


def test_worker_killed_mid_clip_loses_nothing_and_the_next_offload_completes(make_volume, s3_store, camera, child_env):
    payload = os.urandom(96 * 1024 * 1024)
    volume = make_volume("BWC-0042", {"big.mp4": payload})
    proc = subprocess.Popen([sys.executable, "manage.py", "offload", str(volume), "--no-progress"], cwd=ROOT,
                            env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        uploads = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", [])
        if uploads:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the offload finished before it could be killed mid-clip"
    assert (volume / "big.mp4").read_bytes() == payload
    assert Recording.objects.get().status == Recording.Status.RECEIVING

    code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    assert rec.sha256 == __import__("hashlib").sha256(payload).hexdigest()
    assert stored_bytes(s3_store, rec.store_key, rec.store_version_id) == payload
    assert not (volume / "big.mp4").exists()
    assert CustodyEvent.objects.filter(recording=rec, action="recording.collect_retried").exists()


def test_malformed_device_file_is_refused_without_touching_the_volume(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})
    (volume / "DEVICE.json").write_text(json.dumps({"serial": "../../etc"}))

    code, output = run_offload(volume)

    assert code == 1 and "serial" in output
    assert (volume / "a.mp4").exists() and not Recording.objects.exists()


def test_an_object_written_but_not_yet_locked_when_the_worker_died_is_locked_by_the_retry(
        make_volume, s3_store, camera, monkeypatch):
    # After a multipart upload the S3 store takes the lock in a second request; a worker killed in
    # between leaves a complete object without a lock. The retry must lock it, not fail forever.
    from botocore.exceptions import ClientError

    payload = os.urandom(12 * 1024 * 1024)  # over S3_PART_SIZE: multipart, whose lock headers moto ignores
    volume = make_volume("BWC-0042", {"big.mp4": payload})
    real = s3_store.client.put_object_retention
    calls = []

    def dies_before_locking(**kwargs):
        calls.append(kwargs["Key"])
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "worker died"}}, "PutObjectRetention")
        return real(**kwargs)

    monkeypatch.setattr(s3_store.client, "put_object_retention", dies_before_locking)
    code, output = run_offload(volume)
    if code != 0:  # the first command gave up on the clip: a second docking retries it
        assert (volume / "big.mp4").read_bytes() == payload
        code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    info = s3_store.head(rec.store_key, rec.store_version_id)
    assert info.mode == "COMPLIANCE" and info.retain_until >= rec.retain_until
    assert stored_bytes(s3_store, rec.store_key, rec.store_version_id) == payload
    assert len(calls) == 2 and not (volume / "big.mp4").exists()


def test_the_sweep_removes_what_a_worker_killed_mid_clip_left_and_the_clip_is_then_stored(
        make_volume, local_store, camera, monkeypatch):
    # The worker dies while writing the staging file: the clip is still on the camera, the staging
    # file stays behind. The periodic sweep (beat) removes it once older than any upload could be.
    payload = os.urandom(3 * 1024 * 1024)
    volume = make_volume("BWC-0042", {"big.mp4": payload})
    real_put = type(local_store).put

    def killed_mid_write(self, key, source, **kw):
        with open(self.staging / "killed-worker", "wb") as fh:
            fh.write(source.read(1024 * 1024))
        raise OSError("worker killed")  # as far as this attempt goes

    monkeypatch.setattr(type(local_store), "put", killed_mid_write)
    run_offload(volume)
    monkeypatch.setattr(type(local_store), "put", real_put)
    assert (volume / "big.mp4").read_bytes() == payload
    assert [p.name for p in local_store.staging.iterdir()] == ["killed-worker"]

    assert store_sweep_incomplete() == 0  # too recent: might be an upload in progress
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    assert store_sweep_incomplete(now=later) == 1
    assert list(local_store.staging.iterdir()) == []

    code, output = run_offload(volume)

    assert code == 0, output
    rec = Recording.objects.get()
    assert stored_bytes(local_store, rec.store_key) == payload and not (volume / "big.mp4").exists()
