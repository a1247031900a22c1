"""Reads on redaction, scoped to the requesting user through ``recordings_visible_to``."""
from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Role
from evidence.models import Recording
from evidence.selectors import recordings_visible_to

from .models import Derivative, RedactionJob

# Who may redact (and approve): the head of service and authorised agents, legal staff, the DPO
# (CSI R241-12; LEGAL.md rules 6 and 8).
REDACTORS = {Role.SUPERVISOR, Role.LEGAL, Role.DPO}


def approved_derivative(*, recording: Recording, mode: str) -> Derivative | None:
    """The latest approved redacted copy of ``recording`` in ``mode`` ("all" or "others").

    Public interface for disclosure (exports, access requests). The caller has already checked
    that its user may see ``recording``. Nothing is returned for an erased recording.
    """
    if recording.gone:
        return None
    return (Derivative.objects.filter(recording=recording, mode=mode, approved_at__isnull=False)
            .order_by("-approved_at", "-id").first())


def redaction_recordings_for(*, user) -> QuerySet[Recording]:
    """Recordings the user may redact: visible to them, and only for the redacting roles."""
    if getattr(user, "role", None) not in REDACTORS:
        return Recording.objects.none()
    return recordings_visible_to(user=user)


def redaction_jobs_visible_to(*, user) -> QuerySet[RedactionJob]:
    return (RedactionJob.objects.filter(recording__in=redaction_recordings_for(user=user))
            .select_related("recording", "recording__camera", "created_by"))


def derivatives_visible_to(*, user) -> QuerySet[Derivative]:
    return (Derivative.objects.filter(recording__in=redaction_recordings_for(user=user))
            .select_related("job", "recording", "approved_by", "created_by"))
