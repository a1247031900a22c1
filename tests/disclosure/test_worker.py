"""An export built by a real Celery worker over Redis, as in production (not the eager mode)."""
from __future__ import annotations

from pathlib import Path

import pytest

from evidence.disclosure import services
from evidence.disclosure.models import Export
from tests.workers import start_worker, stop_process, wait_for

from .helpers import api, download, extract_zip, run_verify

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


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
    worker = start_worker("media", env, log, "export")
    try:
        wait_for(lambda: Export.objects.get(pk=export_id).status in ("ready", "failed"), 180, "the export", [log])
    finally:
        stop_process(worker)
    export = Export.objects.get(pk=export_id)
    assert export.status == "ready", export.status_message + log.read_text(errors="replace")[-3000:]
    assert "Task disclosure.build_export[" in log.read_text()
    detail = api(users["legal"]).get(f"/api/exports/{export_id}/").json()
    result = run_verify(extract_zip(download(api(users["legal"]), detail["download_url"]), tmp_path / "z"))
    assert result.returncode == 0, result.stdout
