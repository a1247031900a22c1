"""Serving disclosed bytes: extractions, export packages, and the public share page.

Every request for bytes is logged before the bytes are served (CSI R241-14). HTTP Range is
supported, as in evidence/media/views.py, so that a large package can be resumed.
"""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from evidence.media.views import range_bounds, range_refused, request_user, stored_response, stored_size

from audit.throttle import rate_limit

from . import selectors, services, shares
from .models import Export


def _serve(request, *, key: str, version: str, content_type: str, filename: str, bounds, size: int):
    return stored_response(key=key, version=version, content_type=content_type, bounds=bounds, size=size,
                           disposition=f'attachment; filename="{filename}"')


def _served(bounds, size: int) -> services.Served:
    """What the one Range parser (evidence.media.views.range_bounds, werkzeug's) granted: the counters
    count these bytes, never the header's text."""
    start, length, _status = bounds
    return services.Served(start, length, size)


def _size(key: str, version: str) -> int:
    return stored_size(key, version, missing="fichier indisponible")


def extraction_download(request, token: str):
    """GET <download_url>: the extracted bytes, for the extraction's own author while the link lives."""
    user = request_user(request)
    extraction = services.extraction_for_token(token=token, user=user) if user else None
    if extraction is None:
        raise Http404("lien d'extraction inconnu ou expiré")
    size = _size(extraction.store_key, extraction.store_version_id)
    bounds = range_bounds(request, size)
    if bounds is None:
        return range_refused(size)
    services.extraction_download_record(extraction=extraction, by=user, served=_served(bounds, size))
    content_type = "video/mp4" if extraction.filename.endswith(".mp4") else "application/octet-stream"
    return _serve(request, key=extraction.store_key, version=extraction.store_version_id, content_type=content_type,
                  filename=extraction.filename, bounds=bounds, size=size)


def export_download(request, pk: int):
    """The ZIP of a ready export, for the users who may see the export (session or API token)."""
    user = request_user(request)
    if user is None:
        raise Http404("export introuvable")
    export = get_object_or_404(selectors.exports_visible_to(user=user), pk=pk, status=Export.Status.READY)
    size = _size(export.store_key, export.store_version_id)
    bounds = range_bounds(request, size)
    if bounds is None:
        return range_refused(size)
    services.export_download_record(export=export, by=user, served=_served(bounds, size))
    return _serve(request, key=export.store_key, version=export.store_version_id, content_type="application/zip",
                  filename=export.filename, bounds=bounds, size=size)


# --- The public page of a share (no account, nothing else of Témoin) --------------------------------

def _client(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _gone(request, share, reason: str):
    return render(request, "disclosure/share_gone.html", {"share": share, "reason": reason}, status=410)


# A share's link is public: guessing tokens or hammering one link is bounded per client address
# (issue 17; TEMOIN_RATE_SHARE_DOWNLOAD requests a minute, page and download together).
@rate_limit("share.public", setting="TEMOIN_RATE_SHARE_DOWNLOAD")
def share_public(request, token: str):
    share = shares.share_for_token(token=token)
    if share is None:
        return _gone(request, None, "unknown")
    share = shares.share_view_record(share=share, client=_client(request))
    reason = shares.share_unavailable_reason(share, timezone.now())
    if reason:
        return _gone(request, share, reason)
    return render(request, "disclosure/share_public.html", {
        "share": share, "export": share.export, "token": token,
        "remaining": max(0, share.max_downloads - share.downloads),
        "recordings": share.export.items.count(),
    })


@rate_limit("share.public", setting="TEMOIN_RATE_SHARE_DOWNLOAD")
def share_download(request, token: str):
    share = shares.share_for_token(token=token)
    if share is None:
        return _gone(request, None, "unknown")
    export = share.export
    size, bounds = 0, None
    if export.status == Export.Status.READY:  # otherwise refused (and logged) just below
        size = _size(export.store_key, export.store_version_id)
        bounds = range_bounds(request, size)
        if bounds is None:
            return range_refused(size)
    try:
        share = shares.share_download_begin(share=share, served=_served(bounds, size) if bounds else None,
                                              client=_client(request))
    except shares.ShareUnavailable as exc:
        return _gone(request, share, exc.reason)
    return _serve(request, key=export.store_key, version=export.store_version_id, content_type="application/zip",
                  filename=export.filename, bounds=bounds, size=size)
