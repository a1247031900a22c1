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

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from accounts.models import User
from audit.services import custody_event_append
from evidence.models import Recording

from .models import AccessRequest, Export, ExportItem, ExportPurpose, Extraction, ExtractionPurpose, Redaction
from .selectors import ACCESS_REQUEST_HANDLERS, EXTRACTORS

log = logging.getLogger(__name__)

EXTRACTION_TTL = dt.timedelta(minutes=30)
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
