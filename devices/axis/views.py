"""The Swift-subset HTTP surface of the Axis content destination (thin: parse, call, answer).

    GET  auth/v1.0                              X-Auth-User, X-Auth-Key → X-Auth-Token, X-Storage-Url
    *    v1/<account>                           HEAD, GET (list containers)
    *    v1/<account>/<container>               PUT (create), POST (metadata), HEAD, GET (list objects)
    *    v1/<account>/<container>/<object>      PUT, POST, HEAD; GET for System, Users, Devices objects

Plain Django views: the BWS is a Swift client, not a browser (no CSRF, no sessions).
"""
from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from contextlib import contextmanager

from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from audit.throttle import rate_limit

from . import directory, formats, ingest, objects, selectors, services, tokens
from .body import RequestBody, TruncatedUpload
from .errors import (
    AxisError,
    Busy,
    ContentRefused,
    Forbidden,
    LengthRequired,
    TooLarge,
    UploadInterrupted,
)

log = logging.getLogger(__name__)


def _answer(status: int, text: str = "", *, headers: dict | None = None, body: bytes | None = None,
            content_type: str = "text/plain; charset=utf-8", reason: str | None = None) -> HttpResponse:
    content = body if body is not None else (text + "\n" if text else "").encode()
    response = HttpResponse(content, status=status, content_type=content_type, reason=reason)
    response["X-Trans-Id"] = f"tx{uuid.uuid4().hex}"
    response["X-Timestamp"] = f"{timezone.now().timestamp():.5f}"
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _head(response: HttpResponse, length: int | None = None) -> HttpResponse:
    """HEAD: the headers of the GET, no body; Content-Length says the object's size."""
    size = len(response.content) if length is None else length
    response.content = b""
    response["Content-Length"] = str(size)
    return response


class _UploadSlots:
    """Uploads at once in this process; beyond, 503 "try again soon" (specification).

    Read from ``TEMOIN_AXIS_MAX_UPLOADS`` at each request so that it can be changed without restart.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.active = 0

    @contextmanager
    def take(self):
        limit = getattr(settings, "TEMOIN_AXIS_MAX_UPLOADS", 16)
        with self.lock:
            if self.active >= limit:
                raise Busy(f"{self.active} uploads in progress: try again soon")
            self.active += 1
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1


UPLOADS = _UploadSlots()


def swift_view(view):
    """CSRF exempt, errors to their status code, database contention to 503 with Retry-After."""

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            response = view(request, *args, **kwargs)
        except AxisError as exc:
            headers = {"Retry-After": "5"} if exc.status == 503 else {}
            if exc.status >= 500 and exc.status != 503:
                log.error("Axis %s %s → %s: %s", request.method, request.path, exc.status, exc)
            elif exc.status == 400:  # the BWS marks the recording "not transferred": the operator should know
                log.warning("Axis %s %s refused: %s", request.method, request.path, exc)
            response = _answer(exc.status, str(exc), headers=headers, reason=exc.reason)
        except OperationalError as exc:  # "database is locked" and friends: busy, not broken
            log.warning("Axis %s %s: database busy: %s", request.method, request.path, exc)
            response = _answer(503, "database busy: try again soon", headers={"Retry-After": "5"})
        if request.method == "HEAD" and response.status_code >= 400:
            _head(response)
        return response

    return wrapper


def _check_names(*names: str) -> None:
    for name in names:
        problem = formats.name_problem(name)
        if problem:
            raise ContentRefused(f"{name.encode('unicode_escape').decode()[:200]!s}: {problem}")


def _credential(request, account: str):
    token = request.headers.get("X-Auth-Token") or request.headers.get("X-Storage-Token", "")
    credential = tokens.token_check(token=token)
    if account != credential.account:
        raise Forbidden("this token does not give access to that account")
    return credential


def _content_length(request) -> int | None:
    value = request.META.get("CONTENT_LENGTH")
    if value not in (None, ""):
        try:
            length = int(value)
        except ValueError:
            raise LengthRequired("invalid Content-Length") from None
        if length < 0:
            raise LengthRequired("invalid Content-Length")
        return length
    if request.META.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked" and request.META.get("wsgi.input_terminated"):
        return None  # the server decodes the chunks and ends the stream (gunicorn does)
    if request.META.get("HTTP_TRANSFER_ENCODING"):
        raise LengthRequired("this server needs Content-Length (or a server that decodes chunked bodies)")
    return 0


def _discard_body(request, limit: int = 1024 * 1024) -> None:
    """Users/Devices/System objects carry their data in metadata; a body is read and dropped."""
    length = _content_length(request)
    reader = RequestBody.of_request(request, length)
    try:
        while reader.read(64 * 1024):
            if reader.count > limit:
                raise TooLarge(f"a metadata object carries no data: body larger than {limit} bytes refused")
    except TruncatedUpload as exc:
        raise UploadInterrupted(str(exc)) from exc


# --- auth/v1.0 ---------------------------------------------------------------------------------------

@swift_view
@rate_limit("axis.auth", setting="TEMOIN_RATE_AXIS_AUTH")  # per address and minute (issue 17): 429, Retry-After
def auth(request):
    if request.method != "GET":
        return _answer(405, "use GET", headers={"Allow": "GET"})
    user = request.headers.get("X-Auth-User") or request.headers.get("X-Storage-User", "")
    # The specification's text also says "Auth-Key": accepted, as Swift's X-Storage-Pass is.
    key = (request.headers.get("X-Auth-Key") or request.headers.get("Auth-Key")
           or request.headers.get("X-Storage-Pass", ""))
    credential, token, expires_at = tokens.token_issue(username=user, key=key)
    path = reverse("axis-account", kwargs={"account": credential.account})
    base = getattr(settings, "TEMOIN_PUBLIC_URL", "")
    storage_url = base.rstrip("/") + path if base else request.build_absolute_uri(path)
    seconds = max(0, int((expires_at - timezone.now()).total_seconds()))
    return _answer(200, headers={"X-Auth-Token": token, "X-Storage-Token": token, "X-Storage-Url": storage_url,
                                 "X-Auth-Token-Expires": str(seconds)}, body=b"")


# --- v1/<account> ------------------------------------------------------------------------------------

def _listing(request, names: list[dict]) -> HttpResponse:
    if request.GET.get("format") == "json":
        return _answer(200, body=json.dumps(names, default=str).encode(), content_type="application/json")
    return _answer(200, body="".join(f"{n['name']}\n" for n in names).encode())


@swift_view
def account(request, account):
    credential = _credential(request, account)
    org = credential.organisation
    if request.method not in ("GET", "HEAD"):
        raise Forbidden("containers are created one by one")
    containers = selectors.containers_of(organisation=org)
    names = [{"name": formats.SYSTEM}, {"name": formats.USERS}, {"name": formats.DEVICES}]
    names += [{"name": c.name} for c in containers]
    response = _listing(request, names)
    response["X-Account-Container-Count"] = str(len(names))
    return _head(response) if request.method == "HEAD" else response


# --- v1/<account>/<container> ------------------------------------------------------------------------

IMPLICIT = (formats.SYSTEM, formats.USERS, formats.DEVICES)


@swift_view
def container(request, account, container):
    credential = _credential(request, account)
    _check_names(container)
    org = credential.organisation
    metadata = formats.metadata_from_headers(request.META, "Container")
    if request.method == "PUT":
        _discard_body(request)
        if container in IMPLICIT:
            return _answer(202)
        _obj, created = services.container_create(organisation=org, name=container, metadata=metadata)
        return _answer(201 if created else 202)
    if request.method == "POST":
        if container not in IMPLICIT:
            services.container_update(organisation=org, name=container, metadata=metadata)
        return _answer(204)
    if request.method in ("GET", "HEAD"):
        if container in IMPLICIT:
            entries, headers = selectors.implicit_container_listing(organisation=org, name=container), {}
        else:
            rec = selectors.container_of(organisation=org, name=container)
            entries = selectors.container_listing(container=rec)
            headers = formats.metadata_headers(rec.metadata, "Container")
        headers["X-Container-Object-Count"] = str(len(entries))
        headers["X-Container-Bytes-Used"] = str(sum(e.get("bytes", 0) for e in entries))
        if request.method == "HEAD":
            return _answer(204, headers=headers)
        response = _listing(request, entries)
        for key, value in headers.items():
            response[key] = value
        return response
    raise Forbidden(f"{request.method} is not part of this API: nothing is deleted by the body worn system")


# --- v1/<account>/<container>/<object> ---------------------------------------------------------------

def _document(request, data: bytes) -> HttpResponse:
    # The Etag is the MD5 of the JSON object: the BWS checks it ("object corrupt" otherwise).
    response = _answer(200, body=data, content_type="application/json",
                       headers={"Etag": formats.md5_hex(data), "Accept-Ranges": "bytes"})
    return _head(response) if request.method == "HEAD" else response


def _metadata_object(request, metadata: dict, modified) -> HttpResponse:
    headers = formats.metadata_headers(metadata, "Object")
    headers["Etag"] = formats.md5_hex(b"")
    if modified:
        headers["Last-Modified"] = http_date(modified.timestamp())
    response = _answer(200, body=b"", headers=headers, content_type="application/octet-stream")
    return _head(response, 0) if request.method == "HEAD" else response


def _system_object(request, org, name: str, metadata: dict) -> HttpResponse:
    documents = {"Capabilities.json": formats.capabilities_document,
                 # The specification's older text names it Capability.json.
                 "Capability.json": formats.capabilities_document,
                 "Categories.json": formats.categories_document}
    if request.method in ("GET", "HEAD"):
        if name in documents:
            return _document(request, documents[name]())
        system = selectors.system_of(organisation=org, system_id=name)
        return _metadata_object(request, {**system.metadata, "ConnectionId": system.connection_id,
                                          "SystemName": system.name}, system.updated_at)
    if request.method in ("PUT", "POST"):
        if name in documents:
            raise Forbidden(f"{name} is published by Témoin")
        _discard_body(request)
        directory.system_store(organisation=org, system_id=name, metadata=metadata)
        return _answer(201 if request.method == "PUT" else 202)
    raise Forbidden(f"{request.method} is not part of this API")


def _directory_object(request, org, container: str, name: str, metadata: dict) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        if container == formats.USERS:
            row = selectors.axis_user_of(organisation=org, uuid=name)
        else:
            row = selectors.axis_device_of(organisation=org, serial=name)
        return _metadata_object(request, row.metadata, row.updated_at)
    if request.method in ("PUT", "POST"):
        _discard_body(request)
        if container == formats.USERS:
            directory.axis_user_store(organisation=org, uuid=name, metadata=metadata)
        else:
            directory.axis_device_store(organisation=org, serial=name, metadata=metadata)
        return _answer(201 if request.method == "PUT" else 202)
    raise Forbidden(f"{request.method} is not part of this API")


def _recording_object(request, org, container: str, name: str, metadata: dict) -> HttpResponse:
    if len(name.encode()) > 1024:  # Swift's limit on object names
        raise ContentRefused("object name longer than 1024 bytes")
    rec = selectors.container_of(organisation=org, name=container)
    if request.method == "PUT":
        length = _content_length(request)
        client_md5 = request.headers.get("ETag", "")
        with UPLOADS.take():
            receive = ingest.clip_receive if formats.object_kind(name) == "clip" else objects.object_receive
            received = receive(container=rec, name=name, metadata=metadata,
                               body=RequestBody.of_request(request, length),
                               length=length, client_md5=client_md5)
        headers = {"Last-Modified": http_date()}
        if received.etag:
            headers["Etag"] = received.etag
        return _answer(received.status, headers=headers)
    if request.method == "POST":
        objects.object_metadata_replace(container=rec, name=name, metadata=metadata)
        return _answer(202)
    if request.method == "HEAD":
        found = selectors.object_of(container=rec, name=name)
        headers = formats.metadata_headers(found["metadata"], "Object")
        headers["Content-Type"] = found["content_type"]
        headers["Last-Modified"] = http_date(found["last_modified"].timestamp())
        if found["hash"]:
            headers["Etag"] = found["hash"]
        headers["X-Object-Meta-Sha256"] = found["sha256"]
        return _head(_answer(200, headers=headers, body=b""), found["bytes"])
    if request.method == "GET":
        # Recordings are consulted in Témoin, by authorised people with a motif (CSI R241-12, R241-14).
        raise Forbidden("recordings are consulted in Témoin, not read back over this API")
    raise Forbidden(f"{request.method} is not part of this API: nothing is deleted by the body worn system")


@swift_view
def storage_object(request, account, container, obj):
    credential = _credential(request, account)
    _check_names(container, obj)
    org = credential.organisation
    metadata = formats.metadata_from_headers(request.META, "Object")
    if container == formats.SYSTEM:
        return _system_object(request, org, obj, metadata)
    if container in (formats.USERS, formats.DEVICES):
        return _directory_object(request, org, container, obj, metadata)
    return _recording_object(request, org, container, obj, metadata)

