"""Writes of requisitions: issuing one to a partner (issue 22). The uploads are in ``upload.py``.

Every change writes its custody event in the same transaction (STYLE.md; CSI R241-14).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import unicodedata

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit.services import custody_event_append
from devices.models import Camera
from devices.services import camera_register

from ..retention import RetentionRefused
from ..retention.regimes import videoprotection_period_check
from ..sources import Regime
from .models import Requisition, RequisitionDeclarant
from .selectors import REQUISITION_ROLES


class RequisitionRefused(Exception):
    """The requisition cannot be issued as asked (the message says why)."""


def partner_camera(*, organisation, partner: str) -> Camera:
    """The partner's placeholder device: a recording needs a camera (CSI R241-10 names the device),
    and a partner's files come from its own system, which Témoin does not register. One per
    partner name and organisation, as devices/axis/ingest.py does for an unknown Axis camera."""
    ascii_name = unicodedata.normalize("NFKD", partner).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Z0-9]+", "-", ascii_name.upper()).strip("-")[:40].strip("-") or "PARTNER"
    serial = f"PARTNER-{slug}"
    camera = Camera.objects.filter(organisation=organisation, serial=serial).first()
    if camera is not None:
        return camera
    try:
        with transaction.atomic():
            return camera_register(serial=serial, organisation=organisation, model=f"partner: {partner}"[:100])
    except IntegrityError:  # registered meanwhile by another request
        return Camera.objects.get(organisation=organisation, serial=serial)


def requisition_create(*, by: User, partner: str, regime: str, reference: str, motif: str,
                       period_start: dt.datetime, period_end: dt.datetime, expires_at: dt.datetime,
                       retention: str = "", now: dt.datetime | None = None) -> tuple[Requisition, str]:
    """Issue a requisition to ``partner``; returns it and the upload link's token (shown once).

    Only supervisors and legal staff issue requisitions (PermissionError otherwise). The token is
    never stored: only its SHA-256, so that the link works for the partner alone.

    ``retention``: for videoprotection images, the period the prefectoral authorisation of the
    partner's system sets (ISO 8601, e.g. P15D; one month when not given), at most one month (CSI
    L252-5); body-worn images keep the organisation's period (CSI R241-13), so none is declared.
    """
    now = now or timezone.now()
    if by.role not in REQUISITION_ROLES or by.organisation_id is None or not by.is_active:
        raise PermissionError("only a supervisor or legal staff may issue a requisition")
    partner, reference, motif = partner.strip(), reference.strip(), motif.strip()
    if not partner or not reference or not motif:
        raise RequisitionRefused("partner, reference and motif are required")
    if regime not in Regime.values:
        raise RequisitionRefused(f"regime: one of {', '.join(Regime.values)}")
    if period_end < period_start:
        raise RequisitionRefused("period_end is before period_start")
    if expires_at <= now:
        raise RequisitionRefused("expires_at is in the past")
    retention = (retention or "").strip().upper()
    if regime == Regime.VIDEOPROTECTION:
        try:
            retention = videoprotection_period_check(retention)
        except (ValueError, RetentionRefused) as exc:
            raise RequisitionRefused(str(exc)) from exc
    elif retention:
        raise RequisitionRefused(_("Les images de caméras individuelles sont conservées selon la durée de "
                                   "l'organisation (CSI L241-2, R241-13) : n'indiquez pas de durée pour elles."))
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        camera = partner_camera(organisation=by.organisation, partner=partner)
        requisition = Requisition.objects.create(
            organisation=by.organisation, partner=partner[:200], regime=regime, reference=reference[:200],
            motif=motif, period_start=period_start, period_end=period_end, expires_at=expires_at,
            retention=retention, token_sha256=hashlib.sha256(token.encode()).hexdigest(), camera=camera, created_by=by,
            created_at=now,
        )
        custody_event_append(
            action="requisition.created", subject=requisition, organisation=by.organisation, actor=by,
            motif=motif, details={"partner": requisition.partner, "regime": regime, "reference": requisition.reference,
                                  "period_start": period_start.isoformat(), "period_end": period_end.isoformat(),
                                  "expires_at": expires_at.isoformat(), "camera": camera.serial,
                                  "retention": retention or None},
        )
    return requisition, token


def binding_digest(binding: str | None) -> str:
    return hashlib.sha256((binding or "").encode()).hexdigest()


def declarant_for_binding(*, requisition: Requisition, binding: str | None) -> RequisitionDeclarant | None:
    """The link's declarant when ``binding`` (the browser's cookie) is the one it was bound with."""
    declarant = RequisitionDeclarant.objects.filter(requisition=requisition).first()
    if declarant is None or not binding or not secrets.compare_digest(declarant.binding_sha256,
                                                                      binding_digest(binding)):
        return None
    return declarant


def declarant_bind(*, requisition: Requisition, name: str, role: str, contact: str, user_agent: str = "",
                   now: dt.datetime | None = None) -> tuple[RequisitionDeclarant, str]:
    """The partner's person says who they are: the first one binds the link to their browser.

    Returns the declarant and the binding token (set as a cookie, never stored: its SHA-256 is).
    RequisitionRefused when somebody has already declared (single use by one person) or a field
    is missing. Logged in the custody log in the same transaction (CSI R241-14: who handed the
    images over is part of their custody).
    """
    now = now or timezone.now()
    name, role, contact = (" ".join(v.split())[:200] for v in (name, role, contact))
    if not name or not role or not contact:
        raise RequisitionRefused("name, organisation or role, and an e-mail or telephone are required")
    if now >= requisition.expires_at:
        raise RequisitionRefused("the link has expired")
    binding = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            declarant = RequisitionDeclarant.objects.create(
                requisition=requisition, name=name, role=role, contact=contact,
                binding_sha256=binding_digest(binding), user_agent=user_agent[:300], declared_at=now)
            custody_event_append(
                action="requisition.declared", subject=requisition, organisation=requisition.organisation,
                actor_label=f"partner:{requisition.partner}: {name}"[:200],
                details={"partner": requisition.partner, "name": name, "role": role, "contact": contact,
                         "user_agent": user_agent[:300]})
    except IntegrityError as exc:  # another browser declared first
        raise RequisitionRefused("somebody has already declared on this link") from exc
    return declarant, binding
