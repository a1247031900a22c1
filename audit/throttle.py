"""Counting per source and fixed window, in the database: rate limits and failed-login aggregation.

The database is the one store every web process, worker and dockd share (the embedded default
has no Redis), and a row per (scope, source, window) bounds what a flood can write: a million
failed logins from one address in one window are one row whose count is a million, not a
million custody entries (issue 17, finding 6).
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from .models import RequestWindow

SAMPLES_MAX = 10
LOGIN_FAILED = "login.failed"


@dataclass(frozen=True)
class WindowCount:
    count: int
    window_start: dt.datetime
    window_seconds: int

    @property
    def first(self) -> bool:
        return self.count == 1

    @property
    def retry_after(self) -> int:
        end = self.window_start + dt.timedelta(seconds=self.window_seconds)
        return max(1, int((end - timezone.now()).total_seconds()) + 1)


def window_start_of(now: dt.datetime, seconds: int) -> dt.datetime:
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.timezone.utc)


def window_count(*, scope: str, source: str, seconds: int, now: dt.datetime | None = None,
                 sample: str = "") -> WindowCount:
    """Count one more event of ``scope`` from ``source`` in the current window; returns the count so far.

    Runs in its own savepoint: a concurrent first insert (IntegrityError) becomes an increment."""
    now = now or timezone.now()
    start = window_start_of(now, seconds)
    source = source[:200]
    for _ in range(3):
        updated = (RequestWindow.objects.filter(scope=scope, source=source, window_start=start)
                   .update(count=F("count") + 1, last_at=now))
        if not updated:
            try:
                with transaction.atomic():
                    RequestWindow.objects.create(scope=scope, source=source, window_start=start, count=1,
                                                 first_at=now, last_at=now, samples=[sample[:150]] if sample else [])
                return WindowCount(1, start, seconds)
            except IntegrityError:
                continue
        row = RequestWindow.objects.filter(scope=scope, source=source, window_start=start).values(
            "pk", "count", "samples").get()
        if sample and len(row["samples"]) < SAMPLES_MAX and sample[:150] not in row["samples"]:
            RequestWindow.objects.filter(pk=row["pk"]).update(samples=row["samples"] + [sample[:150]])
        return WindowCount(row["count"], start, seconds)
    raise RuntimeError(f"could not count {scope} for {source}")


def window_prune(*, older_than: dt.timedelta = dt.timedelta(days=2), now: dt.datetime | None = None) -> int:
    """Windows older than ``older_than``; failed-login windows only once their count is in the log."""
    from django.db.models import Q

    now = now or timezone.now()
    deleted, _ = (RequestWindow.objects.filter(window_start__lt=now - older_than)
                  .exclude(Q(scope=LOGIN_FAILED) & Q(count__gt=1) & Q(reported_at__isnull=True)).delete())
    return deleted


def client_address(request) -> str:
    """The client's address as the deployment's TLS proxy reports it (TEMOIN_TRUSTED_PROXY_HOPS)."""
    hops = getattr(settings, "TEMOIN_TRUSTED_PROXY_HOPS", 0)
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    if hops:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:100]
    return remote[:100]


def rate_limit(scope: str, *, setting: str, window: int = 60, source=None, json: bool = False):
    """View decorator: at most ``settings.<setting>`` requests of ``scope`` per source and ``window``
    seconds, then 429 with Retry-After. ``source(request)`` defaults to the client's address;
    a limit of 0 turns the limit off. Share downloads use it too (evidence/disclosure)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            limit = int(getattr(settings, setting, 0) or 0)
            if limit > 0:
                who = (source(request) if source else None) or client_address(request)
                counted = window_count(scope=scope, source=who, seconds=window)
                if counted.count > limit:
                    return too_many(counted, json=json)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def too_many(counted: WindowCount, *, json: bool = False) -> HttpResponse:
    text = "Trop de requêtes : réessayez plus tard."
    if json:
        response = JsonResponse({"detail": text}, status=429)
    else:
        response = HttpResponse(text + "\n", status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(counted.retry_after)
    return response


def login_failures_report(*, now: dt.datetime | None = None) -> int:
    """One custody entry per ended window of failed logins that counted more than its first
    (which has its own entry): the address, the count, the first and last times, sample usernames.

    CSI R241-14 keeps failed access attempts traceable; this keeps them traceable without letting
    an attacker grow the log by one entry per attempt."""
    from .services import custody_event_append

    now = now or timezone.now()
    seconds = getattr(settings, "TEMOIN_LOGIN_FAILURE_WINDOW_SECONDS", 600)
    current = window_start_of(now, seconds)
    reported = 0
    pending = RequestWindow.objects.filter(scope=LOGIN_FAILED, reported_at__isnull=True, count__gt=1,
                                           window_start__lt=current).order_by("window_start", "pk")
    for window in pending.iterator():
        with transaction.atomic():
            row = RequestWindow.objects.select_for_update().filter(pk=window.pk, reported_at__isnull=True).first()
            if row is None:
                continue
            custody_event_append(
                action="access.login_failures_counted", subject_type="audit.requestwindow", subject_id=str(row.pk),
                actor_label=f"anonymous@{row.source}", now=now,
                details={"ip_address": row.source, "count": row.count, "first_at": row.first_at.isoformat(),
                         "last_at": row.last_at.isoformat(), "window_seconds": seconds,
                         "usernames_sample": row.samples})
            row.reported_at = now
            row.save(update_fields=["reported_at"])
            reported += 1
    return reported
