"""A real Celery worker over Redis: dockd queues clip pulls on the dock's own queue, media on `media`."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devices.models import OffloadSession
from devices.services import camera_register
from evidence.models import Recording

from ..conftest import IN_CI, require_service
from ..workers import start_worker, stop_process, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_suite_on_postgresql():
    from django.db import connection

    if IN_CI:
        assert connection.vendor == "postgresql", "CI must run with DATABASE_URL pointing at PostgreSQL"
    else:
        require_service("PostgreSQL", connection.vendor == "postgresql", "DATABASE_URL is not PostgreSQL")


def test_dockd_routes_pulls_to_the_dock_queue_and_real_workers_offload_two_cameras(
    redis_url, local_store, org, officer, camera, make_volume, clip_library, child_env, tmp_path
):
    import redis
    from django.db import transaction

    with transaction.atomic():
        camera_register(serial="BWC-0043", organisation=org)
    docks = tmp_path / "docks"
    for slot, serial, clips in [("slot1", "BWC-0042", {"DCIM/a.mp4": clip_library["h264"], "DCIM/b.mp4": clip_library["hevc"]}),
                                ("slot2", "BWC-0043", {"c.avi": clip_library["mjpeg"]})]:
        vol = make_volume(serial, clips)
        vol.rename(docks / slot) if docks.exists() else (docks.mkdir(), vol.rename(docks / slot))
    env = {**child_env, "CELERY_BROKER_URL": redis_url}

    subprocess.run([sys.executable, "manage.py", "dockd", str(docks), "--dock", "t1", "--once"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)

    # Routing: the three pulls wait on the dock's own queue, nothing on the media queue yet.
    r = redis.Redis.from_url(redis_url)
    assert r.llen("dock.t1") == 3
    assert r.llen("media") == 0
    assert OffloadSession.objects.filter(status=OffloadSession.Status.RUNNING).count() == 2

    logs = [tmp_path / "dock-worker.log", tmp_path / "media-worker.log"]
    workers = [start_worker("dock.t1", env, logs[0], "dock"), start_worker("media", env, logs[1], "media")]
    try:
        wait_for(lambda: Recording.objects.filter(status=Recording.Status.READY).count() == 3, 240,
                  "three recordings ready", logs)
        wait_for(lambda: OffloadSession.objects.filter(status=OffloadSession.Status.COMPLETE).count() == 2, 60,
                  "both sessions complete", logs)
    finally:
        for w in workers:
            stop_process(w)
    assert not list((docks / "slot1").rglob("*.mp4")) and not list((docks / "slot2").rglob("*.avi"))
    assert (docks / "slot1" / "DEVICE.json").exists()
    dock_log, media_log = logs[0].read_text(), logs[1].read_text()
    assert "Task evidence.pull_clip[" in dock_log and "Task evidence.pull_clip[" not in media_log
    assert "Task evidence.process_recording[" in media_log


def test_worker_killed_mid_clip_is_redelivered_and_the_clip_stored_once(
    redis_url, s3_store, camera, make_volume, child_env, tmp_path
):
    import hashlib

    payload = os.urandom(96 * 1024 * 1024)
    docks = tmp_path / "docks"
    docks.mkdir()
    make_volume("BWC-0042", {"big.mp4": payload}).rename(docks / "slot1")
    # A short visibility timeout lets Redis hand the unacknowledged task to the next worker quickly.
    env = {**child_env, "CELERY_BROKER_URL": redis_url, "TEMOIN_TASK_TIME_LIMIT": "10",
           "TEMOIN_BROKER_VISIBILITY_TIMEOUT": "12"}
    subprocess.run([sys.executable, "manage.py", "dockd", str(docks), "--dock", "t2", "--once"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    log1, log2 = tmp_path / "w1.log", tmp_path / "w2.log"
    first = start_worker("dock.t2", env, log1, "first")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads"):
                os.killpg(first.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL, "the worker finished before it could be killed mid-clip"
        assert (docks / "slot1" / "big.mp4").read_bytes() == payload
        assert Recording.objects.get().status == Recording.Status.RECEIVING

        second = start_worker("dock.t2,media", env, log2, "second")
        try:
            wait_for(lambda: OffloadSession.objects.filter(status=OffloadSession.Status.COMPLETE).exists(), 180,
                      "the redelivered pull to complete the session", [log1, log2])
        finally:
            stop_process(second)
    finally:
        stop_process(first)
    rec = Recording.objects.get()
    assert rec.sha256 == hashlib.sha256(payload).hexdigest()
    assert not (docks / "slot1" / "big.mp4").exists()
