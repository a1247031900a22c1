"""Thin Celery wrappers around the requisition services (registered names: keep them)."""
from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections

from ..integrations.store import StoreError
from .staging import bundles_requeue
from .staging import staging_sweep as _staging_sweep
from .unpack import bundle_unpack


@shared_task(bind=True, acks_late=True, max_retries=6, name="requisitions.unpack_bundle")
def unpack_bundle(self, recording_id: int) -> str:
    """A partner's export bundle, stored and verified: each clip becomes its own recording (idempotent)."""
    try:
        final = self.request.retries >= self.max_retries
        return bundle_unpack(recording_id=recording_id, final_attempt=final).message
    except StoreError as exc:
        raise self.retry(exc=exc, countdown=min(600, 5 * 2 ** self.request.retries))
    except (OperationalError, InterfaceError) as exc:
        close_old_connections()
        raise self.retry(exc=exc, countdown=min(600, 5 * 2 ** self.request.retries))


@shared_task(name="requisitions.staging_sweep")
def staging_sweep() -> int:
    """Staging files of abandoned tus uploads, and bundles never unpacked (beat, hourly)."""
    removed = _staging_sweep()
    bundles_requeue()
    return len(removed)
