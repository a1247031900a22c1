"""Thin Celery wrapper around the ingest services. Idempotent; retried with backoff.

The registered name (``evidence.pull_clip``) is the one queued messages and docks use: keep it.
"""
from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from devices.models import OffloadItem

from ..integrations.store import StoreError
from . import services


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
