"""Thin Celery wrappers around the retention services, run by beat (config/settings.py).

Registered names (``evidence.retention_sweep``…) are those of the beat schedule: keep them.
"""
from celery import shared_task

from .notices import retention_notice_send
from .sweep import retention_sweep as _retention_sweep
from .sweep import store_orphans_settle as _store_orphans_settle
from .sweep import store_sweep_incomplete as _store_sweep_incomplete


@shared_task(name="evidence.retention_sweep")
def retention_sweep() -> int:
    """CSI R241-13: erase what is due, at least hourly (beat)."""
    return len(_retention_sweep().erased)


@shared_task(name="evidence.store_sweep_incomplete")
def store_sweep_incomplete() -> int:
    """Leftovers of uploads a killed worker never finished (staging files, multipart uploads)."""
    return _store_sweep_incomplete()


@shared_task(name="evidence.retention_notice")
def retention_notice() -> int:
    return retention_notice_send()


@shared_task(name="evidence.store_orphans_settle")
def store_orphans_settle() -> int:
    """Objects nothing owns: registered and logged, erased when their lock ends (docs/compliance.md)."""
    return len(_store_orphans_settle()["erased"])
