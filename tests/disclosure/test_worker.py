"""An export built by a real Celery worker over Redis, as in production (not the eager mode)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evidence.disclosure import services
from evidence.disclosure.models import Export
from tests.conftest import require_service

from .helpers import api, download, extract_zip, run_verify

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def redis_url():
    # Our own database number unless the environment names one (CI: TEMOIN_TEST_REDIS_URL).
    url = os.environ.get("TEMOIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
    except redis.exceptions.RedisError as exc:
        require_service("Redis", False, f"{url}: {exc}")
    client.flushdb()
    yield url
    client.flushdb()


def test_a_real_worker_builds_the_package_queued_on_commit(recordings, users, redis_url, child_env, settings,
                                                           tmp_path, monkeypatch):
    from config.celery import app
    from evidence.disclosure.tasks import build_export

    queued = []
    monkeypatch.setattr(services, "export_enqueue", lambda *, export_id: queued.append(export_id))
    response = api(users["legal"]).post("/api/exports/", {
        "recordings": [r.pk for r in recordings], "purpose": "administrative", "recipient": "Préfecture",
        "motif": "Contrôle administratif", "redaction": "none"}, format="json")
    export_id = response.json()["id"]
    assert queued == [export_id] and Export.objects.get(pk=export_id).status == "queued"
    # From here on, tasks go to the broker (the fixtures ran the media work eagerly).
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False  # set back to True by the autouse fixture of the next test
    with app.connection_for_write(redis_url) as connection:
        build_export.apply_async(args=[export_id], queue="media", connection=connection)

    env = {**child_env, "CELERY_BROKER_URL": redis_url, "TEMOIN_CUSTODY_KEY": str(settings.CUSTODY_SIGNING_KEY)}
    log = tmp_path / "worker.log"
    with open(log, "wb") as fh:
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "media", "-c", "1",
                                   "-n", "export@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
                                   "-l", "info"], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if Export.objects.get(pk=export_id).status in ("ready", "failed"):
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    export = Export.objects.get(pk=export_id)
    assert export.status == "ready", export.status_message + log.read_text(errors="replace")[-3000:]
    assert "Task disclosure.build_export[" in log.read_text()
    detail = api(users["legal"]).get(f"/api/exports/{export_id}/").json()
    result = run_verify(extract_zip(download(api(users["legal"]), detail["download_url"]), tmp_path / "z"))
    assert result.returncode == 0, result.stdout
