"""Access to recordings: consultations with a motif, individual grants.

LEGAL.md rule 5 (CSI R241-11 II and IV, R241-12): only authorised people, the wearer for their own
recordings, consultation only after the intervention and the transfer, the technical administrator
never sees media; agents individually designated and authorised by the head of service, until a
date. LEGAL.md rule 7 (CSI R241-14, LIL 101): each consultation records author, date, motif and
recipients before the media is served; each grant is itself logged.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from accounts.models import User
from audit.services import custody_event_append

from ..models import Consultation, Recording, RecordingGrant



# --- Consultation: motif before media (CSI R241-14) --------------------------------------------

CONSULTATION_TTL = dt.timedelta(minutes=30)
# Motifs offered to the user before viewing (free text may be added). The register keeps them in French;
# the form shows them in the reader's language.
CONSULTATION_MOTIFS = [
    gettext_noop("Compte rendu de l'intervention par l'agent porteur"),
    gettext_noop("Contrôle hiérarchique de l'intervention"),
    gettext_noop("Réquisition ou demande de l'autorité judiciaire"),
    gettext_noop("Enquête administrative"),
    gettext_noop("Procédure disciplinaire"),
    gettext_noop("Demande d'accès d'une personne filmée"),
    gettext_noop("Vérification technique de l'enregistrement"),
]


def consultation_open(*, recording: Recording, by: User, motif: str, now: dt.datetime | None = None):
    """Log a consultation with its motif, then hand out a short-lived media token bound to it.

    CSI R241-11 IV: viewing only after the intervention and the transfer, so only recordings
    verified in the store can be consulted; the technical administrator never sees media.
    """
    motif = (motif or "").strip()
    if len(motif) < 3:
        raise ValueError("motif: state why you view this recording")
    if by.role == "admin":
        raise PermissionError("the technical administrator never sees media")
    if recording.status not in (Recording.Status.READY, Recording.Status.UNPLAYABLE) or not recording.playback_key:
        raise ValueError("this recording has no playback copy yet")
    now = now or timezone.now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        consultation = Consultation.objects.create(
            recording=recording, user=by, motif=motif[:2000], created_at=now, expires_at=now + CONSULTATION_TTL,
            token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        )
        custody_event_append(action="recording.consulted", subject=recording, actor=by, motif=motif[:2000],
                             recipients=[by.username],
                             details={"consultation": consultation.pk, "expires_at": consultation.expires_at.isoformat()})
    return consultation, token


def consultation_for_token(*, token: str, user: User, now: dt.datetime | None = None):
    """The live consultation a media token belongs to, for that same user; None otherwise."""
    now = now or timezone.now()
    c = (Consultation.objects.select_related("recording").filter(
        token_sha256=hashlib.sha256(token.encode()).hexdigest()).first())
    if c is None or c.user_id != getattr(user, "pk", None) or c.expires_at <= now:
        return None
    if c.recording.gone:
        return None
    return c



# --- Individual grants (CSI R241-12: agents individually designated and authorised) ------------

GRANTORS = {"supervisor"}


def recording_access_grant(*, grantee: User, by: User, until: dt.datetime, motif: str,
                           recordings=None, intervention: str = "", now: dt.datetime | None = None) -> int:
    """Let one person see given recordings (or every recording of an intervention) until a date.

    Returns the number of recordings granted. Logged like any authorisation (CSI R241-12, R241-14).
    """
    now = now or timezone.now()
    motif = (motif or "").strip()
    if by.role not in GRANTORS:
        raise PermissionError("only the head of service grants access")
    if grantee.organisation_id != by.organisation_id or grantee.role == "admin" or not grantee.is_active:
        raise ValueError("grantee: an active person of your service (never the technical administrator)")
    if not motif:
        raise ValueError("motif: say why this person needs these recordings")
    if until <= now:
        raise ValueError("until: a date in the future")
    if until > now + dt.timedelta(days=366):
        raise ValueError("until: one year at most; renew the grant if needed")
    qs = Recording.objects.filter(organisation_id=by.organisation_id).exclude(status=Recording.Status.DUPLICATE)
    if intervention:
        qs = qs.filter(intervention=intervention.strip())
    elif recordings is not None:
        qs = qs.filter(pk__in=[getattr(r, "pk", r) for r in recordings])
    else:
        raise ValueError("recordings or intervention: say what is granted")
    with transaction.atomic():
        ids = list(qs.values_list("pk", flat=True))
        if not ids:
            raise ValueError("nothing to grant: no recording matches")
        for rid in ids:
            RecordingGrant.objects.update_or_create(
                user=grantee, recording_id=rid,
                defaults={"expires_at": until, "granted_by": by, "motif": motif})
        custody_event_append(action="access.granted", subject=grantee, organisation=grantee.organisation, actor=by,
                             motif=motif, now=now, details={"recordings": ids, "intervention": intervention,
                                                            "until": until.isoformat(), "grantee": grantee.username})
    return len(ids)


def recording_access_revoke(*, grantee: User, by: User, motif: str = "", now: dt.datetime | None = None) -> int:
    if by.role not in GRANTORS or grantee.organisation_id != by.organisation_id:
        raise PermissionError("only the head of service of that person revokes access")
    with transaction.atomic():
        rows = RecordingGrant.objects.filter(user=grantee)
        ids = list(rows.values_list("recording_id", flat=True))
        rows.delete()
        custody_event_append(action="access.revoked", subject=grantee, organisation=grantee.organisation, actor=by,
                             motif=motif, now=now, details={"recordings": ids, "grantee": grantee.username})
    return len(ids)
