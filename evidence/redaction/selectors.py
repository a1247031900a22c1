"""Reads on redaction, scoped to the requesting user through ``recordings_visible_to``."""
from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Role
from evidence.models import Recording
from evidence.access.selectors import recordings_visible_to

from .models import Audio, Derivative, Mode, RedactionJob

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


def derivative_anonymity(*, derivative: Derivative) -> dict:
    """What disclosure needs to know before a copy leaves as anonymous (LEGAL.md rule 6, issue 15).

    {"fully_anonymised": bool, "reasons": [why not, in French], "audio": "removed"|"kept",
     "audio_reason": str, "second_look_passed": bool|None, "approved": bool}
    A copy is fully anonymised when it is a "complete anonymisation" copy, approved (which needs
    the second look's pass, an approver other than the requester, who played it through), of a
    recording not erased, and its sound was removed or kept for a stated reason.
    """
    reasons = []
    if derivative.mode != Mode.ALL:
        reasons.append("ce n'est pas une copie d'anonymisation complète")
    if derivative.approved_at is None:
        reasons.append("copie non approuvée")
    if derivative.check_passed is not True:
        reasons.append("la vérification automatique a trouvé un visage ou n'a pas eu lieu")
    if derivative.recording.status == Recording.Status.ERASED:
        reasons.append("l'enregistrement a été effacé")
    audio = (derivative.details or {}).get("audio", Audio.REMOVED if not derivative.details.get("audio_codec") else "")
    audio_reason = (derivative.details or {}).get("audio_reason", "")
    if audio != Audio.REMOVED and not audio_reason:
        reasons.append("le son est conservé sans raison indiquée")
    return {"fully_anonymised": not reasons, "reasons": reasons, "audio": audio or Audio.KEPT,
            "audio_reason": audio_reason, "second_look_passed": derivative.check_passed,
            "approved": derivative.approved_at is not None}


def derivative_is_fully_anonymised(*, derivative: Derivative) -> bool:
    """True when ``derivative`` may leave as an anonymous training copy (see ``derivative_anonymity``)."""
    return derivative_anonymity(derivative=derivative)["fully_anonymised"]
