"""The three-year purge of the traces behind the register (CSI R241-14, LIL art. 101).

The custody log is purged after three years by ``audit.services.custody_purge``, after a signed
checkpoint. The rows that log refers to are personal data kept for the same three years and no
longer: consultations with their motifs; extractions, export packages and shares with their
recipients; released holds and their motifs; closed data-subject access requests; tombstones of
erased recordings with what pointed at them (offload items, Axis clips and containers, redaction
jobs and copies). A row still in use is never purged: a hold in force, an open request, a package
still in the store.
"""
from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import custody_event_append

from ..models import Annotation, Consultation, Hold, Recording, RecordingGrant


def traceability_cutoff(now: dt.datetime) -> dt.datetime:
    return now - relativedelta(years=settings.CUSTODY_RETENTION_YEARS)


def traceability_purge(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete the traceability rows older than the log's retention; returns the counts per kind.

    Refused with a date in the future (as the log's purge): nothing is purged early.
    """
    from devices.axis.models import AxisBookmark, AxisClip, AxisObject, AxisRecording
    from devices.models import OffloadItem, OffloadSession
    from evidence.disclosure.models import AccessRequest, Export, ExportItem, Extraction, Share
    from evidence.redaction.models import Derivative, RedactionJob

    real_now = timezone.now()
    now = now or real_now
    if now > real_now + dt.timedelta(minutes=5):
        raise ValueError("the traceability purge cannot run with a future date")
    cutoff = traceability_cutoff(now)
    counts: dict[str, int] = {}

    def purge(name: str, qs) -> None:
        _total, per_model = qs.delete()
        deleted = per_model.get(qs.model._meta.label, 0)  # the rows themselves, not what cascades with them
        if deleted:
            counts[name] = counts.get(name, 0) + deleted

    with transaction.atomic():
        tombstones = Recording.objects.filter(status=Recording.Status.ERASED, erased_at__lt=cutoff)
        old_exports = Export.objects.filter(created_at__lt=cutoff, status__in=[Export.Status.ERASED,
                                                                                Export.Status.FAILED])
        purge("consultations", Consultation.objects.filter(Q(created_at__lt=cutoff) | Q(recording__in=tombstones)))
        purge("extractions", Extraction.objects.filter(Q(created_at__lt=cutoff) | Q(recording__in=tombstones)))
        purge("shares", Share.objects.filter(created_at__lt=cutoff, expires_at__lt=now))
        # Packages of a closed request older than three years go with it (below).
        closed = AccessRequest.objects.filter(closed_at__lt=cutoff)
        stale_exports = Export.objects.filter(Q(pk__in=old_exports) | Q(access_request__in=closed),
                                              status__in=[Export.Status.ERASED, Export.Status.FAILED])
        purge("shares", Share.objects.filter(export__in=stale_exports))
        purge("export items", ExportItem.objects.filter(export__in=stale_exports))
        purge("exports", stale_exports)
        # A request whose package is still in the store waits for it.
        closed = closed.exclude(exports__status__in=[Export.Status.READY, Export.Status.ERASING,
                                                     Export.Status.QUEUED, Export.Status.RUNNING])
        for request in closed:
            request.recordings.clear()
        purge("access requests", closed)
        old_holds = Hold.objects.filter(released_at__lt=cutoff)
        purge("holds", old_holds)
        # Tombstones, and what still points at them.
        if tombstones.exists():
            AccessRequestRecordings = AccessRequest.recordings.through
            purge("access request links", AccessRequestRecordings.objects.filter(recording__in=tombstones))
            Hold.covered.through.objects.filter(recording__in=tombstones).delete()
            purge("holds", Hold.objects.filter(recording__in=tombstones, released_at__isnull=False))
            purge("annotations", Annotation.objects.filter(recording__in=tombstones))
            purge("grants", RecordingGrant.objects.filter(recording__in=tombstones))
            purge("redacted copies", Derivative.objects.filter(recording__in=tombstones))
            purge("redaction jobs", RedactionJob.objects.filter(recording__in=tombstones))
            purge("offload items", OffloadItem.objects.filter(recording__in=tombstones))
            clips = AxisClip.objects.filter(recording__in=tombstones)
            containers = list(clips.values_list("container_id", flat=True).distinct())
            purge("axis clips", clips)
            empty = AxisRecording.objects.filter(pk__in=containers, purged_at__isnull=False, clips__isnull=True)
            purge("axis bookmarks", AxisBookmark.objects.filter(container__in=empty))
            purge("axis objects", AxisObject.objects.filter(container__in=empty))
            purge("axis containers", empty)
            # Duplicates first: they point at their original.
            held_tombstones = Hold.objects.filter(recording__in=tombstones).values("recording_id")
            purge("tombstones", tombstones.filter(duplicate_of__isnull=False).exclude(pk__in=held_tombstones))
            purge("tombstones", tombstones.exclude(pk__in=held_tombstones)
                  .exclude(pk__in=Recording.objects.filter(duplicate_of__isnull=False).values("duplicate_of_id")))
        purge("offload sessions", OffloadSession.objects.filter(started_at__lt=cutoff, items__isnull=True)
              .exclude(status=OffloadSession.Status.RUNNING))
        if counts:
            custody_event_append(action="traceability.purged", subject_type="audit.register",
                                 subject_id=cutoff.date().isoformat(), actor_label="system:custody",
                                 details={"before": cutoff.isoformat(), "deleted": counts,
                                          "retention_years": settings.CUSTODY_RETENTION_YEARS})
    return counts


def traceability_overdue(*, now: dt.datetime, grace: dt.timedelta):
    """(kind, queryset, date field) of the rows the purge should have removed by ``now``: what
    the compliance audit reports as kept too long."""
    from evidence.disclosure.models import AccessRequest, Export, Extraction, Share

    cutoff = traceability_cutoff(now) - grace
    return [
        ("consultation", Consultation.objects.filter(created_at__lt=cutoff), "created_at"),
        ("extraction", Extraction.objects.filter(created_at__lt=cutoff), "created_at"),
        ("export", Export.objects.filter(created_at__lt=cutoff, status__in=[Export.Status.ERASED,
                                                                          Export.Status.FAILED]), "created_at"),
        ("share", Share.objects.filter(created_at__lt=cutoff, expires_at__lt=now), "created_at"),
        ("hold", Hold.objects.filter(released_at__lt=cutoff), "released_at"),
        ("access_request", AccessRequest.objects.filter(closed_at__lt=cutoff).exclude(
            exports__status__in=[Export.Status.READY, Export.Status.ERASING]), "closed_at"),
        ("tombstone", Recording.objects.filter(status=Recording.Status.ERASED, erased_at__lt=cutoff), "erased_at"),
    ]
