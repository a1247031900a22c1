"""Celery wrappers around the custody services (beat entries in config/settings.py)."""
import logging

from celery import shared_task

from . import services
from .models import Alert

log = logging.getLogger(__name__)


@shared_task(name="audit.verify_chain")
def verify_chain() -> bool:
    """Recompute the custody chain (mode chosen by services.custody_verify_scheduled); a failure
    raises an alert for administrators (and logs ERROR)."""
    return services.custody_verify_scheduled(triggered_by="beat").ok


@shared_task(name="audit.checkpoint")
def checkpoint() -> int | None:
    """Sign the head of the custody log (at least daily: CSI R241-14, checkpoints anchor the purge)."""
    try:
        cp = services.custody_checkpoint_create()
    except Exception as exc:  # noqa: BLE001 - an administrator must hear of it, whatever it is
        log.exception("custody checkpoint failed")
        services.alert_raise(kind=Alert.Kind.CHECKPOINT_FAILED, seq=None, problem_kind="",
                              message=f"Point de contrôle signé impossible : {exc}")
        raise
    return cp.seq if cp else None


@shared_task(name="audit.purge")
def purge() -> int:
    """CSI R241-14: remove entries older than three years, after a signed checkpoint, and the rows
    behind the register of the same age (consultations, extractions, exports, holds, requests)."""
    from evidence.retention.traceability import traceability_purge

    try:
        result = services.custody_purge()
        traceability_purge()
    except Exception as exc:  # noqa: BLE001
        log.exception("custody purge failed")
        services.alert_raise(kind=Alert.Kind.PURGE_FAILED, seq=None, problem_kind="",
                              message=f"Purge du journal de traçabilité impossible : {exc}")
        raise
    return result.removed


@shared_task(name="audit.compliance_audit")
def compliance_audit() -> bool:
    """Every legal invariant, daily (docs/compliance.md); violations raise alerts for the DPO and the mayor."""
    from .compliance.services import compliance_audit_run

    return compliance_audit_run(triggered_by="beat").ok



@shared_task(name="audit.health_refresh")
def health_refresh() -> str:
    """The Celery workers' health (a broadcast inspection), recorded for /sante/ and /api/health/,
    which read it instead of broadcasting on every request (config/ops/health.py)."""
    from config.ops.health import workers_refresh

    return workers_refresh().status


@shared_task(name="audit.request_windows_prune")
def request_windows_prune() -> int:
    """Rate-limit and failed-login windows older than two days (audit/throttle.py)."""
    from .throttle import window_prune

    return window_prune()


@shared_task(name="audit.login_failures_report")
def login_failures_report() -> int:
    """The count of each ended window of repeated failed logins, to the custody log (audit/throttle.py)."""
    from .throttle import login_failures_report as report

    return report()
