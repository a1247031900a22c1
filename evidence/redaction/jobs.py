"""A redaction job's machine steps (analysis, render): progress written at a bounded rate, and a
failure recorded with its custody event in the same transaction (CSI R241-14: every operation on a
recording is logged).
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction

from audit.services import custody_event_append

from .models import RedactionJob

# Progress is written at most this often (seconds), so that a long job does not hammer the database.
PROGRESS_INTERVAL = 1.0


def job_progress(job: RedactionJob, value: int) -> None:
    RedactionJob.objects.filter(pk=job.pk).update(progress=max(0, min(100, int(value))))


def job_fail(job: RedactionJob, step: str, exc: Exception, now: dt.datetime | None = None) -> RedactionJob:
    detail = getattr(exc, "detail", "")
    with transaction.atomic():
        job = RedactionJob.objects.select_for_update().get(pk=job.pk)
        job.status = RedactionJob.Status.FAILED
        job.status_message = f"{exc} {detail}".strip()[:2000]
        job.save(update_fields=["status", "status_message"])
        custody_event_append(action="redaction.failed", subject=job, recording=job.recording,
                             actor_label="system:redaction",
                             details={"job": job.pk, "step": step, "error": str(exc), "detail": detail[:2000]},
                             now=now)
    return job
