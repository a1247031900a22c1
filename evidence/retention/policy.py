"""An organisation's retention period (CSI L241-2, R241-13 for France; declared elsewhere).

Under French law the period of body-worn camera recordings is one month, set by the law itself: a
French commune cannot choose another (a longer period would keep personal data unlawfully and,
once written into the store's locks, irreversibly). An organisation under another legal framework
declares its period and the text it rests on. Retention ends only ever move later: a lock in the
write-once store cannot be shortened.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import Jurisdiction, Organisation, User
from audit.services import custody_event_append

from ..integrations.store import ObjectMissing, get_store
from ..models import Recording
from ..sources import Regime
from . import RetentionRefused
from .dates import retention_basis_time, retention_end, retention_period
from .objects import recording_store_keys

FRENCH_PERIOD = "P1M"
# Stored on the organisation in French; the pages translate it for an English reader (issue 20).
FRENCH_BASIS = gettext_noop("CSI L241-2 et R241-13 : effacement au bout d'un mois")


def retention_policy_check(*, jurisdiction: str, retention: str) -> None:
    """Raise ValueError (French law) or RetentionRefused when the period is not lawful."""
    retention_period(retention)  # well-formed and positive
    if jurisdiction not in Jurisdiction.values:
        raise ValueError(f"jurisdiction must be one of {', '.join(Jurisdiction.values)}")
    if jurisdiction == Jurisdiction.FRANCE and retention != FRENCH_PERIOD:
        raise RetentionRefused(
            f"retention {retention} refused: under French law body-worn camera recordings are erased after one "
            f"month (CSI L241-2, R241-13), so a French organisation keeps {FRENCH_PERIOD}. An organisation under "
            f"another legal framework is created with --jurisdiction custom and states its basis.")


def organisation_set_retention(*, organisation: Organisation, retention: str, basis: str = "",
                               by: User | None = None, now: dt.datetime | None = None) -> int:
    """Change an organisation's retention period; returns how many recordings' ends moved later.

    Ends are recomputed for recordings not yet erased. A longer period extends their locks; a
    shorter one cannot make an object erasable before its lock, so their ends stay where they are
    and only recordings collected afterwards get the shorter period.
    """
    retention_policy_check(jurisdiction=organisation.jurisdiction, retention=retention)
    if organisation.jurisdiction == Jurisdiction.CUSTOM and not (basis or organisation.retention_basis).strip():
        raise ValueError("state the legal basis of this period (--basis)")
    now = now or timezone.now()
    store = get_store()
    moved = 0
    with transaction.atomic():
        org = Organisation.objects.select_for_update().get(pk=organisation.pk)
        old, org.retention = org.retention, retention
        if basis:
            org.retention_basis = basis
        org.save(update_fields=["retention", "retention_basis"])
        custody_event_append(action="organisation.retention_changed", subject=org, organisation=org, actor=by,
                             actor_label="" if by else "system:cli", now=now,
                             details={"old": old, "new": retention, "basis": org.retention_basis,
                                      "jurisdiction": org.jurisdiction})
        # Videoprotection images keep their partner's authorised period (CSI L252-5), not the organisation's.
        for rec in Recording.objects.select_for_update().filter(
                organisation=org, retain_until__gt=now, regime=Regime.BODY_WORN).exclude(
                status__in=[Recording.Status.ERASED, Recording.Status.ERASING]):
            basis_time, _ = retention_basis_time(started_at=rec.started_at, ingested_at=rec.ingested_at, period=retention)
            new_end = retention_end(recorded_at=basis_time, period=retention, time_zone=org.time_zone)
            if new_end <= rec.retain_until:
                continue
            for key, version in recording_store_keys(rec):
                try:
                    store.extend_retention(key, version, new_end)
                except ObjectMissing:
                    continue
            custody_event_append(action="recording.retention_extended", subject=rec, actor=by,
                                 actor_label="" if by else "system:cli", now=now,
                                 details={"old": rec.retain_until.isoformat(), "new": new_end.isoformat()})
            rec.retain_until = new_end
            rec.save(update_fields=["retain_until"])
            moved += 1
    return moved
