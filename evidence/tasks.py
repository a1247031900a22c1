"""Thin Celery wrappers around evidence services. Idempotent; retried with backoff."""
from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from devices.models import OffloadItem

from . import services
from .integrations.store import StoreError
from .models import Recording


@shared_task(bind=True, acks_late=True, max_retries=6, name="evidence.pull_clip")
def pull_clip(self, item_id: int) -> str:
    """Runs on the dock's own queue (dock.<name>): only that host can read the volume."""
    try:
        item = OffloadItem.objects.get(pk=item_id)
        final = self.request.retries >= self.max_retries
        item = services.offload_item_pull(item=item, final_attempt=final)
        services.offload_session_finish(session=item.session)
    except StoreError as exc:
        raise self.retry(exc=exc, countdown=min(600, 5 * 2 ** self.request.retries))
    except (OperationalError, InterfaceError) as exc:
        # The database restarted or failed over mid-pull: the clip is still on the camera and
        # every step is idempotent, so pull it again once the database is back (nothing lost).
        close_old_connections()
        raise self.retry(exc=exc, countdown=min(600, 5 * 2 ** self.request.retries), max_retries=None)
    return item.status


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


@shared_task(name="evidence.retention_sweep")
def retention_sweep() -> int:
    """CSI R241-13: erase what is due, at least hourly (beat)."""
    return len(services.retention_sweep().erased)


@shared_task(name="evidence.store_sweep_incomplete")
def store_sweep_incomplete() -> int:
    """Leftovers of uploads a killed worker never finished (staging files, multipart uploads)."""
    return services.store_sweep_incomplete()


@shared_task(name="evidence.retention_notice")
def retention_notice() -> int:
    return services.retention_notice_send()


@shared_task(name="evidence.store_orphans_settle")
def store_orphans_settle() -> int:
    """Objects nothing owns: registered and logged, erased when their lock ends (docs/compliance.md)."""
    return len(services.store_orphans_settle()["erased"])
