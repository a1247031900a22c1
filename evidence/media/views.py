"""Serving stored bytes: media of a live consultation, extractions, packages, redacted copies.

One implementation of HTTP Range serving for every byte that leaves the store; callers decide
who may have the bytes and log the access before calling ``stored_response``.

LEGAL.md rule 5 (CSI R241-11 IV): media only through a live consultation whose motif was logged
first (``evidence.access.services.consultation_open``, CSI R241-14).
"""
from django.http import Http404, HttpResponse, StreamingHttpResponse
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied
from werkzeug.http import parse_range_header

from accounts.password_policy import TokenAuthenticationUnlessTemporary

from ..access.services import consultation_for_token
from ..integrations.store import StoreError, get_store


def request_user(request):
    """The session user, or the owner of the API token; None for nobody (a token whose user's password
    is temporary is nobody's, issue 20)."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthenticationUnlessTemporary().authenticate(request)
    except (AuthenticationFailed, PermissionDenied):
        return None
    return found[0] if found else None


def stored_size(key: str, version: str, missing: str = "média indisponible") -> int:
    try:
        return get_store().head(key, version).size
    except StoreError as exc:
        raise Http404(missing) from exc


def range_bounds(request, size: int):
    """(start, length, status) for the request's Range header, or None when unsatisfiable (416)."""
    header = request.headers.get("Range")
    if not header:
        return 0, size, 200
    ranges = parse_range_header(header)
    bounds = ranges.range_for_length(size) if ranges is not None else None
    if bounds is None:  # malformed, several ranges, or beyond the end
        return None
    return bounds[0], bounds[1] - bounds[0], 206


def range_refused(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    return response


def stored_response(*, key: str, version: str, content_type: str, bounds, size: int,
                    disposition: str = "inline") -> StreamingHttpResponse:
    """Stream ``bounds`` of a stored object; never cached by the browser or a proxy."""
    start, length, status = bounds
    response = StreamingHttpResponse(get_store().read_range(key, version, start, length), status=status,
                                     content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    return response


def consultation_media(request, token: str, part: str):
    """GET <media_url>: the playback copy (or poster) of a consultation that was logged first.

    Anything wrong — unknown or expired token, another user, an erased recording — is a 404 that
    says nothing about the recording.
    """
    user = request_user(request)
    consultation = consultation_for_token(token=token, user=user) if user else None
    if consultation is None:
        raise Http404("lien de consultation inconnu ou expiré")
    rec = consultation.recording
    parts = {
        "video": (rec.playback_key, rec.playback_version_id, "video/mp4"),
        "poster": (rec.poster_key, rec.poster_version_id, "image/jpeg"),
    }
    if part not in parts:  # "..", "original", anything else: only the playback copy and its poster
        raise Http404("lien de consultation inconnu ou expiré")
    key, version, content_type = parts[part]
    if not key:
        raise Http404("pas de copie de lecture")
    size = stored_size(key, version)
    bounds = range_bounds(request, size)
    if bounds is None:
        return range_refused(size)
    return stored_response(key=key, version=version, content_type=content_type, bounds=bounds, size=size)
