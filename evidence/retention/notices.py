"""Erasures announced in advance (LEGAL.md rule 4, CSI R241-13; "deletions visible in advance").

The daily notice tells supervisors what will be erased in the next hours, untagged first, so that
a recording used in a procedure is held before its end.
"""
from __future__ import annotations

import datetime as dt

from django.utils import timezone

from accounts.models import Organisation, User

from ..models import Recording
from .holds import active_holds_q
from .sweep import recordings_due_for_erasure


def retention_notice_send(*, now: dt.datetime | None = None, hours: int = 72) -> int:
    """Daily notice to supervisors: what will be erased in the next ``hours``, untagged first.

    Returns the number of messages sent. Deletions must be visible in advance (LEGAL.md: evidence
    auto-deleted because it was mis-tagged is the failure to avoid).
    """
    from django.core.mail import send_mass_mail

    now = now or timezone.now()
    messages = []
    for org in Organisation.objects.all():
        upcoming = list(recordings_due_for_erasure(now=now + dt.timedelta(hours=hours), organisation=org)
                        .exclude(pk__in=Recording.objects.filter(active_holds_q()).values("pk"))
                        .select_related("camera", "wearer").order_by("retain_until"))
        if not upcoming:
            continue
        to_complete = [r for r in upcoming if r.to_complete]
        lines = [f"{len(upcoming)} enregistrement(s) seront effacés dans les {hours} prochaines heures "
                 f"(CSI R241-13), dont {len(to_complete)} non qualifiés :", ""]
        for r in sorted(upcoming, key=lambda r: (not r.to_complete, r.retain_until)):
            mark = "À COMPLÉTER " if r.to_complete else ""
            lines.append(f"- {mark}n° {r.pk}, caméra {r.camera.serial}, "
                         f"{timezone.localtime(r.started_at):%d/%m/%Y %H:%M} — effacement le "
                         f"{timezone.localtime(r.retain_until):%d/%m/%Y %H:%M}")
        lines += ["", "Pour conserver un enregistrement utilisé dans une procédure, placez une conservation "
                      "pour procédure avant cette date."]
        recipients = list(User.objects.filter(organisation=org, role="supervisor", is_active=True)
                          .exclude(email="").values_list("email", flat=True))
        if recipients:
            messages.append((f"[Témoin] {len(upcoming)} effacement(s) dans les {hours} heures — {org.name}",
                             "\n".join(lines), None, recipients))
    if messages:
        send_mass_mail(messages, fail_silently=False)
    return len(messages)
