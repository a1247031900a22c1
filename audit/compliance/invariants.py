"""The legal rules Témoin enforces, stated as invariants over the whole deployment: the database,
the write-once store and the custody log (docs/compliance.md lists them with their articles).

Each invariant is a function of an ``AuditContext`` yielding ``Violation``s: which rule, which
object or row, since when, and for which organisation. A state that a running system passes
through for a moment (an erasure due but the sweep not yet run, a write under way) is a violation
only once it has lasted longer than the grace period (``TEMOIN_COMPLIANCE_GRACE``).
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.db.models.fields.json import KT
from django.utils.translation import gettext_noop


class CouldNotLook(Exception):
    """The audit could not read what it must check (store unreachable…): it says so, never "all good"."""


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str  # "recording 12", "object originals/…", "consultation 5"
    message: str
    since: dt.datetime | None = None
    organisation_id: int | None = None

    def as_dict(self, org_slugs: dict[int, str] | None = None) -> dict:
        return {"rule": self.rule, "subject": self.subject, "message": self.message,
                "since": self.since.isoformat() if self.since else None,
                "organisation": (org_slugs or {}).get(self.organisation_id) if self.organisation_id else None}


@dataclass
class AuditContext:
    now: dt.datetime
    grace: dt.timedelta
    store: object
    _listing: dict | None = None
    _owned: tuple | None = None
    heads_checked: int = 0
    notes: list[str] = field(default_factory=list)

    def listing(self) -> dict[str, list]:
        """Every version in the store, by key (read once per audit)."""
        from evidence.integrations.store import StoreError

        if self._listing is None:
            listing: dict[str, list] = {}
            try:
                for obj in self.store.iter_objects():
                    listing.setdefault(obj.key, []).append(obj)
            except (StoreError, OSError) as exc:
                raise CouldNotLook(f"the store could not be listed: {exc}") from exc
            self._listing = listing
        return self._listing

    def owned(self):
        from evidence.retention.owners import objects_owned

        if self._owned is None:
            self._owned = objects_owned()
        return self._owned


@dataclass(frozen=True)
class Invariant:
    id: str
    title: str
    articles: str
    check: Callable[[AuditContext], Iterable[Violation]]
    code: str  # where the rule is enforced, for docs/compliance.md


def _org_of_key(key: str, slugs: dict[str, int]) -> int | None:
    parts = key.split("/")
    return slugs.get(parts[1]) if len(parts) > 2 else None


def _slugs() -> dict[str, int]:
    from accounts.models import Organisation

    return dict(Organisation.objects.values_list("slug", "pk"))


# --- 1. Nothing in the store without an owner alive and lawful --------------------------------------

def check_store_objects_owned(ctx: AuditContext) -> Iterator[Violation]:
    from evidence.retention.owners import owner_of
    from evidence.retention.sweep import _orphan_note

    owned, in_progress = ctx.owned()
    slugs = _slugs()
    for key, versions in ctx.listing().items():
        if owner_of(key, owned, in_progress) is not None:
            continue
        newest = max(v.modified for v in versions)
        if newest > ctx.now - ctx.grace:
            continue  # a write under way, or its record about to be committed
        note = _orphan_note(key)
        yield Violation("store.objects_owned", f"object {key}",
                        f"objet sans propriétaire vivant et licite ({len(versions)} version(s))"
                        + (f" : {note}" if note else ""), since=newest, organisation_id=_org_of_key(key, slugs))


# --- 2. What is kept is in the store (bytes never deleted without an erasure entry) -----------------

def check_store_objects_present(ctx: AuditContext) -> Iterator[Violation]:
    from evidence.models import Recording

    owned, _ = ctx.owned()
    listing = ctx.listing()
    since: dict[int, dt.datetime] = {}
    for key, owner in owned.items():
        if not owner.must_exist or key in listing:
            continue
        if owner.kind in ("recording", "derivative") and owner.ident not in since:
            since.update(Recording.objects.filter(pk=owner.ident).values_list("pk", "verified_at"))
        yield Violation("store.objects_present", f"{owner.kind} {owner.ident}",
                        f"l'objet {key} n'est plus dans le stockage, sans effacement journalisé",
                        since=since.get(owner.ident) if owner.kind in ("recording", "derivative") else None,
                        organisation_id=owner.organisation_id)


# --- 3. Locks and legal holds agree with the database, object by object --------------------------

def check_store_locks_and_holds(ctx: AuditContext) -> Iterator[Violation]:
    from evidence.integrations.store import StoreError

    owned, _ = ctx.owned()
    listing = ctx.listing()
    todo = [(key, owner) for key, owner in owned.items()
            if owner.must_exist and key in listing and (owner.retain_until is not None or owner.held is not None)]

    def head(item):
        key, owner = item
        versions = listing[key]
        try:
            return key, owner, [ctx.store.head(key, v.version_id) for v in versions], None
        except StoreError as exc:
            return key, owner, None, exc

    workers = 8 if getattr(ctx.store, "client", None) is not None else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(head, todo, chunksize=64) if workers > 1 else map(head, todo)
        for key, owner, infos, error in results:
            ctx.heads_checked += 1
            if error is not None:
                raise CouldNotLook(f"the store could not be read ({key}): {error}")
            subject = f"{owner.kind} {owner.ident}"
            for info in infos:
                if owner.retain_until is not None and (
                        info.mode != "COMPLIANCE" or info.retain_until is None or info.retain_until < owner.retain_until):
                    yield Violation("store.locked", subject,
                                    f"{key} n'est pas verrouillé (COMPLIANCE) jusqu'au {owner.retain_until:%d/%m/%Y %H:%M} "
                                    f"(verrou : {info.mode or 'aucun'} {info.retain_until or ''})",
                                    since=owner.retain_until, organisation_id=owner.organisation_id)
                if owner.held is not None and info.legal_hold != owner.held:
                    yield Violation("holds.store_agrees", subject,
                                    f"{key} : gel juridique du stockage {'actif' if info.legal_hold else 'absent'} alors "
                                    f"que la base {'conserve' if owner.held else 'ne conserve pas'} cet enregistrement "
                                    f"pour une procédure", organisation_id=owner.organisation_id)


# --- 4. No recording kept past its end without a hold; erasures finish -------------------------------

def check_retention_not_overdue(ctx: AuditContext) -> Iterator[Violation]:
    from evidence.models import Recording
    from evidence.retention.holds import active_holds_q
    from evidence.retention.sweep import STUCK_RECEIVING_AFTER

    from django.db.models import Max

    late = ctx.now - ctx.grace
    # Due since its end, or since the release of the last hold that kept it past its end.
    overdue = (Recording.objects.filter(retain_until__lt=late)
               .exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING])
               .exclude(active_holds_q()).annotate(released=Max("covering_holds__released_at"))
               .values_list("pk", "organisation_id", "retain_until", "status", "released"))
    for pk, org, until, status, released in overdue.iterator(chunk_size=2000):
        since = max(until, released) if released else until
        if since >= late:
            continue
        yield Violation("retention.not_overdue", f"recording {pk}",
                        f"conservé au-delà de sa date d'effacement sans conservation pour procédure (statut {status})",
                        since=since, organisation_id=org)
    # Training packages live under their own rule (LEGAL.md rule 6), and no longer.
    from evidence.disclosure.models import Export, ExportPurpose

    for pk, org, until in (Export.objects.filter(purpose=ExportPurpose.TRAINING, retain_until__lt=late,
                                                 status=Export.Status.READY)
                           .values_list("pk", "organisation_id", "retain_until")):
        yield Violation("retention.not_overdue", f"export {pk}",
                        "package de formation conservé au-delà de sa propre durée de conservation",
                        since=until, organisation_id=org)
    stuck = Recording.objects.filter(status=Recording.Status.RECEIVING,
                                     ingested_at__lt=late - STUCK_RECEIVING_AFTER)
    for pk, org, started in stuck.values_list("pk", "organisation_id", "ingested_at"):
        yield Violation("retention.not_overdue", f"recording {pk}",
                        "collecte interrompue jamais réglée (reste « réception en cours »)",
                        since=started, organisation_id=org)


def check_retention_regime(ctx: AuditContext) -> Iterator[Violation]:
    """Videoprotection images are kept no longer than their regime allows (CSI L252-5): the period
    of the partner's authorisation (at most one month) from the images' time, or the few days
    given at receipt for a hold (evidence/retention/regimes.py); a hold keeps them for its procedure."""
    from django.conf import settings as dj_settings

    from evidence.models import Recording
    from evidence.requisitions.models import RequisitionUpload
    from evidence.retention import RetentionRefused
    from evidence.retention.holds import active_holds_q
    from evidence.retention.regimes import VIDEOPROTECTION_MAX, videoprotection_retention_decide
    from evidence.sources import Regime

    gone = [Recording.Status.ERASED, Recording.Status.ERASING]
    held = Recording.objects.filter(active_holds_q())
    rows = list(RequisitionUpload.objects.filter(recording__regime=Regime.VIDEOPROTECTION)
                .exclude(recording__status__in=gone).exclude(recording__in=held)
                .values_list("recording_id", "recording__organisation_id", "recording__organisation__time_zone",
                             "recording__retain_until", "recording__ingested_at", "requisition__period_start",
                             "requisition__retention").iterator(chunk_size=2000))
    # The clips unpacked from a partner's export bundle: the bundle's regime, counted from its receipt.
    uploads = {pk: (images_from, period) for pk, images_from, period in RequisitionUpload.objects.filter(
        recording__regime=Regime.VIDEOPROTECTION).values_list("recording_id", "requisition__period_start",
                                                              "requisition__retention")}
    members = (Recording.objects.filter(bundle_id__in=list(uploads), regime=Regime.VIDEOPROTECTION)
               .exclude(status__in=gone).exclude(pk__in=held.values("pk"))
               .values_list("pk", "organisation_id", "organisation__time_zone", "retain_until", "bundle__ingested_at",
                            "bundle_id"))
    rows += [(pk, org, tz, until, received, *uploads[bundle]) for pk, org, tz, until, received, bundle
             in members.iterator(chunk_size=2000)]
    for pk, org, tz, until, received, images_from, period in rows:
        try:
            lawful = videoprotection_retention_decide(
                images_from=images_from, received_at=received, period=period or VIDEOPROTECTION_MAX, time_zone=tz,
                grace=dj_settings.TEMOIN_LATE_DOCKING_GRACE).retain_until
        except (ValueError, RetentionRefused):
            lawful = None  # a declared period the law refuses: everything past receipt is too long
        lawful = received if lawful is None else lawful
        # Kept past the regime's end: its end lies beyond the lawful one, which has now passed.
        if until > lawful + ctx.grace and lawful < ctx.now - ctx.grace:
            yield Violation("retention.regime", f"recording {pk}",
                            f"images de vidéoprotection conservées jusqu'au {until:%d/%m/%Y %H:%M}, au-delà de la "
                            f"fin de leur régime ({lawful:%d/%m/%Y %H:%M}, durée {period or VIDEOPROTECTION_MAX}, "
                            f"CSI L252-5) sans conservation pour procédure",
                            since=lawful, organisation_id=org)


def check_erasure_logged(ctx: AuditContext) -> Iterator[Violation]:
    from audit.models import CustodyEvent
    from evidence.disclosure.models import Export
    from evidence.models import Recording

    late = ctx.now - ctx.grace
    log_start = CustodyEvent.objects.order_by("seq").values_list("occurred_at", flat=True).first()
    erased_event = CustodyEvent.objects.filter(action="recording.erased", recording_id=OuterRef("pk"))
    started_event = CustodyEvent.objects.filter(action="recording.erasure_started", recording_id=OuterRef("pk"))
    missing = (Recording.objects.filter(status=Recording.Status.ERASED).exclude(Exists(erased_event))
               .values_list("pk", "organisation_id", "erased_at"))
    for pk, org, erased_at in missing.iterator(chunk_size=2000):
        if log_start is not None and erased_at is not None and erased_at < log_start:
            continue  # erased before the log's oldest entry (purged after three years)
        yield Violation("erasure.logged", f"recording {pk}", "effacé sans entrée « effacement » au journal",
                        since=erased_at, organisation_id=org)
    for pk, org, started, message, has_intent in (
            Recording.objects.filter(status=Recording.Status.ERASING).annotate(intent=Exists(started_event))
            .values_list("pk", "organisation_id", "erasure_started_at", "status_message", "intent")):
        if not has_intent:
            yield Violation("erasure.logged", f"recording {pk}", "effacement en cours sans intention au journal",
                            since=started, organisation_id=org)
        if started is not None and started < late:
            yield Violation("erasure.logged", f"recording {pk}",
                            "effacement commencé mais pas achevé" + (f" : {message}" if message else ""),
                            since=started, organisation_id=org)
    # The log never says "erased" of a recording that is still here.
    alive = (CustodyEvent.objects.filter(action="recording.erased")
             .exclude(recording__status=Recording.Status.ERASED).exclude(recording__isnull=True)
             .values_list("seq", "recording_id", "organisation_id", "occurred_at"))
    for seq, rec, org, at in alive:
        if Recording.objects.filter(pk=rec).exists():
            yield Violation("erasure.logged", f"recording {rec}",
                            f"le journal dit effacé (entrée n° {seq}) mais l'enregistrement est toujours là",
                            since=at, organisation_id=org)
    export_erased = CustodyEvent.objects.filter(action="export.erased", subject_type="disclosure.export",
                                                subject_id=OuterRef("pk_text"))
    from django.db.models.functions import Cast
    from django.db.models import CharField

    exports = (Export.objects.filter(status__in=[Export.Status.ERASED, Export.Status.ERASING])
               .annotate(pk_text=Cast("pk", CharField())).annotate(done=Exists(export_erased))
               .values_list("pk", "organisation_id", "status", "erased_at", "erasure_started_at", "done", "store_key"))
    for pk, org, status, erased_at, started, done, key in exports:
        if status == Export.Status.ERASED and not done and not (log_start and erased_at and erased_at < log_start):
            yield Violation("erasure.logged", f"export {pk}", "export effacé sans entrée « export effacé » au journal",
                            since=erased_at, organisation_id=org)
        if status == Export.Status.ERASING and started is not None and started < late:
            # A package sent in parts may carry the bucket's default lock (a day on Ceph RGW and
            # MinIO), later than its recordings' end: it goes when that lock ends.
            lock_end = _lock_end(ctx, key)
            since = max(started, lock_end) if lock_end else started
            if since < late:
                yield Violation("erasure.logged", f"export {pk}", "effacement de l'export commencé mais pas achevé",
                                since=since, organisation_id=org)


def _lock_end(ctx: AuditContext, key: str) -> dt.datetime | None:
    from evidence.integrations.store import ObjectMissing, StoreError

    if not key:
        return None
    try:
        return ctx.store.head(key).retain_until
    except ObjectMissing:
        return None
    except StoreError as exc:
        raise CouldNotLook(f"the store could not be read ({key}): {exc}") from exc


# --- 5. Every consultation, extraction, communication has author, time, motif, recipients ------------

def check_traceability_logged(ctx: AuditContext) -> Iterator[Violation]:
    from audit.models import CustodyEvent
    from evidence.disclosure.models import Export, Extraction, Share
    from evidence.models import Consultation

    log_start = CustodyEvent.objects.order_by("seq").values_list("occurred_at", flat=True).first()
    if log_start is None:
        return

    def logged(action: str, key: str) -> set[str]:
        return set(CustodyEvent.objects.filter(action=action).annotate(ref=KT(f"details__{key}"))
                   .exclude(ref__isnull=True).values_list("ref", flat=True))

    rows = [
        ("consultation", Consultation.objects.filter(created_at__gte=log_start)
         .values_list("pk", "recording__organisation_id", "created_at"), logged("recording.consulted", "consultation")),
        ("extraction", Extraction.objects.filter(created_at__gte=log_start)
         .values_list("pk", "organisation_id", "created_at"), logged("recording.extracted", "extraction")),
        ("export", Export.objects.filter(created_at__gte=log_start)
         .values_list("pk", "organisation_id", "created_at"), logged("export.created", "export")),
        ("share", Share.objects.filter(created_at__gte=log_start)
         .values_list("pk", "export__organisation_id", "created_at"), logged("share.created", "share")),
    ]
    for kind, qs, refs in rows:
        for pk, org, created in qs.iterator(chunk_size=2000):
            if str(pk) not in refs:
                yield Violation("traceability.logged", f"{kind} {pk}",
                                f"{kind} sans son entrée au journal (auteur, date, motif, destinataires)",
                                since=created, organisation_id=org)
    # The entries themselves carry what R241-14 requires.
    # A hold states its procedure and reference (its reason); its release states a motif.
    needs_motif = ["recording.consulted", "recording.extracted", "export.created", "share.created", "hold.released"]
    needs_recipients = ["recording.consulted", "recording.extracted", "export.created", "share.created",
                        "share.downloaded", "export.downloaded", "extraction.downloaded"]
    for seq, action, org, at in (CustodyEvent.objects.filter(action__in=needs_motif, motif="")
                                 .values_list("seq", "action", "organisation_id", "occurred_at")):
        yield Violation("traceability.logged", f"custody entry {seq}", f"« {action} » sans motif",
                        since=at, organisation_id=org)
    for seq, action, org, at in (CustodyEvent.objects.filter(action__in=needs_recipients, recipients=[])
                                 .values_list("seq", "action", "organisation_id", "occurred_at")):
        yield Violation("traceability.logged", f"custody entry {seq}", f"« {action} » sans destinataire",
                        since=at, organisation_id=org)
    for seq, action, org, at in (CustodyEvent.objects.filter(action__in=needs_motif + needs_recipients,
                                                             actor_label="")
                                 .values_list("seq", "action", "organisation_id", "occurred_at")):
        yield Violation("traceability.logged", f"custody entry {seq}", f"« {action} » sans auteur",
                        since=at, organisation_id=org)


# --- 6. Traces older than three years are gone, younger ones are there -------------------------------

def check_traceability_three_years(ctx: AuditContext) -> Iterator[Violation]:
    from dateutil.relativedelta import relativedelta

    from audit.models import Checkpoint, CustodyEvent
    from evidence.retention.declarants import declarants_kept_past
    from evidence.retention.traceability import traceability_cutoff, traceability_overdue

    # The purge runs daily: a day and the grace before a row kept too long is a violation.
    grace = dt.timedelta(days=1) + ctx.grace
    cutoff = traceability_cutoff(ctx.now) - grace
    old = CustodyEvent.objects.filter(occurred_at__lt=cutoff)
    first = old.order_by("seq").values_list("seq", "occurred_at").first()
    if first is not None:
        yield Violation("traceability.three_years", f"custody entries from {first[0]}",
                        f"{old.count()} entrée(s) du journal de plus de {settings.CUSTODY_RETENTION_YEARS} ans non purgées",
                        since=first[1] + relativedelta(years=settings.CUSTODY_RETENTION_YEARS))
    # Issue 22: a partner's declarant, three years after the last entry naming them (evidence/retention/declarants.py).
    declarants = ("requisition_declarant", declarants_kept_past(before=cutoff, now=ctx.now), "last_entry")
    for kind, qs, date_field in [*traceability_overdue(now=ctx.now, grace=grace), declarants]:
        org_field = {"consultation": "recording__organisation_id", "share": "export__organisation_id",
                     "requisition_declarant": "requisition__organisation_id"}.get(kind, "organisation_id")
        for pk, org, date in qs.values_list("pk", org_field, date_field)[:1000]:
            yield Violation("traceability.three_years", f"{kind} {pk}",
                            f"{kind} de plus de {settings.CUSTODY_RETENTION_YEARS} ans non purgé(e)",
                            since=date + relativedelta(years=settings.CUSTODY_RETENTION_YEARS), organisation_id=org)
    # Younger is there: no purge ever removed entries younger than the retention period.
    for cp in Checkpoint.objects.filter(purge_through_seq__isnull=False).order_by("seq"):
        limit = cp.created_at - relativedelta(years=settings.CUSTODY_RETENTION_YEARS) + dt.timedelta(minutes=5)
        if cp.purge_before is None or cp.purge_before > limit:
            yield Violation("traceability.three_years", f"checkpoint {cp.seq}",
                            f"purge jusqu'à l'entrée n° {cp.purge_through_seq} d'entrées de moins de "
                            f"{settings.CUSTODY_RETENTION_YEARS} ans (avant le {cp.purge_before})",
                            since=cp.created_at)


# --- 7. The custody chain verifies --------------------------------------------------------------------

def check_custody_chain(ctx: AuditContext) -> Iterator[Violation]:
    from audit.verification import verify_chain

    report = verify_chain()
    if not report.ok:
        first = report.first_problem
        yield Violation("custody.chain", f"custody entry {first.seq}" if first and first.seq else "custody log",
                        f"journal de traçabilité non intègre : {first.label if first else ''} {first.message if first else ''}"
                        .strip(), since=None)


# --- 8. Each organisation's periods are the law's -----------------------------------------------------

def check_policy_lawful(ctx: AuditContext) -> Iterator[Violation]:
    from accounts.models import Jurisdiction, Organisation
    from evidence.retention.policy import FRENCH_PERIOD

    for pk, slug, retention in (Organisation.objects.filter(jurisdiction=Jurisdiction.FRANCE)
                                .exclude(retention=FRENCH_PERIOD).values_list("pk", "slug", "retention")):
        yield Violation("policy.lawful", f"organisation {slug}",
                        f"durée de conservation {retention} au lieu de {FRENCH_PERIOD} (CSI L241-2, R241-13)",
                        organisation_id=pk)
    if settings.CUSTODY_RETENTION_YEARS != 3:
        for pk, slug in Organisation.objects.filter(jurisdiction=Jurisdiction.FRANCE).values_list("pk", "slug"):
            yield Violation("policy.lawful", f"organisation {slug}",
                            f"journal conservé {settings.CUSTODY_RETENTION_YEARS} ans au lieu de trois (CSI R241-14)",
                            organisation_id=pk)


# Titles stay French in the signed report; the page and the PDF translate them for an English reader.
INVARIANTS: list[Invariant] = [
    Invariant("store.objects_owned",
              gettext_noop("Tout objet du stockage appartient à un enregistrement conservé, à une copie de celui-ci, "
                           "à un export dont tous les enregistrements sont conservés, à un point de contrôle signé"),
              "CSI L241-2, R241-13", check_store_objects_owned, "evidence/retention/owners.py (objects_owned)"),
    Invariant("store.objects_present",
              gettext_noop("Ce qui est conservé est dans le stockage : aucun octet supprimé sans effacement "
                           "journalisé"),
              "CSI R241-11 V, R241-14", check_store_objects_present, "evidence/retention/sweep.py (two-phase erasure)"),
    Invariant("store.locked",
              gettext_noop("Chaque objet conservé est verrouillé (COMPLIANCE) au moins jusqu'à sa date d'effacement"),
              "CSI R241-11 V", check_store_locks_and_holds, "evidence/integrations/store.py, s3.py"),
    Invariant("holds.store_agrees",
              gettext_noop("Les conservations pour procédure de la base et les gels juridiques du stockage "
                           "concordent, objet par objet"),
              "CSI L241-2, R241-13", check_store_locks_and_holds, "evidence/retention/holds.py"),
    Invariant("retention.not_overdue",
              gettext_noop("Aucun enregistrement n'est conservé au-delà de sa date d'effacement sans conservation "
                           "pour procédure"),
              "CSI L241-2, R241-13", check_retention_not_overdue, "evidence/retention/sweep.py (retention_sweep)"),
    Invariant("retention.regime",
              gettext_noop("Les images de vidéoprotection ne sont pas conservées au-delà de la durée de "
                           "l'autorisation préfectorale (un mois au plus) sans conservation pour procédure"),
              "CSI L252-5", check_retention_regime, "evidence/retention/regimes.py"),
    Invariant("erasure.logged",
              gettext_noop("Chaque effacement a son intention et son achèvement au journal, et s'achève"),
              "CSI R241-13, R241-14", check_erasure_logged, "evidence/retention/sweep.py"),
    Invariant("traceability.logged",
              gettext_noop("Chaque consultation, extraction et communication a son auteur, sa date, son motif et ses "
                           "destinataires au journal"),
              "CSI R241-14, LIL art. 101", check_traceability_logged,
              "audit/services.py (custody_event_append), evidence/access/services.py (consultation_open), evidence/disclosure/services.py"),
    Invariant("traceability.three_years",
              gettext_noop("Les traces de plus de trois ans sont purgées, les plus récentes sont là"),
              "CSI R241-14", check_traceability_three_years,
              "audit/services.py (custody_purge), evidence/retention/traceability.py"),
    Invariant("custody.chain",
              gettext_noop("Le journal de traçabilité est intègre (chaîne d'empreintes et points de contrôle "
                           "signés)"),
              "CSI R241-14, LIL art. 101", check_custody_chain, "audit/verification.py (verify_chain)"),
    Invariant("policy.lawful", gettext_noop("Les durées de conservation de chaque organisation sont celles de la loi"),
              "CSI L241-2, R241-13, R241-14", check_policy_lawful, "evidence/retention/policy.py, config/checks.py"),
]
