"""Deadline reminders of access requests, e-mailed to the organisation's DPO(s) once a day.

GDPR art. 12(3): a data subject's request is answered within one month of receipt, extendable by
two further months (evidence/disclosure/access_requests.py sets ``AccessRequest.deadline``). Each
open request is reminded when its deadline is seven days away or less, two days away or less, and
once it has passed: each (request, threshold, deadline) at most once, recorded in
AccessRequestReminder and in the custody log in the same transaction as the e-mail is sent. An
extension moves the deadline, so the reminders start again for the new one.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Organisation, Role, User
from accounts.selectors import user_language
from audit.services import custody_events_append_many

from .models import AccessRequest, AccessRequestReminder

log = logging.getLogger(__name__)

Threshold = AccessRequestReminder.Threshold
# Days left (deadline minus today) at or below which a threshold is reached, most urgent first.
THRESHOLDS = ((Threshold.OVERDUE, -1), (Threshold.DAYS_2, 2), (Threshold.DAYS_7, 7))
HEADINGS = {
    Threshold.OVERDUE: gettext_lazy("Échéance dépassée"),
    Threshold.DAYS_2: gettext_lazy("Échéance dans 2 jours au plus"),
    Threshold.DAYS_7: gettext_lazy("Échéance dans 7 jours au plus"),
}


def access_request_threshold(*, deadline: dt.date, today: dt.date) -> str | None:
    """The most urgent threshold a deadline has reached on ``today``, or None when it is far off."""
    days_left = (deadline - today).days
    for threshold, at_most in THRESHOLDS:
        if days_left <= at_most:
            return threshold
    return None


def organisation_today(organisation: Organisation, now: dt.datetime) -> dt.date:
    """The organisation's own calendar day: deadlines are dates in the commune's time zone."""
    try:
        zone = ZoneInfo(organisation.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo(settings.TIME_ZONE)
    return timezone.localtime(now, zone).date()


@dataclass(frozen=True)
class DueReminder:
    access_request: AccessRequest
    threshold: str
    days_left: int


def access_request_reminders_due(*, organisation: Organisation, today: dt.date,
                                 lock: bool = False) -> list[DueReminder]:
    """Open requests of the organisation that reached a threshold not yet reminded, nearest first
    (``lock``: their rows locked until the caller's transaction ends)."""
    horizon = today + dt.timedelta(days=THRESHOLDS[-1][1])
    open_requests = AccessRequest.objects.filter(organisation=organisation, closed_at__isnull=True,
                                                 deadline__lte=horizon).order_by("deadline", "id")
    if lock:
        open_requests = open_requests.select_for_update()
    # Read after the lock: a run that held it has recorded its reminders by then.
    open_requests = list(open_requests)
    sent = set(AccessRequestReminder.objects.filter(access_request__organisation=organisation)
               .values_list("access_request_id", "threshold", "deadline"))
    due = []
    for request in open_requests:
        threshold = access_request_threshold(deadline=request.deadline, today=today)
        if threshold and (request.pk, threshold, request.deadline) not in sent:
            due.append(DueReminder(request, threshold, (request.deadline - today).days))
    return due


def dpo_recipients(*, organisation: Organisation) -> list[User]:
    """The organisation's active DPO(s) with an e-mail address."""
    return list(User.objects.filter(organisation=organisation, role=Role.DPO, is_active=True)
                .exclude(email="").order_by("username"))


def _link(request: AccessRequest) -> str:
    path = reverse("access-request-detail", args=[request.pk])
    base = (getattr(settings, "TEMOIN_PUBLIC_URL", "") or "").rstrip("/")
    return f"{base}{path}"


def _body(organisation: Organisation, due: list[DueReminder], today: dt.date) -> str:
    """The reminder in the active language (the recipient's: see access_request_reminders_send)."""
    # GDPR art. 5(1)(c): the e-mail leaves Témoin, so it names no requester; the link opens the request.
    lines = [_("Demandes d'accès de %(organisation)s à traiter (RGPD art. 12(3) : réponse dans le mois de la "
               "réception, prolongeable de deux mois), au %(today)s :")
             % {"organisation": organisation.name, "today": f"{today:%d/%m/%Y}"}, ""]
    for threshold, _at_most in THRESHOLDS:
        group = [d for d in due if d.threshold == threshold]
        if not group:
            continue
        lines.append(_("%(heading)s (%(n)s) :") % {"heading": HEADINGS[threshold], "n": len(group)})
        for d in group:
            r = d.access_request
            when = (_("dépassée de %(n)s jour(s)") % {"n": -d.days_left} if d.days_left < 0
                    else _("aujourd'hui") if d.days_left == 0 else _("dans %(n)s jour(s)") % {"n": d.days_left})
            lines.append(_("- demande n° %(n)s, reçue le %(received)s, échéance le %(deadline)s (%(when)s%(extended)s) "
                           ": %(link)s") % {
                "n": r.pk, "received": f"{r.received_on:%d/%m/%Y}", "deadline": f"{r.deadline:%d/%m/%Y}",
                "when": when, "extended": _(", prolongée") if r.extended else "", "link": _link(r)})
        lines.append("")
    lines.append(_("Ce rappel n'est envoyé qu'une fois par seuil (7 jours, 2 jours, échéance dépassée)."))
    return "\n".join(lines)


def access_request_reminders_send(*, now: dt.datetime | None = None, today: dt.date | None = None) -> int:
    """E-mail each DPO the reminders due in their organisation; returns the number of e-mails sent.

    ``today`` overrides the organisations' own calendar day (tests move the clock with it). An
    organisation without a DPO e-mail address is logged and reminded later, once one is set. The
    e-mails are sent inside the transaction that records them: if sending fails, nothing is
    recorded and the next run tries again (at worst a reminder is sent twice, never lost).
    """
    now = now or timezone.now()
    sent = 0
    for organisation in Organisation.objects.order_by("pk"):
        day = today or organisation_today(organisation, now)
        with transaction.atomic():
            # Two runs at once (a beat restarted mid-run) serialise on the rows' lock; the second sees the
            # first's reminders.
            due = access_request_reminders_due(organisation=organisation, today=day, lock=True)
            if not due:
                continue
            recipients = dpo_recipients(organisation=organisation)
            if not recipients:
                log.warning("access-request reminders: %s has %d reminder(s) due and no DPO with an e-mail address",
                            organisation.slug, len(due))
                continue
            addresses = [u.email for u in recipients]
            AccessRequestReminder.objects.bulk_create(
                AccessRequestReminder(access_request=d.access_request, threshold=d.threshold,
                                      deadline=d.access_request.deadline, recipients=addresses, sent_at=now)
                for d in due)
            custody_events_append_many([dict(
                action="access_request.reminder_sent", subject=d.access_request, organisation=organisation,
                actor_label="system:beat", recipients=addresses,
                details={"threshold": d.threshold, "deadline": d.access_request.deadline.isoformat(),
                         "days_left": d.days_left},
            ) for d in due], now=now)
            # One e-mail per DPO (no DPO learns another's address), in the DPO's language.
            messages = []
            for user in recipients:
                with translation.override(user_language(user)):
                    subject = _("[Témoin] %(n)s demande(s) d'accès à échéance — %(organisation)s") % {
                        "n": len(due), "organisation": organisation.name}
                    messages.append(EmailMessage(subject, _body(organisation, due, day), settings.DEFAULT_FROM_EMAIL,
                                                 [user.email]))
            get_connection(fail_silently=False).send_messages(messages)
            sent += len(messages)
            log.info("access-request reminders: %s, %d request(s) (%s), e-mailed to %d DPO(s)", organisation.slug,
                     len(due), ", ".join(f"n° {d.access_request.pk} {d.threshold}" for d in due), len(addresses))
    return sent
