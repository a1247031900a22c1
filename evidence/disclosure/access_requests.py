"""Data-subject access requests (CSI R241-15, LIL art. 105 and 107, GDPR art. 12(3) and 15): the
DPO registers the request, searches the recordings that may show the person, decides (a refusal or a
restriction states its legal ground), hands over a copy with the other people blurred, and records
the delivery, within one month of receipt (extendable once by two months, with a notice given in the
first month). Each step is logged in the same transaction (CSI R241-14).

Each recording falls under its legal regime (issue 22): body-worn images under CSI R241-15 and LIL
art. 105 and 107 (a right exercised with the maire, restricted on the grounds of LIL 107 II);
videoprotection images a partner handed over under CSI L253-5 (access "de droit", refused only for
State security, defence, public security, the course of court proceedings or operations preparing
them, or the rights of third parties). The search, the selection and the decision log the regime
of each recording and the legal basis that follows; the deadline is GDPR art. 12(3) for both."""
from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.utils.translation import gettext_noop

from accounts.models import User
from audit.services import custody_event_append
from evidence.models import Recording
from evidence.sources import Regime

from .models import AccessRequest, Export, ExportPurpose, LegalGround, Redaction
from .selectors import ACCESS_REQUEST_HANDLERS
from .services import DisclosureError, _text, export_create

# Messages the API's serializers give too, for the same missing field (one wording).
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


# The legal basis of the right of access, by regime (stored in the log in French; shown translated).
REGIME_BASIS = {
    Regime.BODY_WORN: gettext_noop("CSI R241-15, LIL art. 105 et 107"),
    Regime.VIDEOPROTECTION: gettext_noop("CSI L253-5"),
}
# CSI L253-5: the grounds on which access to videoprotection images may be refused. LIL 107 II 2°
# (prevention and detection of offences) is not among them. Logged in French; shown translated.
L253_5_GROUNDS = {
    LegalGround.INQUIRIES: gettext_noop("déroulement de procédures engagées devant les juridictions ou "
                                        "d'opérations préparatoires à de telles procédures (CSI L253-5)"),
    LegalGround.PUBLIC_SECURITY: gettext_noop("sécurité publique (CSI L253-5)"),
    LegalGround.NATIONAL_SECURITY: gettext_noop("sûreté de l'État, défense (CSI L253-5)"),
    LegalGround.OTHERS_RIGHTS: gettext_noop("droit des tiers (CSI L253-5)"),
}


def recordings_regimes(ids) -> dict[str, list[int]]:
    """The recordings ``ids`` by legal regime: {"body_worn": [...], "videoprotection": [...]}."""
    out: dict[str, list[int]] = {}
    for pk, regime in Recording.objects.filter(pk__in=list(ids)).order_by("pk").values_list("pk", "regime"):
        out.setdefault(regime, []).append(pk)
    return out


def access_request_legal_basis(request: AccessRequest, *, translated: bool = False) -> str:
    """The articles the reply rests on, from the regimes of the selected recordings (French, as logged
    and in the API; ``translated`` in the reader's language, for the page)."""
    # .all(): the API's list prefetches the recordings (one query for any number of requests).
    regimes = {rec.regime for rec in request.recordings.all()} or {Regime.BODY_WORN}
    words = _ if translated else str
    return " ; ".join(words(REGIME_BASIS[Regime(r)]) for r in sorted(regimes))


def _ground_label(ground: str, regimes) -> str:
    # CSI L253-5's own words for videoprotection images, LIL 107 II's for body-worn ones; both when
    # the selection mixes them (the restriction must then hold under each).
    if Regime.VIDEOPROTECTION in regimes and ground in L253_5_GROUNDS:
        basis = _(L253_5_GROUNDS[ground])
        if Regime.BODY_WORN in regimes:
            return f"{LegalGround(ground).label} ; {basis}"
        return basis
    return str(LegalGround(ground).label)


def access_request_ground_text(request: AccessRequest) -> str:
    """The wording of a restriction's ground under the regime of what was selected: CSI L253-5's
    own words when videoprotection images are among them, LIL 107 II's otherwise."""
    if not request.legal_ground:
        return ""
    return _ground_label(request.legal_ground, recordings_regimes(request.recordings.values_list("pk", flat=True)))


def access_request_grounds(request: AccessRequest) -> tuple[str, list[tuple[str, str]]]:
    """The grounds the decision may rest on, worded by the regime of the selected recordings, and
    the article they come from: LIL art. 107 II for body-worn images (or when nothing is selected
    yet, as access_request_legal_basis); only CSI L253-5's grounds once videoprotection images are
    selected (their access is "de droit": LIL 107 II 2° is not one of them)."""
    regimes = recordings_regimes(request.recordings.values_list("pk", flat=True))
    if Regime.VIDEOPROTECTION not in regimes:
        return _("LIL art. 107 II"), [(g.value, str(g.label)) for g in LegalGround]
    basis = _("CSI L253-5") if Regime.BODY_WORN not in regimes else _("LIL art. 107 II et CSI L253-5")
    return basis, [(g, _ground_label(g, regimes)) for g in LegalGround.values if g in L253_5_GROUNDS]


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
                  details={"access_request": request.pk, "criteria": criteria, "found": found[:500],
                           "regimes": recordings_regimes(found[:500])})


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
                           "added": sorted(after - before), "removed": sorted(before - after),
                           "regimes": recordings_regimes(after)})
    return request


def access_request_decide(*, request: AccessRequest, by: User, decision: str, legal_ground: str = "",
                          note: str = "", now: dt.datetime | None = None) -> AccessRequest:
    """Full, partial or refused; a restriction or refusal states its ground (LIL art. 107 II for
    body-worn images, CSI L253-5 once videoprotection images are selected)."""
    _handler(by)
    now = now or timezone.now()
    if decision not in AccessRequest.Decision.values:
        raise DisclosureError(DECISION, "decision")
    legal_ground = legal_ground or ""
    if decision == AccessRequest.Decision.FULL:
        legal_ground = ""
    with transaction.atomic():
        request = _open(request)
        regimes = recordings_regimes(request.recordings.values_list("pk", flat=True))
        if decision != AccessRequest.Decision.FULL and legal_ground not in LegalGround.values:
            basis, _choices = access_request_grounds(request)
            raise DisclosureError(_("Une communication partielle ou un refus indique son fondement légal "
                                    "(%(basis)s).") % {"basis": basis}, "legal_ground")
        if decision != AccessRequest.Decision.REFUSED and not regimes:
            raise DisclosureError(_("Aucun enregistrement retenu : sélectionnez les enregistrements concernés, ou "
                                    "répondez par un refus motivé."), "decision")
        if legal_ground and Regime.VIDEOPROTECTION in regimes and legal_ground not in L253_5_GROUNDS:
            # CSI L253-5: access to videoprotection images is of right, save for its own grounds.
            raise DisclosureError(_("L'accès aux images de vidéoprotection est de droit (CSI L253-5) : il ne peut "
                                    "être restreint que pour la sûreté de l'État, la défense, la sécurité "
                                    "publique, le déroulement de procédures juridictionnelles ou le droit des "
                                    "tiers."), "legal_ground")
        request.decision, request.legal_ground = decision, legal_ground
        request.decision_note, request.decided_at, request.decided_by = (note or "").strip()[:5000], now, by
        request.save(update_fields=["decision", "legal_ground", "decision_note", "decided_at", "decided_by"])
        _ar_event(request, "access_request.decided", by, now, motif=request.decision_note,
                  details={"access_request": request.pk, "decision": decision, "legal_ground": legal_ground or None,
                           "recordings": sorted(request.recordings.values_list("pk", flat=True)),
                           "regimes": regimes, "legal_basis": access_request_legal_basis(request),
                           "ground_l253_5": (L253_5_GROUNDS.get(legal_ground)
                                             if legal_ground and Regime.VIDEOPROTECTION in regimes else None)})
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
                         motif=_("Demande d'accès n° %(n)s (%(basis)s)") % {
                             "n": request.pk, "basis": access_request_legal_basis(request)},
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
