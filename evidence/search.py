"""Search filters of the recordings list, shared by the page and the API (validation in one place).

These narrow what ``recordings_visible_to`` already allowed; they never widen it.
"""
import datetime as dt
import re

from django import forms
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Purpose, Recording, ReviewState, TriggerReason
from .sources import Source

SORTS = {
    "-started_at": ("-started_at", "-id"), "started_at": ("started_at", "id"),
    "camera": ("camera__serial", "-started_at"), "-camera": ("-camera__serial", "-started_at"),
    "wearer": ("wearer__last_name", "-started_at"), "-wearer": ("-wearer__last_name", "-started_at"),
    "status": ("status", "-started_at"), "retain_until": ("retain_until", "id"),
    "-retain_until": ("-retain_until", "-id"), "duration": ("duration", "id"), "-duration": ("-duration", "-id"),
}
NOTIFIED = {"yes": True, "no": False}
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _blank(choices):
    return [("", "—"), *choices]


class RecordingSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label=_("Recherche"))
    officer = forms.CharField(required=False, max_length=150, label=_("Agent porteur (matricule ou identifiant)"))
    camera = forms.CharField(required=False, max_length=64, label=_("Caméra"))
    started_after = forms.DateTimeField(required=False, label=_("Depuis"))
    started_before = forms.DateTimeField(required=False, label=_("Jusqu'au (inclus)"))
    trigger_reason = forms.ChoiceField(required=False, choices=_blank(TriggerReason.choices),
                                       label=_("Motif de déclenchement"))
    purpose = forms.ChoiceField(required=False, choices=_blank(Purpose.choices), label=_("Finalité"))
    subject_notified = forms.ChoiceField(required=False, label=_("Personnes informées"), choices=[
        ("", "—"), ("yes", _("oui")), ("no", _("non")), ("unknown", _("non renseigné"))])
    status = forms.ChoiceField(required=False, choices=_blank(Recording.Status.choices), label=_("État"))
    intervention = forms.CharField(required=False, max_length=100, label=_("Intervention"))
    review_state = forms.ChoiceField(required=False, choices=_blank(ReviewState.choices), label=_("Revue"))
    source = forms.ChoiceField(required=False, choices=_blank(Source.choices), label=_("Provenance"))
    hold = forms.ChoiceField(required=False, label=_("Conservation pour procédure"), choices=[
        ("", "—"), ("held", _("effacement suspendu")), ("not_held", _("sans conservation"))])
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS], label=_("Tri"))

    def __init__(self, data=None, **kwargs):
        # The date fields accept both "2026-11-26" (date inputs) and full ISO 8601 datetimes.
        super().__init__(data, **kwargs)
        for name in ("started_after", "started_before"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
                                               "%Y-%m-%d"]

    def clean_started_after(self):
        return self._iso(self.data.get("started_after"), self.cleaned_data["started_after"])

    def clean_started_before(self):
        parsed = self._iso(self.data.get("started_before"), self.cleaned_data["started_before"])
        raw = (self.data.get("started_before") or "").strip()
        if parsed is not None and DATE_ONLY.fullmatch(raw):
            # A day typed alone includes the whole day, as the register's "Au (inclus)": up to the
            # next midnight in local time (Europe/Paris; the next day's, so a DST change counts).
            day = dt.date.fromisoformat(raw) + dt.timedelta(days=1)
            parsed = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
        return parsed

    # Dates a recording can have. Beyond, converting to UTC overflows Python's calendar
    # (started_before=0001-01-01 in Europe/Paris is in year 0 in UTC: an OverflowError, issue 17).
    YEARS = (1900, 2999)

    @classmethod
    def _iso(cls, raw, parsed):
        from django.utils.dateparse import parse_datetime

        if raw and parsed is None:
            try:
                parsed = parse_datetime(raw.replace(" ", "+"))
            except ValueError:  # a well-formed but impossible date or offset (month 13, +25:00)
                raise forms.ValidationError(_("Date invalide."), code="invalid") from None
            if parsed is None:
                raise forms.ValidationError(_("Date invalide."), code="invalid")
        offset = parsed.utcoffset() if parsed is not None else None
        if offset is not None and abs(offset.total_seconds()) >= 16 * 3600:  # PostgreSQL's bound: ±15:59
            raise forms.ValidationError(_("Décalage horaire hors des limites."), code="out_of_range")
        if parsed is not None and not cls.YEARS[0] <= parsed.year <= cls.YEARS[1]:
            raise forms.ValidationError(_("Date hors des limites (%(first)s–%(last)s).")
                                        % {"first": cls.YEARS[0], "last": cls.YEARS[1]}, code="out_of_range")
        return parsed

    def apply(self, qs):
        """Narrow ``qs`` (already scoped by the selector) by the valid filters, and sort it."""
        d = self.cleaned_data
        if d.get("q"):
            t = d["q"].strip()
            qs = qs.filter(Q(intervention__icontains=t) | Q(camera__serial__icontains=t)
                           | Q(wearer__last_name__icontains=t) | Q(wearer__matricule__iexact=t)
                           | Q(sha256__startswith=t.lower()))
        if d.get("officer"):
            # Resolved to ids first, so that the (organisation, wearer, started_at) index serves the list.
            from accounts.models import User

            wearers = list(User.objects.filter(Q(matricule=d["officer"]) | Q(username=d["officer"]))
                           .values_list("pk", flat=True)[:20])
            qs = qs.filter(wearer_id__in=wearers)
        if d.get("camera"):
            qs = qs.filter(camera__serial__icontains=d["camera"].strip())
        if d.get("started_after"):
            qs = qs.filter(started_at__gte=d["started_after"])
        if d.get("started_before"):
            qs = qs.filter(started_at__lt=d["started_before"])
        for name in ("trigger_reason", "purpose", "status", "review_state", "source"):
            if d.get(name):
                qs = qs.filter(**{name: d[name]})
        if d.get("intervention"):
            qs = qs.filter(intervention=d["intervention"].strip())
        if d.get("hold"):
            from .retention.holds import active_holds_q

            # CSI R241-13: a hold in force suspends the erasure; the filter shows which are kept.
            qs = qs.filter(active_holds_q()) if d["hold"] == "held" else qs.exclude(active_holds_q())
        if d.get("subject_notified"):
            value = d["subject_notified"]
            qs = qs.filter(subject_notified__isnull=True) if value == "unknown" else \
                qs.filter(subject_notified=NOTIFIED[value])
        return qs.order_by(*SORTS.get(d.get("sort") or "-started_at", SORTS["-started_at"]))


def with_hold_in_force(qs):
    """Annotate ``held_reference``: the reference of a hold in force covering the recording, if any."""
    from django.db.models import OuterRef, Subquery

    from .models import Hold

    in_force = (Hold.covered.through.objects.filter(recording_id=OuterRef("pk"), hold__released_at__isnull=True)
                .order_by("hold__placed_at").values("hold__reference")[:1])
    return qs.annotate(held_reference=Subquery(in_force))
