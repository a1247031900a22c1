"""The requisitions' HTML pages (issue 22): the partner's page behind the link, and the list and
detail pages of the organisation's supervisors and legal staff. Thin: reads through the selectors,
writes through the services.

The partner's page is GET on the link itself (``/requisitions/depot/<token>/``; tus uses only
OPTIONS, POST, HEAD, PATCH and DELETE there). The first person who declares there binds the link
to their browser with a cookie scoped to the link's path; another browser gets a refusal page, and
a tus request without that cookie answers 403 (views.py).
"""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .models import RequisitionDeclarant
from .selectors import REQUISITION_ROLES, requisition_for_token, requisitions_visible_to
from .services import RequisitionRefused, declarant_bind, declarant_for_binding
from .upload import TusError, max_size, requisition_usable

BINDING_COOKIE = "temoin_depot"
SHA256_IN_BROWSER_MAX = 256 * 1024 * 1024  # WebCrypto digests a whole file in memory: small ones only


def binding_of(request) -> str | None:
    return request.COOKIES.get(BINDING_COOKIE)


def _status(request, template: str, status: int, **context):
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    # The link is the partner's credential: never sent to another site (same-origin keeps the Origin
    # header of the declaration form, which the CSRF check needs).
    response["Referrer-Policy"] = "same-origin"
    return response


def _requisition_open(request, token: str):
    """The requisition behind the link, or the page that says why not (404 unknown, 410 expired)."""
    requisition = requisition_for_token(token=token)
    try:
        return requisition_usable(requisition, timezone.now()), None  # the tus endpoint's own rule
    except TusError as exc:
        template = "requisitions/depot_unknown.html" if exc.status == 404 else "requisitions/depot_expired.html"
        return None, _status(request, template, exc.status, requisition=requisition)


@never_cache
def depot_page(request, token: str):
    """The partner's page: what is asked, then the declaration, then the uploader (or a refusal)."""
    requisition, refusal = _requisition_open(request, token)
    if refusal is not None:
        return refusal
    declarant = RequisitionDeclarant.objects.filter(requisition=requisition).first()
    context = {"requisition": requisition, "token": token}
    if declarant is None:
        return _status(request, "requisitions/depot.html", 200, step="declare", form=request.POST or {}, **context)
    mine = declarant_for_binding(requisition=requisition, binding=binding_of(request))
    if mine is None:
        # Single use by one person: another browser (or the same person after clearing cookies) is refused.
        return _status(request, "requisitions/depot_refused.html", 403, **context)
    uploads = requisition.uploads.filter(declarant=mine).order_by("created_at", "id")
    return _status(request, "requisitions/depot.html", 200, step="upload", declarant=mine, uploads=uploads,
                   endpoint=reverse("requisition-tus-uploads", args=[token]), max_size=max_size(),
                   sha256_max=SHA256_IN_BROWSER_MAX, **context)


@require_POST
def depot_declare(request, token: str):
    """The person says who they are; the first declaration binds the link to this browser."""
    requisition, refusal = _requisition_open(request, token)
    if refusal is not None:
        return refusal
    page = reverse("requisition-tus-uploads", args=[token])
    if declarant_for_binding(requisition=requisition, binding=binding_of(request)) is not None:
        return redirect(page)  # this browser already holds the link (the form sent twice, Back)
    fields = {k: request.POST.get(k, "").replace("\x00", "") for k in ("name", "role", "contact")}
    try:
        _declarant, binding = declarant_bind(requisition=requisition, user_agent=request.headers.get("User-Agent", ""),
                                    **fields)
    except RequisitionRefused:
        if RequisitionDeclarant.objects.filter(requisition=requisition).exists():
            return _status(request, "requisitions/depot_refused.html", 403, requisition=requisition, token=token)
        return _status(request, "requisitions/depot.html", 400, step="declare", form=fields, requisition=requisition,
                       token=token, error=_("Indiquez votre nom, votre organisme et fonction, et une adresse "
                                            "électronique ou un numéro de téléphone."))
    response = redirect(page)
    # The cookie goes only to this link's URLs, lives until the link expires, and no script reads it.
    response.set_cookie(BINDING_COOKIE, binding, path=page, httponly=True, samesite="Strict",
                        secure=request.is_secure(),
                        max_age=max(int((requisition.expires_at - timezone.now()).total_seconds()), 1))
    return response


@login_required
def requisition_list(request):
    if request.user.role not in REQUISITION_ROLES:
        raise PermissionDenied
    requisitions = requisitions_visible_to(user=request.user).select_related("declarant", "created_by")
    return render(request, "requisitions/list.html", {"requisitions": requisitions[:200], "now": timezone.now()})


@login_required
def requisition_detail(request, pk: int):
    if request.user.role not in REQUISITION_ROLES:
        raise Http404
    requisition = get_object_or_404(requisitions_visible_to(user=request.user).select_related("created_by"), pk=pk)
    declarant = RequisitionDeclarant.objects.filter(requisition=requisition).first()
    uploads = requisition.uploads.select_related("declarant", "recording").order_by("created_at", "id")
    return render(request, "requisitions/detail.html", {"requisition": requisition, "declarant": declarant,
                                                        "uploads": uploads, "now": timezone.now()})
