"""Thin Celery wrappers around the media services (media queue). Idempotent; retried with backoff.

Registered names (``evidence.process_recording``, ``evidence.requeue_stale``) are those of queued
messages and of the beat schedule (config/settings.py): keep them.
"""
from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from ..integrations.store import StoreError
from ..models import Recording
from . import services


@shared_task(bind=True, acks_late=True, max_retries=3, name="evidence.process_recording")
def process_recording(self, recording_id: int) -> str:
    try:
        recording = Recording.objects.get(pk=recording_id)
        return services.recording_process_media(recording=recording).status
    except StoreError as exc:
        raise self.retry(exc=exc, countdown=30 * 2 ** self.request.retries)
    except (OperationalError, InterfaceError) as exc:
        close_old_connections()
        raise self.retry(exc=exc, countdown=30 * 2 ** self.request.retries)


@shared_task(name="evidence.requeue_stale")
def requeue_stale() -> int:
    return services.recordings_requeue_stale()
