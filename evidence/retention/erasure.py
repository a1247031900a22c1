"""Two-phase erasure of store objects that are not a recording's own (LEGAL.md rule 4, CSI R241-13;
rule 7, CSI R241-14: the erasure is logged before any byte is deleted and after).

Used by the retention sweep (export packages) and the Axis integration (a container's
attachments); imports neither, so they do not import each other.
"""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from audit.services import custody_event_append

from ..integrations.store import StoreError, get_store


def objects_erase_logged(*, subject, organisation, keys: list[str], now: dt.datetime, started: str, done: str,
                         failed: str, details: dict, intent_logged: bool = False, on_done=None) -> list[str]:
    """Two-phase erasure of objects that belong to something other than a recording (an export
    package, an Axis container's attachments): intent logged (unless a previous attempt did),
    objects deleted, completion logged (``on_done`` runs in the completion's transaction).
    Returns the errors (empty when erased)."""
    if not intent_logged:
        with transaction.atomic():
            custody_event_append(action=started, subject=subject, organisation=organisation,
                                 actor_label="system:retention", details={**details, "keys": keys})
    store = get_store()
    errors, deleted, versions = [], [], 0
    at = min(now, timezone.now())
    for key in keys:
        try:
            versions += store.delete(key, now=at)
            deleted.append(key)
        except StoreError as exc:
            errors.append(f"{key}: {exc}"[:1000])
    with transaction.atomic():
        if errors:
            custody_event_append(action=failed, subject=subject, organisation=organisation,
                                 actor_label="system:retention",
                                 details={**details, "errors": errors[:20], "deleted": deleted})
        else:
            if on_done is not None:
                on_done()
            custody_event_append(action=done, subject=subject, organisation=organisation,
                                 actor_label="system:retention",
                                 details={**details, "keys": keys, "versions_deleted": versions})
    return errors
