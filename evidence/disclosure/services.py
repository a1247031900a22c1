"""Writes on disclosure. Each writes its custody event in the same transaction (STYLE.md), before
anything leaves the system (CSI R241-14: communications record author, date, time, motif and
recipients); Celery tasks are queued with ``transaction.on_commit``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from accounts.models import Role, User
from audit.services import custody_event_append
from evidence.models import Recording

from .models import AccessRequest, Export, ExportItem, ExportPurpose, Extraction, ExtractionPurpose, LegalGround, \
    Redaction, Share
from .selectors import ACCESS_REQUEST_HANDLERS, EXTRACTORS

log = logging.getLogger(__name__)

EXTRACTION_TTL = dt.timedelta(minutes=30)
SHARE_MAX_DAYS = 90
SHARE_MAX_DOWNLOADS = 100
# Recordings whose original bytes are verified in the store (CSI R241-11 V).
EXTRACTABLE = (Recording.Status.STORED, Recording.Status.PROCESSING, Recording.Status.READY,
               Recording.Status.UNPLAYABLE)


# Messages the API's serializers give too, for the same missing or unknown field (one wording).
PURPOSE_REQUIRED = _lazy("Indiquez la finalité de l'extraction : procédure judiciaire, administrative ou "
                         "disciplinaire, ou formation (CSI R241-12).")
REDACTION_UNKNOWN = _lazy("Floutage inconnu : « none », « others » ou « all ».")
EXTRACTION_RECIPIENT = _lazy("Indiquez le destinataire de l'extraction (CSI R241-14).")
EXTRACTION_MOTIF = _lazy("Indiquez le motif de l'extraction (CSI R241-14).")
EXPORT_RECIPIENT = _lazy("Indiquez le destinataire de l'export (CSI R241-14).")
EXPORT_MOTIF = _lazy("Indiquez le motif de l'export (CSI R241-14).")
RECORDINGS_NONE = _lazy("Choisissez au moins un enregistrement.")
RECORDINGS_MAX = _lazy("200 enregistrements au plus par export.")
SHARE_RECIPIENT = _lazy("Indiquez le destinataire du partage.")
SHARE_EXPIRY = _lazy("Indiquez la date d'expiration du lien.")
REQUESTER_NAME = _lazy("Indiquez l'identité du demandeur.")
IDENTITY_CHECKED = _lazy("Indiquez si l'identité du demandeur a été vérifiée.")
RECEIVED_ON = _lazy("Indiquez la date de réception de la demande.")
NOTICE_ON = _lazy("Indiquez la date à laquelle le demandeur a été informé.")
DECISION = _lazy("Décision : communication intégrale, partielle, ou refus.")
DELIVERED_ON = _lazy("Indiquez la date de remise.")
DESCRIPTION = _lazy("Décrivez ce que la personne demande (moment, lieu, agent).")
NOTICE = _lazy("Recopiez l'information donnée au demandeur sur la prolongation et ses motifs "
               "(RGPD art. 12(3)).")
MEANS = _lazy("Indiquez le moyen de remise (en main propre, lien de partage, courrier…).")


class DisclosureError(ValueError):
    """A request the rules refuse; ``field`` names the input at fault, the message says why (French)."""

    def __init__(self, message: str, field: str = "detail"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Served:
    """The bytes one request is about to receive, as the one Range parser read them
    (evidence.media.range_bounds: several ranges or a malformed header are refused before)."""

    start: int
    length: int
    size: int

    @classmethod
    def whole(cls, size: int) -> "Served":
        return cls(0, size, size)

    @property
    def label(self) -> str:
        return f"bytes {self.start}-{self.start + self.length - 1}/{self.size}" if self.length else f"bytes */{self.size}"


def copies(bytes_served: int, size: int | None) -> int:
    """Whole copies handed out: every byte served counts, however it was asked for."""
    return -(-bytes_served // size) if size else 0


def _count(model, pk: int, served: Served) -> None:
    """The one download counter of disclosure (extractions, exports): bytes served, then copies."""
    obj = model.objects.select_for_update().only("pk", "bytes_served", "downloads").get(pk=pk)
    obj.bytes_served += served.length
    obj.downloads = copies(obj.bytes_served, served.size)
    obj.save(update_fields=["bytes_served", "downloads"])


class ShareUnavailable(Exception):
    """The share link no longer works; ``reason`` is expired | exhausted | revoked | gone."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _token() -> tuple[str, str]:
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _text(value, field: str, message: str, max_length: int) -> str:
    value = (value or "").strip() if isinstance(value, str) else ""
    if not value:
        raise DisclosureError(message, field)
    # Issue 17 finding 5: NUL and lone surrogates have no place in a recipient or a motif.
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise DisclosureError(_("Caractère non autorisé (caractère nul ou invalide)."), field)
    if len(value) > max_length:
        raise DisclosureError(_("%(n)s caractères au plus.") % {"n": max_length}, field)
    return value


def _purpose_and_redaction(purpose: str, redaction: str, allowed) -> tuple[str, str]:
    if purpose not in allowed:
        raise DisclosureError(
            PURPOSE_REQUIRED, "purpose")
    redaction = redaction or Redaction.NONE
    if redaction not in Redaction.values:
        raise DisclosureError(REDACTION_UNKNOWN, "redaction")
    # CSI R241-13 (LEGAL.md rule 6): training copies are produced only from a fully redacted copy.
    if purpose == ExtractionPurpose.TRAINING and redaction != Redaction.ALL:
        raise DisclosureError(
            _("Une extraction pour la formation n'est produite qu'à partir d'une copie entièrement anonymisée : "
              "choisissez le floutage « all » (anonymisation complète, CSI R241-13)."), "redaction")
    return purpose, redaction


def redaction_available() -> bool:
    return importlib.util.find_spec("evidence.redaction.selectors") is not None


def approved_derivative(recording: Recording, mode: str):
    """The redaction engineer's interface, imported late so that disclosure works without it."""
    if not redaction_available():
        return None
    from evidence.redaction.selectors import approved_derivative as select

    return select(recording=recording, mode=mode)


def _derivatives_for(recordings, redaction: str) -> dict:
    if redaction == Redaction.NONE:
        return {}
    found, missing = {}, []
    for r in recordings:
        d = approved_derivative(r, redaction)
        if d is None:
            missing.append(r)
        else:
            found[r.pk] = d
    if missing:
        label = dict(Redaction.choices)[redaction]
        raise DisclosureError(
            _("Aucune copie floutée approuvée (%(mode)s) pour l'enregistrement ou les enregistrements n° %(ids)s : "
              "faites-la produire et approuver avant l'export.")
            % {"mode": label, "ids": ", ".join(str(r.pk) for r in missing)}, "redaction")
    return found


def _check_anonymous(derivatives: dict) -> None:
    """LEGAL.md rule 6 (CSI R241-13): a training copy leaves only fully anonymised — approved by
    another person who watched it, no face left at the second look, sound removed or kept for a
    stated reason (evidence.redaction.selectors.derivative_anonymity)."""
    from evidence.redaction.selectors import derivative_anonymity

    for recording_id, d in derivatives.items():
        anonymity = derivative_anonymity(derivative=d)
        if not anonymity["fully_anonymised"]:
            raise DisclosureError(
                _("La copie de l'enregistrement n° %(id)s n'est pas entièrement anonymisée : %(why)s.")
                % {"id": recording_id, "why": " ; ".join(anonymity["reasons"])}, "redaction")


def _check_extractable(recordings) -> None:
    bad = [r for r in recordings if r.status not in EXTRACTABLE or not r.sha256]
    if bad:
        raise DisclosureError(
            _("Enregistrement(s) n° %(ids)s non extractible(s) : effacé, ou pas encore stocké et vérifié.")
            % {"ids": ", ".join(str(r.pk) for r in bad)}, "recordings")


# --- Extraction of one recording (CSI R241-12, R241-13) -----------------------------------------

def extraction_create(*, recording: Recording, by: User, purpose: str, recipient: str, motif: str,
                      redaction: str = Redaction.NONE, now: dt.datetime | None = None) -> tuple[Extraction, str]:
    """Log the extraction in the register, then hand out a short-lived download link bound to ``by``.

    The caller has checked that ``by`` may see ``recording`` (recordings_visible_to).
    """
    if by.role not in EXTRACTORS:
        raise PermissionError(_("L'extraction est réservée au responsable de service, aux agents habilités et au "
                                "service juridique (CSI R241-12)."))
    purpose, redaction = _purpose_and_redaction(purpose, redaction, ExtractionPurpose.values)
    recipient = _text(recipient, "recipient", EXTRACTION_RECIPIENT, 300)
    motif = _text(motif, "motif", EXTRACTION_MOTIF, 2000)
    _check_extractable([recording])
    derivative = _derivatives_for([recording], redaction).get(recording.pk)
    now = now or timezone.now()
    token, digest = _token()
    if derivative is not None:
        key, version = derivative.store_key, getattr(derivative, "store_version_id", "")
        sha, size, suffix = derivative.sha256, derivative.size, f"-floute-{redaction}"
    else:
        key, version, sha, size, suffix = (recording.store_key, recording.store_version_id, recording.sha256,
                                           recording.size, "")
    ext = Path(key).suffix or ".bin"
    with transaction.atomic():
        extraction = Extraction.objects.create(
            organisation_id=recording.organisation_id, recording=recording, requested_by=by, purpose=purpose,
            recipient=recipient, motif=motif, redaction=redaction, derivative_id=derivative.id if derivative else None,
            store_key=key, store_version_id=version or "", sha256=sha, size=size,
            filename=f"enregistrement-{recording.pk}{suffix}{ext}", created_at=now,
            expires_at=now + EXTRACTION_TTL, token_sha256=digest,
        )
        custody_event_append(
            action="recording.extracted", subject=recording, actor=by, motif=motif, recipients=[recipient], now=now,
            details={"extraction": extraction.pk, "purpose": purpose, "redaction": redaction,
                     "derivative": extraction.derivative_id, "sha256": sha, "size": size,
                     "expires_at": extraction.expires_at.isoformat()},
        )
    return extraction, token


def extraction_for_token(*, token: str, user: User, now: dt.datetime | None = None) -> Extraction | None:
    """The live extraction a download token belongs to, for its own author; None otherwise."""
    now = now or timezone.now()
    e = Extraction.objects.select_related("recording").filter(token_sha256=_digest(token)).first()
    if e is None or e.requested_by_id != getattr(user, "pk", None) or e.expires_at <= now:
        return None
    if e.recording.gone:
        return None
    return e


def extraction_download_record(*, extraction: Extraction, by: User, served: Served | None = None,
                               now: dt.datetime | None = None) -> None:
    """Each download (each HTTP request for the bytes) is logged before the bytes are served, with the
    extraction's motif and recipient, inherited and said so (CSI R241-14)."""
    served = served or Served.whole(extraction.size)
    with transaction.atomic():
        _count(Extraction, extraction.pk, served)
        custody_event_append(
            action="extraction.downloaded", subject=extraction.recording, actor=by, now=now,
            recipients=[extraction.recipient], motif=extraction.motif,
            details={"extraction": extraction.pk, "sha256": extraction.sha256, "range": served.label,
                     "bytes": served.length, "motif_from": f"extraction {extraction.pk}"},
        )


# --- Export packages --------------------------------------------------------------------------

def export_create(*, recordings: list[Recording], by: User, purpose: str, recipient: str, motif: str,
                  redaction: str = Redaction.NONE, access_request: AccessRequest | None = None,
                  intervention=None, now: dt.datetime | None = None) -> Export:
    """Register the export (one ``recording.extracted`` per recording, then ``export.created``) and
    queue the building of the package. The caller has checked the recordings are visible to ``by``.
    With ``intervention``, the recordings are those linked to it at this moment (issue #21).
    """
    if intervention is not None:
        from evidence.interventions.selectors import intervention_recordings_visible_to

        recordings = list(intervention_recordings_visible_to(user=by, intervention=intervention))
    if access_request is not None:
        # LIL art. 105: the copy for a data subject, made by the DPO, blurs the other people.
        if by.role not in ACCESS_REQUEST_HANDLERS:
            raise PermissionError(_("La copie pour une demande d'accès est produite par le délégué à la protection "
                                    "des données."))
        purpose = ExportPurpose.ACCESS_REQUEST
        allowed = [ExportPurpose.ACCESS_REQUEST]
    else:
        if by.role not in EXTRACTORS:
            raise PermissionError(_("L'extraction est réservée au responsable de service, aux agents habilités et "
                                    "au service juridique (CSI R241-12)."))
        allowed = ExtractionPurpose.values
    purpose, redaction = _purpose_and_redaction(purpose, redaction, allowed)
    recipient = _text(recipient, "recipient", EXPORT_RECIPIENT, 300)
    motif = _text(motif, "motif", EXPORT_MOTIF, 2000)
    unique = list({r.pk: r for r in recordings}.values())
    if not unique:
        raise DisclosureError(RECORDINGS_NONE, "recordings")
    if len(unique) > 200:
        raise DisclosureError(RECORDINGS_MAX, "recordings")
    _check_extractable(unique)
    derivatives = _derivatives_for(unique, redaction)
    if purpose == ExportPurpose.TRAINING:
        _check_anonymous(derivatives)
    now = now or timezone.now()
    with transaction.atomic():
        export = Export.objects.create(
            organisation_id=by.organisation_id, requested_by=by, purpose=purpose, recipient=recipient, motif=motif,
            redaction=redaction, access_request=access_request, created_at=now,
        )
        ExportItem.objects.bulk_create(
            ExportItem(export=export, recording=r, position=i,
                       derivative_id=derivatives[r.pk].id if r.pk in derivatives else None)
            for i, r in enumerate(unique, start=1)
        )
        # Logged in the register before anything is produced (CSI R241-14).
        for r in unique:
            custody_event_append(
                action="recording.extracted", subject=r, actor=by, motif=motif, recipients=[recipient], now=now,
                details={"export": export.pk, "purpose": purpose, "redaction": redaction,
                         "derivative": derivatives[r.pk].id if r.pk in derivatives else None, "sha256": r.sha256,
                         "access_request": access_request.pk if access_request else None},
            )
        custody_event_append(
            action="export.created", subject=export, organisation=by.organisation, actor=by, motif=motif,
            recipients=[recipient], now=now,
            details={"export": export.pk, "uuid": str(export.uuid), "purpose": purpose, "redaction": redaction,
                     "recordings": [r.pk for r in unique],
                     "access_request": access_request.pk if access_request else None},
        )
        transaction.on_commit(lambda: export_enqueue(export_id=export.pk))
    return export


def export_enqueue(*, export_id: int) -> None:
    from evidence.dispatch import task_enqueue

    try:
        task_enqueue("disclosure.build_export", args=[export_id], queue="media")
    except Exception:  # noqa: BLE001 - the broker being down leaves the export queued, shown as such
        log.exception("could not queue the building of export %s", export_id)


def export_build(*, export: Export, now: dt.datetime | None = None) -> Export:
    """Build the package (evidence/disclosure/package.py), store it write-once, record its SHA-256."""
    from . import package

    with transaction.atomic():
        export = Export.objects.select_for_update().get(pk=export.pk)
        if export.status not in (Export.Status.QUEUED, Export.Status.RUNNING):
            return export  # idempotent: a redelivered task finds the work done
        export.status, export.progress, export.started_at = Export.Status.RUNNING, 0, timezone.now()
        export.save(update_fields=["status", "progress", "started_at"])
    try:
        built = package.build(export=export, now=now, derivative_of=approved_derivative,
                              report_progress=lambda pct: export_progress(export=export, progress=pct))
    except Exception as exc:  # noqa: BLE001 - reported on the export and in the log, never lost silently
        log.exception("export %s failed", export.pk)
        with transaction.atomic():
            Export.objects.filter(pk=export.pk).update(status=Export.Status.FAILED, status_message=str(exc)[:2000],
                                                       finished_at=timezone.now())
            custody_event_append(action="export.failed", subject=export, organisation=export.organisation,
                                 actor_label="system:export", details={"export": export.pk, "error": str(exc)[:500]})
        export.refresh_from_db()
        return export
    with transaction.atomic():
        Export.objects.filter(pk=export.pk).update(
            status=Export.Status.READY, progress=100, finished_at=timezone.now(), store_key=built.key,
            store_version_id=built.version_id, sha256=built.sha256, size=built.size,
            manifest_sha256=built.manifest_sha256, retain_until=built.retain_until, status_message="")
        custody_event_append(
            action="export.ready", subject=export, organisation=export.organisation, actor_label="system:export",
            recipients=[export.recipient],
            details={"export": export.pk, "sha256": built.sha256, "size": built.size,
                     "manifest_sha256": built.manifest_sha256, "store_key": built.key,
                     "version_id": built.version_id, "files": built.files, "checkpoints": built.checkpoints,
                     "retain_until": built.retain_until.isoformat()},
        )
    export.refresh_from_db()
    return export


def export_progress(*, export: Export, progress: int) -> None:
    Export.objects.filter(pk=export.pk, status=Export.Status.RUNNING).update(progress=max(0, min(99, progress)))


def export_download_record(*, export: Export, by: User, served: Served | None = None,
                           now: dt.datetime | None = None) -> None:
    """Logged before the bytes leave, with the export's motif and recipient, inherited and said so."""
    served = served or Served.whole(export.size or 0)
    with transaction.atomic():
        _count(Export, export.pk, served)
        custody_event_append(action="export.downloaded", subject=export, organisation=export.organisation, actor=by,
                             recipients=[export.recipient], motif=export.motif, now=now,
                             details={"export": export.pk, "sha256": export.sha256, "range": served.label,
                                      "bytes": served.length, "motif_from": f"export {export.pk}"})


# --- Shares with an external recipient ----------------------------------------------------------

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


# --- Data-subject access requests (CSI R241-15, LIL 105 and 107, GDPR 12(3)) ---------------------

def _handler(by: User) -> None:
    if by.role not in ACCESS_REQUEST_HANDLERS:
        raise PermissionError(_("Les demandes d'accès sont traitées par le délégué à la protection des données."))


def access_request_deadline(received_on: dt.date, *, extended: bool = False) -> dt.date:
    # GDPR art. 12(3): one month from receipt, extendable by two further months.
    return received_on + relativedelta(months=3 if extended else 1)


def _ar_event(request: AccessRequest, action: str, by: User, now, **kwargs):
    return custody_event_append(action=action, subject=request, organisation=request.organisation, actor=by, now=now,
                                **kwargs)


def access_request_register(*, by: User, requester_name: str, identity_checked: bool, identity_check_method: str,
                            received_on: dt.date, description: str, requester_contact: str = "",
                            window_start: dt.datetime | None = None, window_end: dt.datetime | None = None,
                            place=None, radius_m: int | None = None, officer: str = "",
                            now: dt.datetime | None = None) -> AccessRequest:
    _handler(by)
    now = now or timezone.now()
    requester_name = _text(requester_name, "requester_name", REQUESTER_NAME, 300)
    description = _text(description, "description", DESCRIPTION,
                        5000)
    if not isinstance(identity_checked, bool):
        raise DisclosureError(IDENTITY_CHECKED, "identity_checked")
    identity_check_method = (identity_check_method or "").strip()
    if identity_checked and not identity_check_method:
        raise DisclosureError(_("Indiquez comment l'identité a été vérifiée (pièce présentée, etc.)."),
                              "identity_check_method")
    if not isinstance(received_on, dt.date):
        raise DisclosureError(RECEIVED_ON, "received_on")
    if received_on > timezone.localdate(now):
        raise DisclosureError(_("La date de réception ne peut pas être dans le futur."), "received_on")
    if window_start and window_end and window_end <= window_start:
        raise DisclosureError(_("La fin de la période doit suivre son début."), "window_end")
    if place is not None:
        try:
            place = [float(place[0]), float(place[1])]
        except (TypeError, ValueError, IndexError):
            raise DisclosureError(_("Lieu : latitude et longitude attendues."), "place") from None
        if not (-90 <= place[0] <= 90 and -180 <= place[1] <= 180):
            raise DisclosureError(_("Lieu : latitude entre -90 et 90, longitude entre -180 et 180."), "place")
        if not radius_m or radius_m <= 0:
            raise DisclosureError(_("Indiquez le rayon de recherche autour du lieu, en mètres."), "radius_m")
    with transaction.atomic():
        request = AccessRequest.objects.create(
            organisation_id=by.organisation_id, requester_name=requester_name,
            requester_contact=(requester_contact or "").strip()[:500], identity_checked=identity_checked,
            identity_check_method=identity_check_method[:500], received_on=received_on, description=description,
            window_start=window_start, window_end=window_end, place=place, radius_m=radius_m if place else None,
            officer=(officer or "").strip()[:100], deadline=access_request_deadline(received_on), created_by=by,
            created_at=now,
        )
        # The requester's identity stays on the request row; the log names the request.
        _ar_event(request, "access_request.registered", by, now,
                  details={"access_request": request.pk, "received_on": received_on.isoformat(),
                           "identity_checked": identity_checked, "deadline": request.deadline.isoformat()})
    return request


def _open(request: AccessRequest) -> AccessRequest:
    request = AccessRequest.objects.select_for_update().get(pk=request.pk)
    if request.closed_at is not None:
        raise DisclosureError(_("Cette demande est close."))
    return request


def access_request_extend(*, request: AccessRequest, by: User, notice_on: dt.date, notice: str,
                          now: dt.datetime | None = None) -> AccessRequest:
    """Extend the deadline by two months (GDPR art. 12(3)) with the notice given to the requester,
    which must be given within the first month."""
    _handler(by)
    now = now or timezone.now()
    notice = _text(notice, "notice", NOTICE, 5000)
    if not isinstance(notice_on, dt.date):
        raise DisclosureError(NOTICE_ON, "notice_on")
    with transaction.atomic():
        request = _open(request)
        if request.extended:
            raise DisclosureError(_("Le délai a déjà été prolongé : une seule prolongation de deux mois est "
                                    "possible (RGPD art. 12(3))."), "notice")
        initial = access_request_deadline(request.received_on)
        if notice_on < request.received_on:
            raise DisclosureError(_("L'information ne peut pas précéder la réception de la demande."), "notice_on")
        if notice_on > initial:
            raise DisclosureError(_("Le demandeur doit être informé de la prolongation dans le mois qui suit la "
                                    "réception (au plus tard le %(d)s, RGPD art. 12(3)).") % {"d": f"{initial:%d/%m/%Y}"},
                                  "notice_on")
        if notice_on > timezone.localdate(now):
            raise DisclosureError(_("La date d'information ne peut pas être dans le futur."), "notice_on")
        request.extended = True
        request.extension_notice_on, request.extension_notice = notice_on, notice
        request.deadline = access_request_deadline(request.received_on, extended=True)
        request.save(update_fields=["extended", "extension_notice_on", "extension_notice", "deadline"])
        _ar_event(request, "access_request.extended", by, now, motif=notice,
                  details={"access_request": request.pk, "notice_on": notice_on.isoformat(),
                           "deadline": request.deadline.isoformat()})
    return request


def access_request_search_record(*, request: AccessRequest, by: User, criteria: dict, found: list[int],
                                 now: dt.datetime | None = None) -> None:
    """Searching recordings for a requester reads personal data: the search is logged."""
    _handler(by)
    with transaction.atomic():
        _ar_event(request, "access_request.searched", by, now,
                  details={"access_request": request.pk, "criteria": criteria, "found": found[:500]})


def access_request_select(*, request: AccessRequest, by: User, recordings: list[Recording],
                          now: dt.datetime | None = None) -> AccessRequest:
    """The recordings that show the requester (replaces the previous selection)."""
    _handler(by)
    with transaction.atomic():
        request = _open(request)
        before = set(request.recordings.values_list("pk", flat=True))
        request.recordings.set(recordings)
        after = {r.pk for r in recordings}
        _ar_event(request, "access_request.recordings_selected", by, now,
                  details={"access_request": request.pk, "recordings": sorted(after),
                           "added": sorted(after - before), "removed": sorted(before - after)})
    return request


def access_request_decide(*, request: AccessRequest, by: User, decision: str, legal_ground: str = "",
                          note: str = "", now: dt.datetime | None = None) -> AccessRequest:
    """Full, partial or refused; a restriction or refusal states its ground (LIL art. 107 II)."""
    _handler(by)
    now = now or timezone.now()
    if decision not in AccessRequest.Decision.values:
        raise DisclosureError(DECISION, "decision")
    legal_ground = legal_ground or ""
    if decision == AccessRequest.Decision.FULL:
        legal_ground = ""
    elif legal_ground not in LegalGround.values:
        raise DisclosureError(_("Une communication partielle ou un refus indique son fondement légal (LIL art. 107 "
                                "II)."), "legal_ground")
    with transaction.atomic():
        request = _open(request)
        if decision != AccessRequest.Decision.REFUSED and not request.recordings.exists():
            raise DisclosureError(_("Aucun enregistrement retenu : sélectionnez les enregistrements concernés, ou "
                                    "répondez par un refus motivé."), "decision")
        request.decision, request.legal_ground = decision, legal_ground
        request.decision_note, request.decided_at, request.decided_by = (note or "").strip()[:5000], now, by
        request.save(update_fields=["decision", "legal_ground", "decision_note", "decided_at", "decided_by"])
        _ar_event(request, "access_request.decided", by, now, motif=request.decision_note,
                  details={"access_request": request.pk, "decision": decision, "legal_ground": legal_ground or None,
                           "recordings": sorted(request.recordings.values_list("pk", flat=True))})
    return request


def access_request_copy(*, request: AccessRequest, by: User, now: dt.datetime | None = None) -> Export:
    """The copy for the requester: the selected recordings, other people blurred (LEGAL.md rule 8)."""
    _handler(by)
    if request.closed_at is not None:
        raise DisclosureError(_("Cette demande est close."))
    if request.decision not in (AccessRequest.Decision.FULL, AccessRequest.Decision.PARTIAL):
        raise DisclosureError(_("Enregistrez d'abord une décision de communication (intégrale ou partielle)."),
                              "decision")
    recordings = list(request.recordings.all())
    return export_create(recordings=recordings, by=by, purpose=ExportPurpose.ACCESS_REQUEST,
                         recipient=request.requester_name,
                         motif=_("Demande d'accès n° %(n)s (LIL art. 105)") % {"n": request.pk},
                         redaction=Redaction.OTHERS, access_request=request, now=now)


def access_request_deliver(*, request: AccessRequest, by: User, delivered_on: dt.date, means: str,
                           now: dt.datetime | None = None) -> AccessRequest:
    """Record the reply's delivery (the copy, or the reasoned refusal) and close the request."""
    _handler(by)
    now = now or timezone.now()
    means = _text(means, "means", MEANS,
                  500)
    if not isinstance(delivered_on, dt.date):
        raise DisclosureError(DELIVERED_ON, "delivered_on")
    if delivered_on > timezone.localdate(now):
        raise DisclosureError(_("La date de remise ne peut pas être dans le futur."), "delivered_on")
    with transaction.atomic():
        request = _open(request)
        if not request.decision:
            raise DisclosureError(_("Enregistrez d'abord la décision."), "decision")
        if delivered_on < request.received_on:
            raise DisclosureError(_("La remise ne peut pas précéder la réception de la demande."), "delivered_on")
        request.delivered_on, request.delivery_means, request.closed_at = delivered_on, means, now
        request.save(update_fields=["delivered_on", "delivery_means", "closed_at"])
        _ar_event(request, "access_request.delivered", by, now, recipients=[request.requester_name],
                  details={"access_request": request.pk, "delivered_on": delivered_on.isoformat(), "means": means,
                           "decision": request.decision, "late": delivered_on > request.deadline,
                           "exports": list(request.exports.values_list("pk", flat=True))})
    return request
