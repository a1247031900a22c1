"""Serving media bytes: only through a live consultation, with HTTP Range for instant seeking."""
from django.http import Http404, HttpResponse, StreamingHttpResponse
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed
from werkzeug.http import parse_range_header

from . import services
from .integrations.store import StoreError, get_store


def _user(request):
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None


def consultation_media(request, token: str, part: str):
    """GET <media_url>: the playback copy (or poster) of a consultation that was logged first.

    Anything wrong — unknown or expired token, another user, an erased recording — is a 404 that
    says nothing about the recording.
    """
    user = _user(request)
    consultation = services.consultation_for_token(token=token, user=user) if user else None
    if consultation is None:
        raise Http404("lien de consultation inconnu ou expiré")
    rec = consultation.recording
    key, version, content_type = {
        "video": (rec.playback_key, rec.playback_version_id, "video/mp4"),
        "poster": (rec.poster_key, rec.poster_version_id, "image/jpeg"),
    }[part]
    if not key:
        raise Http404("pas de copie de lecture")
    store = get_store()
    try:
        size = store.head(key, version).size
    except StoreError as exc:
        raise Http404("média indisponible") from exc
    start, length, status = 0, size, 200
    header = request.headers.get("Range")
    if header:
        ranges = parse_range_header(header)
        bounds = ranges.range_for_length(size) if ranges is not None else None
        if bounds is None:  # malformed, several ranges, or beyond the end
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        start, length, status = bounds[0], bounds[1] - bounds[0], 206
    response = StreamingHttpResponse(store.read_range(key, version, start, length), status=status,
                                     content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
    response["Cache-Control"] = "private, no-store"
    response["Content-Disposition"] = "inline"
    response["X-Content-Type-Options"] = "nosniff"
    return response
