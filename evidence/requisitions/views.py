"""The partner's tus 1.0 endpoint (core protocol, creation, termination and expiration): thin HTTP over ``upload``.

The URL is the partner's only credential: ``/requisitions/depot/<token>/`` creates uploads,
``/requisitions/depot/<token>/<upload id>`` answers HEAD, PATCH and DELETE. Every answer carries
``Tus-Resumable``; after the requisition's ``expires_at`` every request answers 410.
"""
from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import http_date
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .models import RequisitionDeclarant, RequisitionUpload
from .pages import binding_of, depot_page
from .selectors import requisition_for_token
from .services import declarant_for_binding
from .upload import TUS_EXTENSIONS, TUS_VERSION, TusError, max_size, metadata_parse, requisition_usable, \
    upload_append, upload_create, upload_terminate

OFFSET_TYPE = "application/offset+octet-stream"


def _answer(status: int, message: str = "", **headers) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Tus-Resumable"] = TUS_VERSION
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = str(value)
    return response


def _options() -> HttpResponse:
    return _answer(204, Tus_Version=TUS_VERSION, Tus_Extension=TUS_EXTENSIONS, Tus_Max_Size=max_size())


def _integer(request, header: str) -> int:
    raw = request.headers.get(header, "")
    if not raw.isdigit():
        raise TusError(400, f"{header} must be a non-negative integer")
    return int(raw)


def _protocol(request, token: str):
    """The requisition behind ``token`` (404, 410), the Tus-Resumable check (412) and the link's
    binding (403): once a person has declared on the link's page, only their browser may upload."""
    requisition = requisition_usable(requisition_for_token(token=token), timezone.now())
    if request.method == "OPTIONS":
        return requisition, None
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusError(412, f"Tus-Resumable: {TUS_VERSION} is required")
    if not RequisitionDeclarant.objects.filter(requisition=requisition).exists():
        return requisition, None  # nobody declared: a tus client with the URL alone (README's contract)
    declarant = declarant_for_binding(requisition=requisition, binding=binding_of(request))
    if declarant is None:
        raise TusError(403, "this link is bound to the person who declared on its page; it cannot be used "
                            "from another browser or client: ask the requesting service for a new link")
    return requisition, declarant


def _expires(requisition) -> str:
    """tus expiration extension: an unfinished upload can be resumed until the link expires."""
    return http_date(requisition.expires_at.timestamp())


def _refused(exc: TusError) -> HttpResponse:
    extra = {"Tus_Version": TUS_VERSION} if exc.status == 412 else {}
    return _answer(exc.status, str(exc), **extra)


@csrf_exempt
def tus_uploads(request, token: str):
    """OPTIONS (what the server supports) and POST (creation: a new upload of Upload-Length bytes);
    GET is the partner's page (pages.py)."""
    if request.method == "GET":
        return depot_page(request, token)
    try:
        requisition, declarant = _protocol(request, token)
        if request.method == "OPTIONS":
            return _options()
        if request.method != "POST":
            return _answer(405, "GET (the page), OPTIONS or POST", Allow="GET, OPTIONS, POST")
        if "Upload-Defer-Length" in request.headers:
            raise TusError(400, "Upload-Defer-Length is not supported: send Upload-Length")
        upload = upload_create(requisition=requisition, length=_integer(request, "Upload-Length"),
                               metadata=metadata_parse(request.headers.get("Upload-Metadata", "")),
                               declarant=declarant)
    except TusError as exc:
        return _refused(exc)
    location = request.build_absolute_uri(reverse("requisition-tus-upload", args=[token, upload.uid]))
    return _answer(201, Location=location, Upload_Offset=0, Upload_Expires=_expires(requisition))


@csrf_exempt
def tus_upload(request, token: str, uid: str):
    """HEAD (the offset to resume from), PATCH (append at Upload-Offset), DELETE (termination)."""
    try:
        requisition, _ = _protocol(request, token)
        if request.method == "OPTIONS":
            return _options()
        upload = RequisitionUpload.objects.filter(requisition=requisition, uid=uid).first()
        if upload is None:
            raise TusError(404, "unknown upload")
        if request.method == "HEAD":
            return _answer(200, Upload_Offset=upload.offset, Upload_Length=upload.length,
                           Upload_Expires=_expires(requisition))
        if request.method == "DELETE":
            upload_terminate(upload=upload)
            return _answer(204)
        if request.method != "PATCH":
            return _answer(405, "HEAD, PATCH, DELETE or OPTIONS", Allow="OPTIONS, HEAD, PATCH, DELETE")
        if request.content_type != OFFSET_TYPE:
            raise TusError(415, f"Content-Type: {OFFSET_TYPE} is required")
        length = request.headers.get("Content-Length")
        appended = upload_append(upload=upload, offset=_integer(request, "Upload-Offset"), body=request,
                                 content_length=int(length) if length and length.isdigit() else None)
    except TusError as exc:
        return _refused(exc)
    return _answer(204, Upload_Offset=appended.offset, Upload_Expires=_expires(requisition))
