"""Shares: one export package for one outside recipient, through a link with an expiry, a download
limit and revocation (CSI R241-14: each creation, view and download is logged with the export's
motif and the recipient). The public page and the download (evidence/disclosure/downloads.py) ask
here whether the link still serves, and count every byte served (issue 17: one download counter,
whatever the Range headers)."""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from accounts.models import Role, User
from audit.services import custody_event_append

from .models import Export, ExportPurpose, Share
from .selectors import ACCESS_REQUEST_HANDLERS, EXTRACTORS
from .services import DisclosureError, Served, _digest, _text, _token, copies

SHARE_MAX_DAYS = 90
SHARE_MAX_DOWNLOADS = 100
SHARE_RECIPIENT = _lazy("Indiquez le destinataire du partage.")
SHARE_EXPIRY = _lazy("Indiquez la date d'expiration du lien.")


class ShareUnavailable(Exception):
    """The share link no longer works; ``reason`` is expired | exhausted | revoked | gone."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


SHARERS = EXTRACTORS | ACCESS_REQUEST_HANDLERS


def share_create(*, export: Export, by: User, recipient: str, expires_at: dt.datetime | None,
                 max_downloads: int | None, now: dt.datetime | None = None) -> tuple[Share, str]:
    """A link for one external recipient, with expiry and a download limit (logged as a communication)."""
    if by.role not in SHARERS or (by.role == Role.DPO) != (export.purpose == ExportPurpose.ACCESS_REQUEST):
        raise PermissionError(_("Vous ne pouvez pas partager cet export."))
    if export.status != Export.Status.READY:
        raise DisclosureError(_("L'export n'est pas prêt : il ne peut pas encore être partagé."), "export")
    now = now or timezone.now()
    recipient = _text(recipient, "recipient", SHARE_RECIPIENT, 300)
    if expires_at is None:
        raise DisclosureError(SHARE_EXPIRY, "expires_at")
    if timezone.is_naive(expires_at):
        raise DisclosureError(_("La date d'expiration doit porter un fuseau horaire."), "expires_at")
    if expires_at <= now:
        raise DisclosureError(_("La date d'expiration doit être dans le futur."), "expires_at")
    if expires_at > now + dt.timedelta(days=SHARE_MAX_DAYS):
        raise DisclosureError(_("Un lien expire au plus tard dans %(n)s jours.") % {"n": SHARE_MAX_DAYS}, "expires_at")
    if export.retain_until and expires_at > export.retain_until:
        raise DisclosureError(_("Le lien ne peut pas survivre à l'export (effacé le %(d)s).")
                              % {"d": f"{export.retain_until:%d/%m/%Y %H:%M}"}, "expires_at")
    if not isinstance(max_downloads, int) or isinstance(max_downloads, bool) or not 1 <= max_downloads <= SHARE_MAX_DOWNLOADS:
        raise DisclosureError(_("Nombre de téléchargements autorisés : entre 1 et %(n)s.") % {"n": SHARE_MAX_DOWNLOADS},
                              "max_downloads")
    token, digest = _token()
    with transaction.atomic():
        share = Share.objects.create(export=export, recipient=recipient, created_by=by, created_at=now,
                                     expires_at=expires_at, max_downloads=max_downloads, token_sha256=digest)
        custody_event_append(action="share.created", subject=export, organisation=export.organisation, actor=by,
                             recipients=[recipient], motif=export.motif, now=now,
                             details={"export": export.pk, "share": share.pk, "expires_at": expires_at.isoformat(),
                                      "max_downloads": max_downloads})
    return share, token


def share_revoke(*, share: Share, by: User, motif: str = "", now: dt.datetime | None = None) -> Share:
    if by.role not in SHARERS:
        raise PermissionError(_("Vous ne pouvez pas révoquer ce partage."))
    now = now or timezone.now()
    with transaction.atomic():
        share = Share.objects.select_for_update().select_related("export").get(pk=share.pk)
        if share.revoked_at is not None:
            raise DisclosureError(_("Ce partage est déjà révoqué."))
        share.revoked_at, share.revoked_by, share.revoke_motif = now, by, (motif or "").strip()[:2000]
        share.save(update_fields=["revoked_at", "revoked_by", "revoke_motif"])
        custody_event_append(action="share.revoked", subject=share.export, organisation=share.export.organisation,
                             actor=by, motif=share.revoke_motif, recipients=[share.recipient], now=now,
                             details={"export": share.export_id, "share": share.pk,
                                      "downloads": share.downloads})
    return share


def share_for_token(*, token: str) -> Share | None:
    return Share.objects.select_related("export", "export__organisation").filter(token_sha256=_digest(token)).first()


def share_unavailable_reason(share: Share, now: dt.datetime) -> str:
    """Why the link no longer works, or "" when it does."""
    if share.revoked_at is not None:
        return "revoked"
    if share.expires_at <= now:
        return "expired"
    if share.exhausted:  # bytes, not requests (issue 17)
        return "exhausted"
    if share.export.status != Export.Status.READY:
        return "gone"
    return ""


def share_view_record(*, share: Share, client: str = "", now: dt.datetime | None = None) -> Share:
    """The recipient opened the page: logged (with the recipient) whether or not the link still works."""
    now = now or timezone.now()
    with transaction.atomic():
        share = Share.objects.select_for_update().select_related("export", "export__organisation").get(pk=share.pk)
        reason = share_unavailable_reason(share, now)
        share.views += 1
        share.save(update_fields=["views"])
        custody_event_append(action="share.viewed", subject=share.export, organisation=share.export.organisation,
                             actor_label=f"external:{share.recipient}"[:200], recipients=[share.recipient], now=now,
                             details={"export": share.export_id, "share": share.pk, "refused": reason or None,
                                      "client": client[:100] or None})
    return share


def share_download_begin(*, share: Share, served: Served | None = None, client: str = "",
                         now: dt.datetime | None = None) -> Share:
    """Count and log the bytes of one request, or raise ShareUnavailable (the refusal is logged too).

    The limit is on bytes: a share of n downloads yields at most n × the package's size, whatever
    the Range headers (issue 17: a suffix range, ``bytes=00-`` or ``BYTES=0-`` no longer escape it).
    A resumed download asks for the rest only and so costs only the rest.
    """
    now = now or timezone.now()
    with transaction.atomic():
        share = Share.objects.select_for_update().select_related("export", "export__organisation").get(pk=share.pk)
        reason = share_unavailable_reason(share, now)
        size = share.export.size or 0
        served = served or Served.whole(size)
        if not reason and share.bytes_served + served.length > share.max_downloads * size:
            reason = "exhausted"
        if not reason:
            share.bytes_served += served.length
            share.downloads = copies(share.bytes_served, size)
            share.save(update_fields=["bytes_served", "downloads"])
        custody_event_append(action="share.downloaded" if not reason else "share.refused", subject=share.export,
                             organisation=share.export.organisation,
                             actor_label=f"external:{share.recipient}"[:200], recipients=[share.recipient], now=now,
                             motif=share.export.motif,
                             details={"export": share.export_id, "share": share.pk, "download": share.downloads,
                                      "max_downloads": share.max_downloads, "range": served.label,
                                      "bytes": served.length if not reason else 0,
                                      "bytes_served": share.bytes_served, "refused": reason or None,
                                      "sha256": share.export.sha256, "client": client[:100] or None,
                                      "motif_from": f"export {share.export_id}"})
    if reason:
        raise ShareUnavailable(reason)
    return share
