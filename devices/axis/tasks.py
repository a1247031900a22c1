"""Thin Celery wrappers around the Axis services."""
from celery import shared_task

from . import services


@shared_task(name="axis.purge_erased")
def purge_erased() -> int:
    """CSI R241-13: bookmarks, tracks and places of erased recordings go too (beat, hourly)."""
    return services.containers_purge()
