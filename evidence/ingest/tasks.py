"""Thin Celery wrapper around the ingest services. Idempotent; retried with backoff.

The registered name (``evidence.pull_clip``) is the one queued messages and docks use: keep it.
"""
import contextlib
import fcntl
import hashlib
import logging
import os

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from devices.models import OffloadItem

from ..integrations.store import ChunkPool, StoreError
from . import services


def soft_time_limit(hard: int) -> int:
    """A little before the hard limit (TEMOIN_TASK_TIME_LIMIT): one minute, or a fifth of a short limit."""
    return max(1, hard - min(60, hard // 5))


@shared_task(bind=True, acks_late=True, max_retries=6, name="evidence.pull_clip",
             soft_time_limit=soft_time_limit(settings.TEMOIN_TASK_TIME_LIMIT))
def pull_clip(self, item_id: int) -> str:
    """Runs on the dock's own queue (dock.<name>): only that host can read the volume."""
    try:
        with _pull_lock(item_id) as lock:
            if not lock["held"]:
                # A second message for a clip being pulled right now (dock_worker_ready): look again
                # once that pull is over; it will then find the clip pulled and do nothing.
                raise self.retry(countdown=10, max_retries=None)
            item = OffloadItem.objects.get(pk=item_id)
            final = self.request.retries >= self.max_retries
            item = services.offload_item_pull(item=item, final_attempt=final, pool=_chunk_pool())
            lock["done"] = item.status != OffloadItem.Status.PENDING
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


_pool: ChunkPool | None = None

# Buffers kept between pulls by one worker process: enough for the read-ahead of the next clip; the
# rest of a clip's kept bytes go back to the system after its read-back (an idle dock worker does
# not hold a clip's worth of memory).
_POOL_IDLE_LIMIT = 64 * 1024 * 1024


def _chunk_pool() -> ChunkPool:
    """This process's chunk pool (page-aligned buffers: the store writes them with O_DIRECT, issue
    19), made on first use, that is in the worker process that pulls (its buffers are private
    mappings: a fork would copy them, never share them)."""
    global _pool
    if _pool is None:
        _pool = ChunkPool(settings.TEMOIN_CHUNK_SIZE, limit=_POOL_IDLE_LIMIT)
    return _pool


@contextlib.contextmanager
def _pull_lock(item_id: int):
    """One pull of a clip at a time on this dock host: an exclusive lock on a file of the host's data
    folder, released by the kernel if the worker dies. Yields {"held": False} when another process
    holds it; the holder sets "done" once the clip is settled, and the file goes (any later message
    finds the clip settled whichever file it locks). Two messages for one clip can exist (the broker
    restores an unacknowledged one, and a starting dock worker queues its dock's pending pulls
    again); the second then does nothing."""
    database = hashlib.sha256(str(settings.DATABASES["default"]["NAME"]).encode()).hexdigest()[:12]
    path = settings.DATA_DIR / "locks" / f"pull-{database}-{item_id}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # no writable data folder on this host: pull as before, unguarded
        logging.getLogger("temoin.offload").warning("no lock file for pull %s under %s", item_id, path.parent)
        yield {"held": True, "done": False}
        return
    lock = {"held": False, "done": False}
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock["held"] = True
        except BlockingIOError:
            pass
        yield lock
        if lock["held"] and lock["done"]:
            path.unlink(missing_ok=True)
    finally:
        os.close(fd)


@worker_ready.connect
def dock_worker_ready(sender=None, **_kwargs) -> int:
    """A dock worker that starts queues again the pending pulls of its dock's running sessions.

    The Redis transport moves a message from the queue to its "unacknowledged" set in two steps; a
    worker killed between them (SIGKILL, power cut) loses that message for good, and the clip would
    wait on the camera with its session open, which keeps the camera from a new docking. Whatever
    was lost is queued again when the host's worker comes back; a clip already pulled, or being
    pulled, is left alone (``_pull_lock``, the item's status). CSI R241-11 V: nothing is lost either
    way; this makes the offload finish without the officer docking again."""
    queues = []
    with contextlib.suppress(AttributeError):
        queues = [q.name for q in sender.task_consumer.queues]
    # (the worker's main process: its pool was forked before this database connection)
    return sum(services.offload_pulls_requeue(dock=name[len("dock."):]) for name in queues if name.startswith("dock."))
