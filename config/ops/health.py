"""Health of a deployment: database, broker, store, workers and the custody log.

Each check returns a ``ComponentHealth``; ``health_report`` runs them all. The HTTP views
(config/ops/views.py) answer 200 when every component is ``ok`` (``warn`` counts as up but is
shown), 503 naming the failing ones otherwise. Checks are read-only and never put a secret (broker
password, S3 keys, database URL) in their messages.
"""
from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.utils import timezone

OK, WARN, FAIL = "ok", "warn", "fail"

# The beat verifies the custody log hourly: a last verification older than this means beat is not running.
CUSTODY_VERIFY_STALE_AFTER = dt.timedelta(hours=2)


@dataclass
class ComponentHealth:
    name: str
    status: str
    message: str
    details: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def up(self) -> bool:
        return self.status != FAIL


@dataclass
class HealthReport:
    checked_at: dt.datetime
    components: list[ComponentHealth]

    @property
    def ok(self) -> bool:
        return all(c.up for c in self.components)

    @property
    def failing(self) -> list[str]:
        return [c.name for c in self.components if not c.up]

    def as_dict(self, *, detailed: bool) -> dict:
        body = {"status": "ok" if self.ok else "fail", "checked_at": self.checked_at.isoformat()}
        if detailed:
            if self.failing:
                body["failing"] = self.failing
            body["components"] = {c.name: {k: v for k, v in asdict(c).items() if k != "name"}
                                  for c in self.components}
        return body


def _redact_url(url: str) -> str:
    """scheme://host:port/path without the user and password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _timed(name: str, check) -> ComponentHealth:
    t0 = time.perf_counter()
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a failing component
        result = ComponentHealth(name, FAIL, f"{type(exc).__name__}: {exc}")
    result.seconds = round(time.perf_counter() - t0, 4)
    return result


# --- Database ----------------------------------------------------------------------------------

_migrations_applied: set[str] = set()  # database aliases whose migrations this process saw applied


def check_database() -> ComponentHealth:
    from django.db.migrations.executor import MigrationExecutor

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    # Reading the migration graph costs tens of milliseconds of CPU: once seen applied, it stays so
    # for this process (its code does not change while it runs).
    key = f"{connection.alias}:{connection.settings_dict.get('NAME')}"
    if key in _migrations_applied:
        pending = []
    else:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if not pending:
            _migrations_applied.add(key)
    details = {"vendor": connection.vendor, "pending_migrations": len(pending)}
    if pending:
        return ComponentHealth("database", FAIL, f"{len(pending)} migration(s) not applied: run manage.py migrate",
                               details)
    return ComponentHealth("database", OK, f"{connection.vendor} reachable, migrations applied", details)


# --- Broker --------------------------------------------------------------------------------------

def broker_url() -> str:
    """The URL Celery itself uses (its configuration, read from settings at start-up)."""
    from config.celery import app

    return app.conf.broker_url or settings.CELERY_BROKER_URL


def broker_options() -> dict:
    from config.celery import app

    return app.conf.broker_transport_options or {}


def broker_kind() -> str:
    url = broker_url()
    if url.startswith("filesystem://"):
        return "filesystem"
    if url.startswith(("redis://", "rediss://")):
        return "redis"
    return urlsplit(url).scheme or "unknown"


def redis_client(timeout: float = 2.0):
    import redis

    return redis.Redis.from_url(broker_url(), socket_connect_timeout=timeout, socket_timeout=timeout)


def check_broker() -> ComponentHealth:
    kind = broker_kind()
    if kind == "filesystem":
        # Embedded default (kombu's filesystem transport): the broker is these directories.
        options = broker_options()
        folders = {name: options.get(name, "") for name in ("data_folder_in", "data_folder_out")}
        problems = [f"{name} {path or '(unset)'} is missing or not writable" for name, path in folders.items()
                    if not path or not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK)]
        # kombu creates the control folder (worker broadcasts) on first use: its parent must allow it.
        control = options.get("control_folder", "")
        if control and not os.path.isdir(control) and not os.access(os.path.dirname(control) or ".", os.W_OK):
            problems.append(f"control_folder {control} cannot be created")
        details = {"transport": "filesystem", "folder": folders["data_folder_in"]}
        if problems:
            return ComponentHealth("broker", FAIL, "; ".join(problems), details)
        return ComponentHealth("broker", OK, "filesystem broker directories writable", details)
    details = {"transport": kind, "url": _redact_url(broker_url())}
    try:
        if kind == "redis":
            redis_client().ping()
            return ComponentHealth("broker", OK, "Redis answers PING", details)
        from config.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001 - named in the report; the URL shown is without credentials
        return ComponentHealth("broker", FAIL, f"{kind} broker unreachable: {type(exc).__name__}: {exc}", details)
    return ComponentHealth("broker", OK, f"{kind} broker connected", details)


# --- Store -----------------------------------------------------------------------------------------

def check_store() -> ComponentHealth:
    from evidence.integrations.store import get_store

    store = get_store()
    if settings.STORE_BACKEND == "s3":
        # The bucket must exist and carry Object Lock (CSI R241-11 V: integrity until erasure).
        client, bucket = store.client, store.bucket
        details = {"backend": "s3", "endpoint": _redact_url(settings.S3_ENDPOINT_URL), "bucket": bucket}
        client.head_bucket(Bucket=bucket)
        try:
            lock = client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration", {})
        except Exception as exc:  # botocore's ClientError (only evidence/integrations/s3.py imports boto)
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if code != "ObjectLockConfigurationNotFoundError":
                raise
            lock = {}
        details["object_lock"] = lock.get("ObjectLockEnabled", "")
        versioning = client.get_bucket_versioning(Bucket=bucket).get("Status", "")
        details["versioning"] = versioning
        if lock.get("ObjectLockEnabled") != "Enabled" or versioning != "Enabled":
            return ComponentHealth("store", FAIL, f"bucket {bucket} has no Object Lock / versioning: evidence "
                                                  f"would not be write-once", details)
        return ComponentHealth("store", OK, f"bucket {bucket} reachable, Object Lock enabled", details)
    root = Path(settings.STORE_LOCAL_ROOT)
    details = {"backend": "local", "root": str(root)}
    staging = root / "staging"
    probe = staging / f".health-{uuid.uuid4().hex}"
    try:
        with open(probe, "xb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        return ComponentHealth("store", FAIL, f"local store {root} is not writable: {exc.strerror}", details)
    finally:
        try:
            probe.unlink()
        except FileNotFoundError:
            pass
    usage = os.statvfs(root)
    details["free_bytes"] = usage.f_bavail * usage.f_frsize
    details["total_bytes"] = usage.f_blocks * usage.f_frsize
    if details["total_bytes"] and details["free_bytes"] / details["total_bytes"] < 0.05:
        return ComponentHealth("store", WARN, f"local store writable, less than 5 % free "
                                              f"({details['free_bytes'] // 2**20} MiB)", details)
    return ComponentHealth("store", OK, "local store writable", details)


# --- Workers ------------------------------------------------------------------------------------------

def check_workers(*, timeout: float | None = None) -> ComponentHealth:
    """Celery's broadcast ``inspect`` (one ``active_queues`` round trip): who answers, on which queues.

    The filesystem broker is polled once a second: its replies need a longer wait than Redis's.
    """
    from config.celery import app

    if timeout is None:
        timeout = 3.0 if broker_kind() == "filesystem" else 1.0

    if app.conf.task_always_eager:
        return ComponentHealth("workers", OK, "tasks run inline (CELERY_TASK_ALWAYS_EAGER): no worker needed",
                               {"eager": True})
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    queues = sorted({q["name"] for qs in replies.values() for q in (qs or [])})
    details = {"broker": broker_kind(), "workers": sorted(replies), "queues": queues, "timeout": timeout}
    if not replies:
        how = (" (embedded default: the workers share the filesystem broker's control directory; "
               "check that `make run` started its worker)" if broker_kind() == "filesystem" else "")
        return ComponentHealth("workers", FAIL, f"no Celery worker answered within {timeout:g} s{how}", details)
    from devices.models import Dock

    missing = [q for q in ["media"] if q not in queues]
    if missing:
        return ComponentHealth("workers", FAIL, f"no worker consumes the queue(s) {', '.join(missing)}", details)
    idle_docks = sorted(d.queue for d in Dock.objects.all() if d.queue not in queues)
    if idle_docks:
        details["dock_queues_without_worker"] = idle_docks
        return ComponentHealth("workers", WARN, f"{len(replies)} worker(s) answered; no worker on "
                                                f"{', '.join(idle_docks)}", details)
    return ComponentHealth("workers", OK, f"{len(replies)} worker(s) answered", details)


# The beat queues ``audit.health_refresh`` every HEALTH_REFRESH_SECONDS: a worker runs the broadcast
# above and records its answer (audit.HealthSnapshot). Requests read that record: a burst of
# anonymous /api/health/ requests no longer runs one broadcast each (≈ 4 s on the embedded broker,
# and threads waiting on kombu's producer pool until export creation hung — issue 17, finding 2).
HEALTH_REFRESH_SECONDS = 30.0


def workers_stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "TEMOIN_HEALTH_WORKERS_STALE_SECONDS", 120))


def workers_refresh(*, now: dt.datetime | None = None, timeout: float | None = None) -> ComponentHealth:
    """Run the live workers check and record it for the requests (called by the beat task)."""
    from audit.models import HealthSnapshot

    now = now or timezone.now()
    result = _timed("workers", lambda: check_workers(timeout=timeout))
    HealthSnapshot.objects.update_or_create(name="workers", defaults={
        "status": result.status, "message": result.message, "details": result.details,
        "seconds": result.seconds, "checked_at": now})
    return result


def check_workers_recorded(*, now: dt.datetime | None = None) -> ComponentHealth:
    """The workers' health as the last beat-queued check recorded it: one SELECT, no broadcast.

    The check runs on a worker, so a fresh record also proves that a worker takes tasks and that
    beat runs; a missing or stale one fails, as no worker answering did before."""
    from config.celery import app

    from audit.models import HealthSnapshot

    if app.conf.task_always_eager:
        return ComponentHealth("workers", OK, "tasks run inline (CELERY_TASK_ALWAYS_EAGER): no worker needed",
                               {"eager": True})
    now = now or timezone.now()
    snapshot = HealthSnapshot.objects.filter(name="workers").first()
    if snapshot is None:
        return ComponentHealth("workers", FAIL, "no worker check recorded yet (beat queues one every "
                                                f"{HEALTH_REFRESH_SECONDS:g} s; is beat running with a worker?)", {})
    age = now - snapshot.checked_at
    details = dict(snapshot.details or {}, checked_at=snapshot.checked_at.isoformat(),
                   age_seconds=round(age.total_seconds(), 1))
    if age > workers_stale_after():
        return ComponentHealth("workers", FAIL, f"last worker check {int(age.total_seconds())} s ago: are beat and "
                                                f"a worker running?", details)
    return ComponentHealth("workers", snapshot.status, snapshot.message, details)


# --- Custody log -----------------------------------------------------------------------------------

def check_custody(*, now: dt.datetime | None = None) -> ComponentHealth:
    """The last ``custody verify`` run and the open alerts (CSI R241-14: the log must be intact)."""
    from audit.models import Alert, Verification

    now = now or timezone.now()
    last = Verification.objects.order_by("-started_at", "-id").first()
    open_alerts = list(Alert.objects.filter(acknowledged_at__isnull=True, kind__in=CUSTODY_ALERT_KINDS)
                       .values_list("kind", flat=True))
    details = {"open_alerts": len(open_alerts), "alert_kinds": sorted(set(open_alerts))}
    if last is not None:
        details.update(last_verified_at=last.started_at.isoformat(), last_ok=last.ok, last_seq=last.last_seq,
                       mode=last.mode)
    if last is not None and not last.ok:
        return ComponentHealth("custody", FAIL, f"the last custody verification failed "
                                                f"({last.problem_kind or 'problem'} at entry {last.problem_seq})",
                               details)
    if open_alerts:
        return ComponentHealth("custody", FAIL, f"{len(open_alerts)} open alert(s) on /journal/", details)
    if last is None:
        return ComponentHealth("custody", WARN, "the custody log was never verified (beat runs it hourly)", details)
    if now - last.started_at > CUSTODY_VERIFY_STALE_AFTER:
        return ComponentHealth("custody", WARN, f"last verification {last.started_at:%Y-%m-%d %H:%M} UTC: is beat "
                                                f"running?", details)
    return ComponentHealth("custody", OK, f"intact up to entry {last.last_seq}", details)


CUSTODY_ALERT_KINDS = ("chain_broken", "checkpoint_failed", "purge_failed")
# The audit runs daily: a last run older than this means beat is not running it.
COMPLIANCE_STALE_AFTER = dt.timedelta(hours=36)


def check_compliance(*, now: dt.datetime | None = None) -> ComponentHealth:
    """The last compliance audit and the open erasure and compliance alerts (docs/compliance.md).

    A violation is shown (warn), not a failure: the service itself is up and must stay reachable
    for the people who put things right."""
    from audit.models import Alert, ComplianceAudit

    now = now or timezone.now()
    last = ComplianceAudit.objects.order_by("-started_at", "-id").first()
    open_alerts = list(Alert.objects.filter(acknowledged_at__isnull=True, kind__in=("compliance", "erasure_failed"))
                       .values_list("problem_kind", flat=True))
    details = {"open_alerts": len(open_alerts)}
    if last is not None:
        details.update(last_audit_at=last.started_at.isoformat(), last_ok=last.ok, violations=last.violation_count,
                       could_not_look=last.could_not_look or None)
    if last is None:
        return ComponentHealth("compliance", WARN, "no compliance audit yet (beat runs it daily)", details)
    if last.could_not_look:
        return ComponentHealth("compliance", WARN, f"the last audit could not look: {last.could_not_look}", details)
    if not last.ok or open_alerts:
        return ComponentHealth("compliance", WARN, f"{last.violation_count} violation(s) at the last audit, "
                                                   f"{len(open_alerts)} open alert(s) on /conformite/", details)
    if now - last.started_at > COMPLIANCE_STALE_AFTER:
        return ComponentHealth("compliance", WARN, f"last audit {last.started_at:%Y-%m-%d %H:%M} UTC: is beat "
                                                   f"running?", details)
    return ComponentHealth("compliance", OK, "every legal invariant held at the last audit", details)


COMPONENTS = ("database", "broker", "store", "workers", "custody", "compliance")


def health_report(*, now: dt.datetime | None = None, worker_timeout: float | None = None,
                  only: list[str] | None = None, live_workers: bool = True) -> HealthReport:
    """Every component's health, or only those named in ``only`` (a process's own dependencies).

    ``live_workers=False`` (HTTP requests) reads the workers' state recorded by the beat task
    instead of broadcasting."""
    now = now or timezone.now()
    checks = {
        "database": check_database,
        "broker": check_broker,
        "store": check_store,
        "workers": (lambda: check_workers(timeout=worker_timeout)) if live_workers
        else (lambda: check_workers_recorded(now=now)),
        "custody": lambda: check_custody(now=now),
        "compliance": lambda: check_compliance(now=now),
    }
    unknown = sorted(set(only or ()) - set(checks))
    if unknown:
        raise ValueError(f"unknown health component(s): {', '.join(unknown)} (known: {', '.join(COMPONENTS)})")
    return HealthReport(checked_at=now, components=[_timed(name, check) for name, check in checks.items()
                                                    if not only or name in only])


# --- Compose healthchecks ------------------------------------------------------------------------
# `python -m config.ops.health [COMPONENT…]` runs the checks of /sante/ in the calling process and
# exits 0 when none fails: the healthcheck of dockd and beat, which serve no HTTP (compose.yaml).
# `--url URL` asks a web process instead (the healthcheck of `web`): the request carries the first
# allowed host name and X-Forwarded-Proto, as the TLS proxy's would, so that neither the host
# check nor the redirect to HTTPS turns it away.

def _ask_web(url: str, components: list[str]) -> int:
    import urllib.error
    import urllib.parse
    import urllib.request

    if components:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode([("composant", c) for c in components])
    host = next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")), None)
    headers = {"X-Forwarded-Proto": "https", "Accept": "application/json"} | ({"Host": host} if host else {})
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
            print(response.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"{url}: HTTP {exc.code} {exc.read().decode(errors='replace')[:500]}")
    except OSError as exc:
        print(f"{url}: {exc}")
    return 1


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m config.ops.health",
                                     description="Témoin's health checks (/sante/) for a compose healthcheck.")
    parser.add_argument("components", nargs="*", choices=COMPONENTS, metavar="COMPONENT",
                        help=f"among {', '.join(COMPONENTS)} (default: all)")
    parser.add_argument("--url", help="ask this web process's /api/health/ instead of checking here")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if args.url:
        return _ask_web(args.url, args.components)
    import django

    django.setup()
    report = health_report(only=args.components or None)
    for component in report.components:
        print(f"{component.name}: {component.status} — {component.message}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
