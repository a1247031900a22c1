"""Erasures announced in advance (LEGAL.md rule 4, CSI R241-13; "deletions visible in advance").

The daily notice tells supervisors what will be erased in the next hours, untagged first, so that
a recording used in a procedure is held before its end.
"""
from __future__ import annotations

import datetime as dt

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from accounts.selectors import user_language

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
        supervisors = list(User.objects.filter(organisation=org, role="supervisor", is_active=True).exclude(email=""))
        # One message per language, in each supervisor's own (French by default).
        by_language: dict[str, list[str]] = {}
        for user in supervisors:
            by_language.setdefault(user_language(user), []).append(user.email)
        for language, recipients in by_language.items():
            with translation.override(language):
                subject = _("[Témoin] %(n)s effacement(s) dans les %(hours)s heures — %(organisation)s") % {
                    "n": len(upcoming), "hours": hours, "organisation": org.name}
                messages.append((subject, _notice_body(upcoming, hours), None, recipients))
    if messages:
        send_mass_mail(messages, fail_silently=False)
    return len(messages)


def _notice_body(upcoming: list[Recording], hours: int) -> str:
    to_complete = [r for r in upcoming if r.to_complete]
    lines = [_("%(n)s enregistrement(s) seront effacés dans les %(hours)s prochaines heures (CSI R241-13), dont "
               "%(untagged)s non qualifiés :") % {"n": len(upcoming), "hours": hours, "untagged": len(to_complete)}, ""]
    for r in sorted(upcoming, key=lambda r: (not r.to_complete, r.retain_until)):
        # A partner's file (issue 22) has no recording time of its own: its source says where it came from.
        started = (f"{timezone.localtime(r.started_at):%d/%m/%Y %H:%M}" if r.started_at
                   else _("images de réquisition"))
        lines.append(_("- %(mark)sn° %(n)s, caméra %(camera)s, %(started)s — effacement le %(end)s") % {
            "mark": _("À COMPLÉTER") + " " if r.to_complete else "", "n": r.pk, "camera": r.camera.serial,
            "started": started, "end": f"{timezone.localtime(r.retain_until):%d/%m/%Y %H:%M}"})
    lines += ["", _("Pour conserver un enregistrement utilisé dans une procédure, placez une conservation pour "
                    "procédure avant cette date.")]
    return "\n".join(lines)
