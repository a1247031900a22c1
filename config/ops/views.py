"""Operator endpoints: health (/sante/, /api/health/) and Prometheus metrics (/metrics). Thin views.

Details (component messages, queue names, versions) and deployment-wide metrics are for the
deployment's operator: the bearer token (``TEMOIN_METRICS_TOKEN``, the monitoring system) or a
superuser's session. An organisation's administrator sees each component's state and their own
organisation's metrics; anyone else gets the overall status only, enough for a load balancer.
"""
from __future__ import annotations

import hmac
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpResponse, JsonResponse
from django.template import Engine, RequestContext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import COMPONENTS, health_report

_PAGE = Path(__file__).with_name("health.html")


def ops_token() -> str:
    return getattr(settings, "TEMOIN_METRICS_TOKEN", "") or ""


def _bearer_ok(request) -> bool:
    token = ops_token()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return bool(token and header.startswith("Bearer ")
                and hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode()))


def _user(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated and user.is_active else None


def operator_access(request) -> bool:
    """The deployment's operator: the monitoring system's bearer token or a superuser's session.

    An organisation's administrator is not the operator of a pooled deployment: other communes'
    docks, alerts and volumes are not theirs to see (issue 17, finding 6; docs/operations.md)."""
    if _bearer_ok(request):
        return True
    user = _user(request)
    return bool(user is not None and user.is_superuser)


def organisation_admin(request):
    """An organisation's technical administrator (not the operator): their organisation, or None."""
    user = _user(request)
    if user is None or user.is_superuser or user.role != "admin" or user.organisation_id is None:
        return None
    return user.organisation


def ops_access(request) -> bool:
    """The operator, or an organisation's administrator (who sees their own organisation only)."""
    return operator_access(request) or organisation_admin(request) is not None


# One health computation at a time per process; requests within TEMOIN_HEALTH_CACHE_SECONDS of it
# read its result, and while it runs the others read the previous one instead of waiting. An
# anonymous burst then costs one store probe per process per few seconds, not one per request, and
# no thread queues behind it (issue 17, finding 2); the operator's detailed view is always fresh.
_memo_lock = threading.Lock()  # guards _memo
_computing = threading.Lock()  # held by the one request computing
_memo: dict[tuple, tuple[float, object]] = {}


def memo_clear() -> None:
    with _memo_lock:
        _memo.clear()


def _computed(only, *, fresh: bool):
    key = tuple(sorted(only or ()))
    ttl = float(getattr(settings, "TEMOIN_HEALTH_CACHE_SECONDS", 5))
    with _memo_lock:
        hit = _memo.get(key)
    if not fresh and hit is not None and time.monotonic() - hit[0] < ttl:
        return hit[1]
    if not fresh and hit is not None:
        if not _computing.acquire(blocking=False):
            return hit[1]  # being computed by another request: the previous result meanwhile
    else:
        _computing.acquire()
    try:
        with _memo_lock:
            hit = _memo.get(key)
        if not fresh and hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        report = health_report(only=only, live_workers=False)
        with _memo_lock:
            _memo[key] = (time.monotonic(), report)
        return report
    finally:
        _computing.release()


def _report(request):
    # ?composant=database&composant=store: only these (the healthcheck of a web process).
    only = request.GET.getlist("composant") or None
    unknown = sorted(set(only or ()) - set(COMPONENTS))
    if unknown:  # an unknown component: a typo in a healthcheck must not pass
        raise BadRequest(f"unknown health component(s): {', '.join(unknown)} (known: {', '.join(COMPONENTS)})")
    operator = operator_access(request)
    report = _computed(only, fresh=operator)
    if operator:
        return report, report.as_dict(detailed=True)
    body = report.as_dict(detailed=False)
    if organisation_admin(request) is not None:
        # Each component's state, without the deployment's details (workers, queues, other
        # communes' docks and alerts, the log's global sequence numbers).
        body["components"] = {c.name: {"status": c.status} for c in report.components}
        if report.failing:
            body["failing"] = report.failing
    return report, body


@never_cache
@require_GET
def health_api(request):
    report, body = _report(request)
    return JsonResponse(body, status=200 if report.ok else 503, json_dumps_params={"ensure_ascii": False})


@never_cache
@require_GET
def health_page(request):
    """/sante/: a page for a browser, the JSON of /api/health/ for anything else (probes, curl)."""
    accept = request.META.get("HTTP_ACCEPT", "")
    if "text/html" not in accept:
        return health_api(request)
    report, body = _report(request)
    template = Engine.get_default().from_string(_PAGE.read_text(encoding="utf-8"))
    html = template.render(RequestContext(request, {"report": report, "detailed": "components" in body,
                                                    "operator": operator_access(request)}))
    return HttpResponse(html, status=200 if report.ok else 503)


@never_cache
@require_GET
def metrics(request):
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from .metrics import metrics_registry

    if not ops_access(request):
        response = HttpResponse("metrics need the bearer token (TEMOIN_METRICS_TOKEN) or an administrator's "
                                "session\n", status=401, content_type="text/plain; charset=utf-8")
        response["WWW-Authenticate"] = 'Bearer realm="temoin-metrics"'
        return response
    # An organisation's administrator scrapes their own organisation's figures; the operator the totals.
    organisation = None if operator_access(request) else organisation_admin(request)
    return HttpResponse(generate_latest(metrics_registry(organisation=organisation)), content_type=CONTENT_TYPE_LATEST)
