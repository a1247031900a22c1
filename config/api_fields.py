"""Serializer fields shared by the API's endpoints: what every date and record number must be
before a service or the database sees it (issue 17 finding 5, issue 15 item 6)."""
from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# No recording, request or register entry is dated outside these years; beyond them, converting to
# UTC leaves Python's calendar (year 1 at +01:00 is year 0 in UTC: an OverflowError, a 500).
YEARS = (1900, 2999)
# PostgreSQL's timestamptz takes offsets within ±15:59 (an offset of -18:30 reached it: a 500).
MAX_OFFSET = dt.timedelta(hours=15, minutes=59)
MAX_ID = 2 ** 63 - 1  # PostgreSQL's bigint


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time with its offset, within the years and offsets the database can hold.

    A date-time without an offset is refused rather than read in the server's zone: a court's time
    must not depend on where the server runs."""

    default_error_messages = {
        "invalid": _("Date et heure ISO 8601 attendues, avec fuseau horaire (ex. 2026-12-07T14:30:00+01:00)."),
        "naive": _("Date et heure ISO 8601 attendues, avec fuseau horaire (ex. 2026-12-07T14:30:00+01:00)."),
        "out_of_range": _("Date hors des limites (années {first}–{last}, décalage horaire de ±15:59 au plus)."),
    }

    def to_internal_value(self, value):
        parsed = None
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:  # well formed but impossible: month 13, 25 o'clock, +25:00
                parsed = None
        if parsed is None:
            self.fail("invalid")
        offset = parsed.utcoffset()
        if offset is None:
            self.fail("naive")
        if not YEARS[0] <= parsed.year <= YEARS[1] or abs(offset) > MAX_OFFSET:
            self.fail("out_of_range", first=YEARS[0], last=YEARS[1])
        return parsed


class IsoDateField(serializers.DateField):
    """A calendar date written AAAA-MM-JJ, within the years a record can have."""

    default_error_messages = {
        "invalid": _("Date attendue (AAAA-MM-JJ)."),
        "datetime": _("Date attendue (AAAA-MM-JJ), sans heure."),
        "out_of_range": _("Date hors des limites (années {first}–{last})."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", ["iso-8601"])
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if not YEARS[0] <= parsed.year <= YEARS[1]:
            self.fail("out_of_range", first=YEARS[0], last=YEARS[1])
        return parsed


def record_id(**kwargs) -> serializers.IntegerField:
    """A record's number: an integer as written (7.9, "7.9" and true are refused, never rounded),
    positive and within 64 bits."""
    messages = {"invalid": _("Numéro entier attendu."), "min_value": _("Numéro entier positif attendu."),
                "max_value": _("Numéro hors des limites."), "max_string_length": _("Numéro hors des limites.")}
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, error_messages=messages, **kwargs)


def required_text(message, *, max_length: int, **kwargs) -> serializers.CharField:
    """Text the operation cannot do without: absent, null or blank answers ``message`` (the same
    French sentence the service gives, naming the rule)."""
    messages = {"required": message, "null": message, "blank": message,
                "max_length": _("{max_length} caractères au plus.")}
    return serializers.CharField(max_length=max_length, error_messages=messages, **kwargs)


def optional_text(*, max_length: int, **kwargs) -> serializers.CharField:
    messages = {"max_length": _("{max_length} caractères au plus.")}
    return serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=max_length,
                                 error_messages=messages, **kwargs)


def choice(choices, message, **kwargs) -> serializers.ChoiceField:
    """One of ``choices``; anything else (or nothing, when required) answers ``message``."""
    messages = {"required": message, "null": message, "blank": message, "invalid_choice": message}
    return serializers.ChoiceField(choices=choices, error_messages=messages, **kwargs)


class ErrorSerializer(serializers.Serializer):
    """A refusal: 401, 403, 404, 429 (``detail`` says why, in French)."""

    detail = serializers.CharField()


# A 400: each refused field (or ``detail``) with its French messages, e.g.
# {"recipient": ["Indiquez le destinataire de l'export (CSI R241-14)."]}; a refused item of a list is
# named by its position: {"recordings": {"0": ["Numéro entier attendu."]}}.
MESSAGES = {"type": "array", "items": {"type": "string"}}
FIELD_ERRORS = {"type": "object",
                "additionalProperties": {"oneOf": [MESSAGES, {"type": "object", "additionalProperties": MESSAGES}]},
                "example": {"recipient": ["Indiquez le destinataire de l'export (CSI R241-14)."]}}


def error_responses(*codes: int) -> dict:
    """OpenAPI responses for the refusals an operation can answer."""
    from drf_spectacular.utils import OpenApiResponse

    described = {400: ("Refusé : chaque champ refusé (ou « detail ») et ses messages.", FIELD_ERRORS),
                 401: ("Non authentifié.", ErrorSerializer),
                 403: ("Rôle non autorisé pour cette opération.", ErrorSerializer),
                 404: ("Introuvable, ou hors de ce que l'appelant peut voir.", ErrorSerializer),
                 429: ("Trop de requêtes (Retry-After).", ErrorSerializer)}
    return {code: OpenApiResponse(response=described[code][1], description=described[code][0]) for code in codes}
