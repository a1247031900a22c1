"""Every periodic task of CELERY_BEAT_SCHEDULE exists, and docs/operations.md lists each of them."""
from pathlib import Path

from django.conf import settings

from config.celery import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_every_scheduled_task_is_registered_and_documented():
    app.loader.import_default_modules()
    doc = DOC.read_text()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, f"{name}: task {entry['task']} is not registered"
        assert f"`{entry['task']}`" in doc, f"{entry['task']} is missing from docs/operations.md §6"
