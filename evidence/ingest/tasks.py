"""Thin Celery wrapper around the ingest services. Idempotent; retried with backoff.

The registered name (``evidence.pull_clip``) is the one queued messages and docks use: keep it.
"""
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from devices.models import OffloadItem

from ..integrations.store import StoreError
from . import services


def soft_time_limit(hard: int) -> int:
    """A little before the hard limit (TEMOIN_TASK_TIME_LIMIT): one minute, or a fifth of a short limit."""
    return max(1, hard - min(60, hard // 5))


@shared_task(bind=True, acks_late=True, max_retries=6, name="evidence.pull_clip",
             soft_time_limit=soft_time_limit(settings.TEMOIN_TASK_TIME_LIMIT))
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
    except SoftTimeLimitExceeded as exc:
        # A pull that outlives its time (a huge clip, a slow volume) is queued again, and the pull
        # starts over (idempotent). Left to the hard limit, Celery would acknowledge it as failed and
        # the clip would wait on the camera until its next docking (CSI R241-11 V: nothing is lost
        # either way, but the officer expects the clip offloaded now).
        raise self.retry(exc=exc, countdown=5)
    return item.status
