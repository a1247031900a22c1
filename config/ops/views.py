"""Operator endpoints: health (/sante/, /api/health/) and Prometheus metrics (/metrics). Thin views.

Details (component messages, queue names, versions) are for the technical administrator's session
or for a bearer token (``TEMOIN_METRICS_TOKEN``, for the monitoring system); anyone else gets the
overall status only, enough for a load balancer.
"""
from __future__ import annotations

import hmac
from pathlib import Path

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpResponse, JsonResponse
from django.template import Engine, RequestContext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import health_report

_PAGE = Path(__file__).with_name("health.html")


def ops_token() -> str:
    return getattr(settings, "TEMOIN_METRICS_TOKEN", "") or ""


def ops_access(request) -> bool:
    """The bearer token of the monitoring system, or an administrator's session."""
    token = ops_token()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), token.encode())
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_active
                and (user.role == "admin" or user.is_superuser))


def _report(request):
    # ?composant=database&composant=store: only these (the healthcheck of a web process).
    try:
        report = health_report(only=request.GET.getlist("composant") or None)
    except ValueError as exc:  # an unknown component: a typo in a healthcheck must not pass
        raise BadRequest(str(exc)) from exc
    return report, report.as_dict(detailed=ops_access(request))


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
    html = template.render(RequestContext(request, {"report": report, "detailed": "components" in body}))
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
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
