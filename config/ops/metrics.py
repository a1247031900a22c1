"""Prometheus metrics, read from the database and the broker at scrape time.

A custom collector instead of counters kept in memory: with several gunicorn workers (and Celery
workers doing the offloads) no process holds the whole picture, the database does. Every scrape
runs a handful of aggregate queries; nothing here names a person or a recording.
"""
from __future__ import annotations

import datetime as dt
import os
import time

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from .health import broker_kind, broker_options, redis_client


def queue_depths() -> dict[str, int]:
    """Messages waiting per Celery queue: ``media`` and every known dock's ``dock.<name>``."""
    from devices.models import Dock

    queues = ["media"] + sorted(d.queue for d in Dock.objects.all())
    kind = broker_kind()
    if kind == "redis":
        client = redis_client()
        with client.pipeline(transaction=False) as pipe:
            for q in queues:
                pipe.llen(q)
            return dict(zip(queues, pipe.execute()))
    if kind == "filesystem":
        # kombu's filesystem transport: one file "<time>_<uuid>.<queue>.msg" per waiting message.
        folder = broker_options().get("data_folder_in", "")
        depths = dict.fromkeys(queues, 0)
        try:
            names = os.listdir(folder)
        except OSError:
            return {}
        for name in names:
            if name.endswith(".msg"):
                queue = name[:-4].split(".", 1)[-1]
                depths[queue] = depths.get(queue, 0) + 1
        return depths
    return {}


class TemoinCollector:
    """Deployment-wide totals for the operator; with ``organisation``, that organisation's own figures
    only (its administrator's scrape): no queue, no other commune's rows, no global log sequence."""

    def __init__(self, now=None, organisation=None):
        self._now = now
        self._org = organisation

    def _scoped(self, qs, path="organisation"):
        return qs if self._org is None else qs.filter(**{path: self._org})

    def collect(self):
        from audit.models import Alert, CustodyEvent, Verification
        from devices.models import Camera, OffloadItem, OffloadSession
        from devices.selectors import partner_devices_q
        from evidence.models import Recording

        t0 = time.perf_counter()
        now = self._now or timezone.now()

        if self._org is None:  # the queues are the deployment's, shared by every organisation
            depth = GaugeMetricFamily("temoin_queue_depth", "Tasks waiting in each Celery queue", labels=["queue"])
            try:
                for queue, n in sorted(queue_depths().items()):
                    depth.add_metric([queue], n)
                broker_up = 1
            except Exception:  # noqa: BLE001 - a broker that does not answer is itself a metric
                broker_up = 0
            yield depth
            yield GaugeMetricFamily("temoin_broker_up", "1 when the broker answered this scrape", value=broker_up)

        by_status = dict(self._scoped(Recording.objects).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        recordings = GaugeMetricFamily("temoin_recordings", "Recordings by status", labels=["status"])
        for status in Recording.Status.values:
            recordings.add_metric([status], by_status.get(status, 0))
        yield recordings

        # Offload throughput: clips verified in the store (first copy of their content).
        stored = self._scoped(Recording.objects).filter(verified_at__isnull=False).exclude(status=Recording.Status.DUPLICATE)
        total = stored.aggregate(clips=Count("id"), bytes=Sum("size"))
        hour = stored.filter(verified_at__gte=now - dt.timedelta(hours=1)).aggregate(clips=Count("id"), bytes=Sum("size"))
        yield CounterMetricFamily("temoin_offload_clips", "Clips verified in the write-once store",
                                  value=total["clips"] or 0)
        yield CounterMetricFamily("temoin_offload_bytes", "Bytes of clips verified in the write-once store",
                                  value=total["bytes"] or 0)
        yield GaugeMetricFamily("temoin_offload_clips_last_hour", "Clips verified in the store in the last hour",
                                value=hour["clips"] or 0)
        yield GaugeMetricFamily("temoin_offload_bytes_last_hour", "Bytes verified in the store in the last hour",
                                value=hour["bytes"] or 0)

        items = dict(self._scoped(OffloadItem.objects, "session__organisation").values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        item_family = GaugeMetricFamily("temoin_offload_items", "Clips found on docked cameras, by outcome",
                                        labels=["status"])
        for status in OffloadItem.Status.values:
            item_family.add_metric([status], items.get(status, 0))
        yield item_family
        sessions = dict(self._scoped(OffloadSession.objects).values_list("status").annotate(n=Count("id")).values_list("status", "n"))
        session_family = GaugeMetricFamily("temoin_offload_sessions", "Offload sessions by status", labels=["status"])
        for status in OffloadSession.Status.values:
            session_family.add_metric([status], sessions.get(status, 0))
        yield session_family
        failures = CounterMetricFamily("temoin_failures", "Failures kept for an operator to look at",
                                       labels=["kind"])
        failures.add_metric(["offload_item_failed"], items.get(OffloadItem.Status.FAILED, 0))
        failures.add_metric(["offload_item_mismatch"], items.get(OffloadItem.Status.MISMATCH, 0))
        failures.add_metric(["recording_store_failed"], by_status.get(Recording.Status.FAILED, 0))
        failures.add_metric(["recording_unplayable"], by_status.get(Recording.Status.UNPLAYABLE, 0))
        failures.add_metric(["session_rejected"], sessions.get(OffloadSession.Status.REJECTED, 0))
        yield failures

        # Custody log (CSI R241-14): result of the last verification, how far it went, the head.
        last = Verification.objects.order_by("-started_at", "-id").first()
        yield GaugeMetricFamily("temoin_custody_verify_ok",
                                "1 when the last custody verification found the log intact, 0 when not, "
                                "-1 when it never ran", value=(1 if last.ok else 0) if last else -1)
        yield GaugeMetricFamily("temoin_custody_verify_timestamp_seconds", "Start of the last custody verification",
                                value=last.started_at.timestamp() if last else 0)
        if self._org is None:  # sequence numbers count every organisation's entries
            yield GaugeMetricFamily("temoin_custody_last_verified_seq", "Last entry covered by the last verification",
                                    value=(last.last_seq or 0) if last else 0)
            head = CustodyEvent.objects.aggregate(seq=Max("seq"))["seq"] or 0
            yield GaugeMetricFamily("temoin_custody_head_seq", "Last entry of the custody log", value=head)
        alerts = GaugeMetricFamily("temoin_alerts_open", "Alerts not yet acknowledged on /journal/", labels=["kind"])
        open_by_kind = dict(self._scoped(Alert.objects).filter(acknowledged_at__isnull=True).values_list("kind")
                            .annotate(n=Count("id")).values_list("kind", "n"))
        for kind in Alert.Kind.values:
            alerts.add_metric([kind], open_by_kind.get(kind, 0))
        yield alerts

        # A camera not docked for long holds recordings nobody has collected (and its battery ages).
        # A partner's placeholder device is never docked: it is not one of the service's cameras.
        cams = self._scoped(Camera.objects).filter(active=True).exclude(partner_devices_q()).aggregate(
            oldest_docked=Min("last_docked_at"),
            oldest_never=Min("created_at", filter=Q(last_docked_at__isnull=True)),
            n=Count("id"),
        )
        since = [t for t in (cams["oldest_docked"], cams["oldest_never"]) if t is not None]
        yield GaugeMetricFamily("temoin_cameras_active", "Active cameras", value=cams["n"])
        yield GaugeMetricFamily("temoin_camera_oldest_undocked_age_seconds",
                                "Time since the active camera docked longest ago was last docked (or registered)",
                                value=max(0.0, (now - min(since)).total_seconds()) if since else 0)
        yield GaugeMetricFamily("temoin_metrics_scrape_seconds", "Time taken to read these metrics",
                                value=time.perf_counter() - t0)


def metrics_registry(*, now=None, organisation=None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TemoinCollector(now=now, organisation=organisation))
    return registry
