"""Running the compliance audit, recording its result, alerting, and the signed report."""
from __future__ import annotations

import datetime as dt
import json
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Alert, ComplianceAudit
from ..services import alert_raise, custody_event_append
from .invariants import INVARIANTS, AuditContext, CouldNotLook, Violation

log = logging.getLogger(__name__)
REPORT_FORMAT = "temoin-compliance-report/1"


def compliance_check(*, now: dt.datetime | None = None, store=None) -> tuple[list[Violation], AuditContext]:
    """Check every invariant; raises CouldNotLook when a part of the deployment cannot be read."""
    from evidence.integrations.store import get_store
    from evidence.retention.dates import fixed_duration

    now = now or timezone.now()
    ctx = AuditContext(now=now, grace=fixed_duration(settings.TEMOIN_COMPLIANCE_GRACE), store=store or get_store())
    violations: list[Violation] = []
    done = set()
    for invariant in INVARIANTS:
        if invariant.check in done:
            continue  # one check may serve two rules (locks and legal holds are read together)
        done.add(invariant.check)
        try:
            violations.extend(invariant.check(ctx))
        except CouldNotLook:
            raise
        except Exception as exc:  # noqa: BLE001 - a check that crashed did not look
            log.exception("compliance check %s failed", invariant.id)
            raise CouldNotLook(f"{invariant.id}: {exc}") from exc
    return violations, ctx


def compliance_audit_run(*, now: dt.datetime | None = None, triggered_by: str = "", record: bool = True,
                         store=None) -> ComplianceAudit:
    """Run the audit, record it, raise one alert per rule and organisation that does not hold and
    close the alerts of rules that hold again."""
    started = timezone.now()
    now = now or started
    from accounts.models import Organisation

    slugs = dict(Organisation.objects.values_list("pk", "slug"))
    try:
        violations, ctx = compliance_check(now=now, store=store)
        could_not_look = ""
    except CouldNotLook as exc:
        violations, ctx, could_not_look = [], None, str(exc)
    audit = ComplianceAudit(
        started_at=started, checked_at=now, duration=(timezone.now() - started).total_seconds(),
        ok=not violations and not could_not_look, could_not_look=could_not_look,
        violations=[v.as_dict(slugs) for v in violations[:5000]], violation_count=len(violations),
        organisations=sorted({v.organisation_id for v in violations if v.organisation_id}),
        heads_checked=ctx.heads_checked if ctx else 0, triggered_by=triggered_by[:100])
    if not record:
        return audit
    with transaction.atomic():
        audit.save()
        custody_event_append(action="compliance.audited", subject_type="audit.complianceaudit",
                             subject_id=str(audit.pk), actor_label=f"system:compliance@{triggered_by or 'cli'}",
                             details={"ok": audit.ok, "violations": audit.violation_count,
                                      "could_not_look": could_not_look or None,
                                      "rules": sorted({v.rule for v in violations})})
    _alerts_update(audit, violations, could_not_look)
    return audit


def _alerts_update(audit: ComplianceAudit, violations: list[Violation], could_not_look: str) -> None:
    if could_not_look:
        alert_raise(kind=Alert.Kind.COMPLIANCE, seq=None, problem_kind="could_not_look",
                    message=f"Contrôle de conformité impossible : {could_not_look}"[:2000])
        return
    groups: dict[tuple[str, int | None], list[Violation]] = {}
    for v in violations:
        groups.setdefault((v.rule, v.organisation_id), []).append(v)
    open_keys = set()
    for (rule, org), items in groups.items():
        key = f"{rule}:{org or '-'}"
        open_keys.add(key)
        first = items[0]
        alert_raise(kind=Alert.Kind.COMPLIANCE, seq=None, problem_kind=key, organisation=None if org is None else
                    _organisation(org), message=(f"{len(items)} écart(s) à la règle {rule} — {first.subject} : "
                                                 f"{first.message}")[:2000])
    # Rules that hold again: their alerts are closed by this audit.
    for alert in Alert.objects.filter(kind=Alert.Kind.COMPLIANCE, acknowledged_at__isnull=True):
        if alert.problem_kind not in open_keys:
            alert.acknowledged_at = timezone.now()
            alert.acknowledgement = f"résolu : le contrôle de conformité n° {audit.pk} ne le constate plus"
            alert.save(update_fields=["acknowledged_at", "acknowledgement"])


def _organisation(pk: int):
    from accounts.models import Organisation

    return Organisation.objects.filter(pk=pk).first()


# --- The signed report (JSON and PDF) a DPO hands to the CNIL ------------------------------------------

def compliance_report(*, audit: ComplianceAudit, organisation, by=None) -> dict:
    """The audit's result for one organisation, signed with the deployment's key (Ed25519).

    Deployment-wide violations (the custody chain) are included: they concern every organisation.
    """
    from ..integrations import signing
    from ..models import CustodyEvent

    mine = [v for v in audit.violations if v.get("organisation") in (None, organisation.slug)]
    head = CustodyEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    statement = {
        "format": REPORT_FORMAT,
        "organisation": {"slug": organisation.slug, "name": organisation.name,
                         "jurisdiction": organisation.jurisdiction, "retention": organisation.retention},
        "audit": {"id": audit.pk, "checked_at": audit.checked_at.isoformat(), "ok": not mine and not audit.could_not_look,
                  "could_not_look": audit.could_not_look or None},
        "generated_at": timezone.now().isoformat(),
        "rules": [{"id": i.id, "title": i.title, "articles": i.articles,
                   "holds": not any(v["rule"] == i.id for v in mine) and not audit.could_not_look}
                  for i in INVARIANTS],
        "violations": mine,
        "custody_head": {"seq": head[0], "hash": head[1]} if head else None,
        "custody_retention_years": settings.CUSTODY_RETENTION_YEARS,
    }
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    signature, public = signing.sign(payload.encode())
    if by is not None:
        with transaction.atomic():
            custody_event_append(action="compliance.report_exported", subject_type="audit.complianceaudit",
                                 subject_id=str(audit.pk), organisation=organisation, actor=by,
                                 details={"audit": audit.pk, "violations": len(mine)})
    return {"format": REPORT_FORMAT, "payload": payload, "signature": signature, "algorithm": "Ed25519",
            "key_id": signing.key_id(public), "public_key_pem": signing.public_key_pem(public)}


def compliance_report_verify(document: dict) -> bool:
    """Check a report's signature with the public key it names (any Ed25519 tool does the same)."""
    from cryptography.hazmat.primitives import serialization

    from ..integrations import signing

    key = serialization.load_pem_public_key(document["public_key_pem"].encode())
    return signing.verify(key, document["payload"].encode(), document["signature"])
