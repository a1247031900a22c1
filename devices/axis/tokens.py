"""Axis credentials and access tokens (Access token API): keys and tokens kept only as SHA-256, a
token valid for a bounded time, each credential bound to one organisation (RGPD art. 32: security
of processing; CSI R241-12: only the organisation's own system may deposit its recordings).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organisation, User
from audit.services import custody_event_append

from .errors import NotAuthenticated
from .models import AxisCredential, AxisToken

log = logging.getLogger(__name__)

DEFAULT_TOKEN_SECONDS = 3600


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token_lifetime() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "TEMOIN_AXIS_TOKEN_SECONDS", DEFAULT_TOKEN_SECONDS))


def credential_create(*, organisation: Organisation, site_name: str = "", by: User | None = None,
                      now: dt.datetime | None = None) -> tuple[AxisCredential, str]:
    """New ``BlobAPIUserName`` / ``BlobAPIKey`` for an organisation; the key is returned once, never stored."""
    now = now or timezone.now()
    key = secrets.token_urlsafe(32)  # 256 bits, 43 characters (the connection file allows 64)
    username = f"temoin-{organisation.slug[:40]}-{secrets.token_hex(4)}"
    with transaction.atomic():
        credential = AxisCredential.objects.create(
            organisation=organisation, username=username, key_sha256=_sha256(key),
            site_name=site_name[:64], created_at=now,
        )
        custody_event_append(action="axis.credential_created", subject=credential, organisation=organisation,
                             actor=by, actor_label="" if by else "system:cli",
                             details={"username": username, "site_name": site_name}, now=now)
    return credential, key


def credential_revoke(*, credential: AxisCredential, by: User | None = None,
                      now: dt.datetime | None = None) -> AxisCredential:
    now = now or timezone.now()
    with transaction.atomic():
        credential = AxisCredential.objects.select_for_update().get(pk=credential.pk)
        if not credential.active:
            return credential
        credential.active, credential.revoked_at = False, now
        credential.save(update_fields=["active", "revoked_at"])
        credential.tokens.all().delete()
        custody_event_append(action="axis.credential_revoked", subject=credential,
                             organisation=credential.organisation, actor=by,
                             actor_label="" if by else "system:cli",
                             details={"username": credential.username}, now=now)
    return credential


def token_issue(*, username: str, key: str, now: dt.datetime | None = None) -> tuple[AxisCredential, str, dt.datetime]:
    """``GET /auth/v1.0``: check ``X-Auth-User`` / ``X-Auth-Key`` and hand out a token that expires."""
    now = now or timezone.now()
    credential = (AxisCredential.objects.select_related("organisation")
                  .filter(username=username or "", active=True).first())
    expected = credential.key_sha256 if credential else "0" * 64
    if not hmac.compare_digest(expected, _sha256(key or "")) or credential is None:
        log.warning("Axis authentication refused for user %r", (username or "")[:64])
        raise NotAuthenticated("invalid X-Auth-User / X-Auth-Key")
    token = secrets.token_urlsafe(32)
    expires_at = now + token_lifetime()
    with transaction.atomic():
        AxisToken.objects.create(credential=credential, token_sha256=_sha256(token), created_at=now,
                                 expires_at=expires_at)
        AxisToken.objects.filter(credential=credential, expires_at__lt=now - dt.timedelta(days=1)).delete()
        AxisCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    return credential, token, expires_at


def token_check(*, token: str, now: dt.datetime | None = None) -> AxisCredential:
    """The credential an ``X-Auth-Token`` was issued to; 401 when missing, unknown or expired."""
    if not token:
        raise NotAuthenticated("X-Auth-Token missing")
    now = now or timezone.now()
    try:  # get(), not first(): token_sha256 is unique, and every request comes through here
        row = AxisToken.objects.select_related("credential__organisation").get(token_sha256=_sha256(token))
    except AxisToken.DoesNotExist:
        row = None
    if row is None or not row.credential.active:
        raise NotAuthenticated("invalid token")
    if row.expires_at <= now:
        raise NotAuthenticated("token expired: authenticate again")
    return row.credential
