"""Thin Celery wrappers around the redaction machine steps (media queue). Idempotent."""
from celery import shared_task

from evidence.integrations.store import StoreError

from .analysis import redaction_analyse
from .models import RedactionJob
from .render import redaction_render


@shared_task(bind=True, acks_late=True, max_retries=3, name="redaction.analyse")
def analyse_recording(self, job_id: int) -> str:
    job = RedactionJob.objects.get(pk=job_id)
    try:
        return redaction_analyse(job=job).status
    except StoreError as exc:
        raise self.retry(exc=exc, countdown=30 * 2 ** self.request.retries)


@shared_task(bind=True, acks_late=True, max_retries=3, name="redaction.render")
def render_derivative(self, job_id: int) -> str:
    job = RedactionJob.objects.get(pk=job_id)
    try:
        derivative = redaction_render(job=job)
    except StoreError as exc:
        raise self.retry(exc=exc, countdown=30 * 2 ** self.request.retries)
    return str(derivative.pk) if derivative else RedactionJob.objects.get(pk=job_id).status
