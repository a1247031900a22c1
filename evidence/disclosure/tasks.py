"""Thin Celery wrappers around disclosure services. Idempotent."""
from celery import shared_task

from . import services
from .models import Export


@shared_task(bind=True, acks_late=True, name="disclosure.build_export")
def build_export(self, export_id: int) -> str:
    """Build an export package (a few GB at most: bounded by disk speed, see bench/export.py)."""
    export = Export.objects.get(pk=export_id)
    return services.export_build(export=export).status


@shared_task(name="disclosure.access_request_reminders")
def access_request_reminders() -> int:
    """Daily: e-mail the DPOs the access requests due within 7 days, 2 days, or overdue (once each)."""
    from .reminders import access_request_reminders_send

    return access_request_reminders_send()
