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

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url():
    url = os.environ.get("TEMOIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
    except redis.exceptions.RedisError as exc:
        require_service("Redis", False, f"{url}: {exc}")
    client.flushdb()
    yield url
    client.flushdb()


def _start(args, env, log: Path):
    fh = open(log, "wb")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _worker(queues: str, env, log: Path, name: str):
    return _start([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1",
                   "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "info"],
                  env, log)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for(predicate, timeout, what, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n" + p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


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
    workers = [_worker("dock.t1", env, logs[0], "dock"), _worker("media", env, logs[1], "media")]
    try:
        _wait_for(lambda: Recording.objects.filter(status=Recording.Status.READY).count() == 3, 240,
                  "three recordings ready", logs)
        _wait_for(lambda: OffloadSession.objects.filter(status=OffloadSession.Status.COMPLETE).count() == 2, 60,
                  "both sessions complete", logs)
    finally:
        for w in workers:
            _stop(w)
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
    first = _worker("dock.t2", env, log1, "first")
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

        second = _worker("dock.t2,media", env, log2, "second")
        try:
            _wait_for(lambda: OffloadSession.objects.filter(status=OffloadSession.Status.COMPLETE).exists(), 180,
                      "the redelivered pull to complete the session", [log1, log2])
        finally:
            _stop(second)
    finally:
        _stop(first)
    rec = Recording.objects.get()
    assert rec.sha256 == hashlib.sha256(payload).hexdigest()
    assert not (docks / "slot1" / "big.mp4").exists()
