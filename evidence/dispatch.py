"""The one place evidence services queue Celery work (ARCHITECTURE.md §3: tasks are queued with
``transaction.on_commit``, idempotent, retried with backoff).

Tasks call services; services never import tasks. They queue by the task's registered name
(``evidence.process_recording``, ``redaction.analyse``…), the names beat schedules and queued
messages already carry, so the import graph stays one-way: tasks → services → dispatch.
"""
from __future__ import annotations

import importlib
import logging

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)

# Registered name → the module that registers it (imported on first use in processes, such as a
# web worker or a management command, that have not loaded it yet).
TASK_MODULES = {
    "evidence.process_recording": "evidence.media.tasks",
    "evidence.pull_clip": "evidence.ingest.tasks",
    "disclosure.build_export": "evidence.disclosure.tasks",
    "redaction.analyse": "evidence.redaction.tasks",
    "redaction.render": "evidence.redaction.tasks",
    "requisitions.unpack_bundle": "evidence.requisitions.tasks",
}


def task_named(name: str):
    """The registered task ``name``."""
    if name not in current_app.tasks:
        importlib.import_module(TASK_MODULES[name])
    return current_app.tasks[name]


def task_enqueue(name: str, *, args: list, queue: str) -> None:
    task_named(name).apply_async(args=args, queue=queue)


def recording_enqueue_media(*, recording_id: int) -> None:
    """Queue the media work; if the broker is down, the periodic requeue picks it up later."""
    try:
        task_enqueue("evidence.process_recording", args=[recording_id], queue="media")
    except Exception:  # noqa: BLE001 - the broker being down must not fail an offload
        log.exception("could not queue media processing of recording %s (will be requeued)", recording_id)


def bundle_enqueue_unpack(*, recording_id: int) -> None:
    """Queue the unpacking of a partner's export bundle (evidence/requisitions/unpack.py); if the
    broker is down, the bundle waits, stored and verified, for the periodic requeue."""
    try:
        task_enqueue("requisitions.unpack_bundle", args=[recording_id], queue="media")
    except Exception:  # noqa: BLE001 - the broker being down must not fail the upload
        log.exception("could not queue the unpacking of bundle %s (will be requeued)", recording_id)


def offload_items_enqueue(*, item_ids: list[int], dock: str) -> None:
    """Queue the clip pulls on the dock's own queue (dock.<name>: only that host reads the volume),
    once the session that lists them is committed."""
    def _queue():
        for pk in item_ids:
            task_enqueue("evidence.pull_clip", args=[pk], queue=f"dock.{dock}")

    transaction.on_commit(_queue)
