"""How long a partner's declarant is kept (issue 22): the name, organisation and role, e-mail or
telephone, and browser of the person who declared on a requisition's link before uploading.

The rule: **three years after the last custody entry that names them**, the entries they belong to.
Who handed the images over is part of their collection and communication, which the log records
and keeps three years (CSI R241-14, LIL art. 101; LEGAL.md rules 7 and 10: partner footage is
logged "with its source, uploader and requisition"): ``requisition.declared``,
``requisition.upload_started`` and ``recording.collected`` carry these very details and are purged
after three years (``audit.services.custody_purge``). Keeping the row longer would keep personal
data the register no longer needs (GDPR art. 5(1)(e)); erasing it sooner (with the images, at most
one month for videoprotection, CSI L252-5) would leave the register's entries pointing at nobody
while the CNIL may still ask who handed the images over. Two cases wait: a link still open (its
declarant may still upload), and a file of the requisition still held for a procedure (CSI R241-13:
the images are used in it, and so is who handed them over).

The sweep (``retention_sweep``, every 15 minutes) blanks the row's personal fields, keeping the row
(uploads point at it; the one-to-one row still refuses a second declaration on the link), and logs
``requisition.declarant_erased`` in the same transaction. The compliance audit
(``traceability.three_years``) reports a declarant kept past that end.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Max, QuerySet
from django.db.models.functions import Coalesce, Greatest

from audit.services import custody_event_append

from ..models import Recording
from ..requisitions.models import RequisitionDeclarant, RequisitionUpload
from .holds import active_holds_q
from .traceability import traceability_cutoff

PERSONAL_FIELDS = ("name", "role", "contact", "user_agent", "binding_sha256")


def declarants_kept_past(*, before: dt.datetime, now: dt.datetime) -> QuerySet[RequisitionDeclarant]:
    """Declarants not yet erased whose last entry (declaration, or an upload they started or
    finished) is older than ``before``, their link closed at ``now`` and no file of their
    requisition held. Annotated with ``last_entry``."""
    held = RequisitionUpload.objects.filter(
        recording__in=Recording.objects.filter(active_holds_q())).values("requisition_id")
    last_entry = Greatest("declared_at", Coalesce(Max("uploads__created_at"), "declared_at"),
                          Coalesce(Max("uploads__completed_at"), "declared_at"))
    return (RequisitionDeclarant.objects.exclude(name="").filter(requisition__expires_at__lte=now)
            .exclude(requisition_id__in=held).annotate(last_entry=last_entry).filter(last_entry__lt=before))


def declarants_erase(*, now: dt.datetime) -> list[int]:
    """Erase the declarants kept three years past their last entry; returns their requisitions' ids."""
    cutoff = traceability_cutoff(now)
    erased = []
    for pk in declarants_kept_past(before=cutoff, now=now).values_list("pk", flat=True):
        with transaction.atomic():
            declarant = (RequisitionDeclarant.objects.select_for_update().select_related("requisition__organisation")
                         .get(pk=pk))
            # Checked again under the lock: erased by another sweep, or held meanwhile.
            last_entry = declarants_kept_past(before=cutoff, now=now).filter(pk=pk).values_list(
                "last_entry", flat=True).first()
            if last_entry is None:
                continue
            for name in PERSONAL_FIELDS:
                setattr(declarant, name, "")
            declarant.save(update_fields=list(PERSONAL_FIELDS))
            requisition = declarant.requisition
            custody_event_append(
                action="requisition.declarant_erased", subject=requisition, organisation=requisition.organisation,
                actor_label="system:retention", now=now,
                details={"requisition": requisition.pk, "declared_at": declarant.declared_at.isoformat(),
                         "last_entry": last_entry.isoformat(), "erased": list(PERSONAL_FIELDS),
                         "rule": "3 ans après la dernière entrée du journal qui le nomme (CSI R241-14, LIL art. 101)"})
            erased.append(requisition.pk)
    return erased
