"""The disclosure API's serializers (issue 15 item 6): what each operation reads (shape: types,
bounds, required fields, with the services' own French words) and what it answers. The rules
(roles, CSI and GDPR deadlines, redaction) stay in the services."""
from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import serializers

from config.api_fields import AwareDateTimeField, IsoDateField, choice, optional_text, record_id, required_text

from . import access_requests, services, shares
from .models import AccessRequest, Export, ExtractionPurpose, LegalGround, Redaction

# --- What the operations read ---------------------------------------------------------------------

MAX_RADIUS_M = 100_000  # a search around a place: within 100 km (a commune and its neighbours)


class _ExtractionFields(serializers.Serializer):
    purpose = choice(ExtractionPurpose.choices, services.PURPOSE_REQUIRED)
    redaction = choice(Redaction.choices, services.REDACTION_UNKNOWN, required=False, default=Redaction.NONE,
                       help_text="training requires all (CSI R241-13)")


class ExtractionCreateSerializer(_ExtractionFields):
    recipient = required_text(services.EXTRACTION_RECIPIENT, max_length=300)
    motif = required_text(services.EXTRACTION_MOTIF, max_length=2000)


class ExportCreateSerializer(_ExtractionFields):
    recordings = serializers.ListField(child=record_id(), min_length=1, max_length=200, error_messages={
        "required": services.RECORDINGS_NONE, "empty": services.RECORDINGS_NONE, "min_length": services.RECORDINGS_NONE,
        "max_length": services.RECORDINGS_MAX, "not_a_list": _lazy("Liste de numéros d'enregistrements attendue.")})
    recipient = required_text(services.EXPORT_RECIPIENT, max_length=300)
    motif = required_text(services.EXPORT_MOTIF, max_length=2000)


_DOWNLOADS = format_lazy(_lazy("Nombre de téléchargements autorisés : entre 1 et {}."), shares.SHARE_MAX_DOWNLOADS)


class ShareCreateSerializer(serializers.Serializer):
    recipient = required_text(shares.SHARE_RECIPIENT, max_length=300)
    expires_at = AwareDateTimeField(help_text=f"in the future, within {shares.SHARE_MAX_DAYS} days and before the "
                                              "export's own erasure")
    max_downloads = serializers.IntegerField(min_value=1, max_value=shares.SHARE_MAX_DOWNLOADS, error_messages={
        k: _DOWNLOADS for k in ("required", "null", "invalid", "min_value", "max_value", "max_string_length")})


class ShareRevokeSerializer(serializers.Serializer):
    motif = optional_text(max_length=2000)


def _place_field(**kwargs):
    return serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, error_messages={
        k: _lazy("Lieu : [latitude, longitude] attendu.") for k in ("not_a_list", "min_length", "max_length")},
        **kwargs)


def _radius_field(**kwargs):
    message = format_lazy(_lazy("Rayon en mètres attendu : nombre entier entre 1 et {}."), MAX_RADIUS_M)
    return serializers.IntegerField(min_value=1, max_value=MAX_RADIUS_M, error_messages={
        k: message for k in ("invalid", "min_value", "max_value", "max_string_length")}, **kwargs)


def _check_place(place):
    if place is not None and not (-90 <= place[0] <= 90 and -180 <= place[1] <= 180):
        raise serializers.ValidationError(_lazy("Lieu : latitude entre -90 et 90, longitude entre -180 et 180."))
    return place


class AccessRequestCreateSerializer(serializers.Serializer):
    requester_name = required_text(access_requests.REQUESTER_NAME, max_length=300)
    requester_contact = optional_text(max_length=500)
    identity_checked = serializers.BooleanField(error_messages={
        k: access_requests.IDENTITY_CHECKED for k in ("required", "null", "invalid")})
    identity_check_method = optional_text(max_length=500, help_text="required when identity_checked")
    received_on = IsoDateField(error_messages={"required": access_requests.RECEIVED_ON, "null": access_requests.RECEIVED_ON})
    description = required_text(access_requests.DESCRIPTION, max_length=5000)
    window_start = AwareDateTimeField(required=False, allow_null=True)
    window_end = AwareDateTimeField(required=False, allow_null=True)
    place = _place_field(required=False, allow_null=True, help_text="[lat, lon]; radius_m required with it")
    radius_m = _radius_field(required=False, allow_null=True)
    officer = optional_text(max_length=100, help_text="matricule or name, as the requester describes them")

    def validate_place(self, value):
        return _check_place(value or None)


class ExtensionSerializer(serializers.Serializer):
    notice_on = IsoDateField(help_text="within one month of receipt (GDPR art. 12(3))",
                             error_messages={"required": access_requests.NOTICE_ON, "null": access_requests.NOTICE_ON})
    notice = required_text(access_requests.NOTICE, max_length=5000)


class SelectionSerializer(serializers.Serializer):
    recordings = serializers.ListField(child=record_id(), max_length=500, required=False, default=list, error_messages={
        "not_a_list": _lazy("Liste de numéros d'enregistrements attendue.")},
        help_text="among the candidates of the search; [] clears the selection")


class DecisionSerializer(serializers.Serializer):
    decision = choice(AccessRequest.Decision.choices, access_requests.DECISION)
    legal_ground = serializers.ChoiceField(choices=LegalGround.choices, required=False, allow_blank=True,
                                           help_text="required for partial and refused: LIL art. 107 II for "
                                                     "body-worn images; once videoprotection images are selected, "
                                                     "one of CSI L253-5's (inquiries, public_security, "
                                                     "national_security, others_rights)")
    note = optional_text(max_length=5000)


class DeliverySerializer(serializers.Serializer):
    delivered_on = IsoDateField(error_messages={"required": access_requests.DELIVERED_ON, "null": access_requests.DELIVERED_ON})
    means = required_text(access_requests.MEANS, max_length=500)


class CandidateQuerySerializer(serializers.Serializer):
    """The search's criteria; each absent one is taken from the request itself."""

    start = AwareDateTimeField(required=False)
    end = AwareDateTimeField(required=False)
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90)
    lon = serializers.FloatField(required=False, min_value=-180, max_value=180)
    radius_m = _radius_field(required=False)
    officer = serializers.CharField(required=False, max_length=100)
    intervention = serializers.CharField(required=False, max_length=100, help_text="an intervention's reference")

    def validate_officer(self, value):
        if any(ord(c) < 32 for c in value):
            raise serializers.ValidationError(_lazy("Matricule sans caractère de contrôle attendu."))
        return value

    def validate(self, attrs):
        if ("lat" in attrs) != ("lon" in attrs):
            raise serializers.ValidationError({"lat" if "lat" not in attrs else "lon": [
                _lazy("Latitude et longitude vont ensemble.")]})
        return attrs


# --- What the operations answer ---------------------------------------------------------------------

class ExtractionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    download_url = serializers.URLField(help_text="bound to the caller; short-lived")
    expires_at = serializers.DateTimeField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()


class ExportCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Export.Status.choices)


READY_ONLY = ("download_url", "sha256", "size", "manifest_sha256", "retain_until")


class ExportSerializer(serializers.ModelSerializer):
    recordings = serializers.SerializerMethodField()
    status_message = serializers.SerializerMethodField()
    access_request = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    download_url = serializers.SerializerMethodField(help_text="when ready: the ZIP package")

    class Meta:
        model = Export
        fields = ["id", "uuid", "status", "progress", "purpose", "recipient", "motif", "redaction", "recordings",
                  "created_at", "finished_at", "status_message", "access_request", *READY_ONLY]
        read_only_fields = fields

    def get_recordings(self, export) -> list[int]:
        return [i.recording_id for i in export.items.all()]  # prefetched by the views

    def get_status_message(self, export) -> str | None:
        return export.status_message or None

    def get_download_url(self, export) -> str:
        return self.context["request"].build_absolute_uri(reverse("api-export-download", args=[export.pk]))

    def to_representation(self, export):
        body = super().to_representation(export)
        if export.status != Export.Status.READY:  # no package yet: nothing to download or check
            for name in READY_ONLY:
                body.pop(name, None)
        return body


class ShareSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField(help_text="public page for the recipient; shown once")
    expires_at = serializers.DateTimeField()
    max_downloads = serializers.IntegerField()


class ShareRevokedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    revoked_at = serializers.DateTimeField()


class AccessRequestSerializer(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()
    recordings = serializers.SerializerMethodField()
    decision = serializers.SerializerMethodField()
    legal_ground = serializers.SerializerMethodField()
    closed = serializers.SerializerMethodField()
    exports = serializers.SerializerMethodField()
    legal_basis = serializers.SerializerMethodField()  # issue 22: by the regimes of the selected recordings

    class Meta:
        model = AccessRequest
        fields = ["id", "requester_name", "requester_contact", "identity_checked", "identity_check_method",
                  "received_on", "description", "window_start", "window_end", "place", "radius_m", "officer",
                  "deadline", "overdue", "extended", "extension_notice_on", "extension_notice", "recordings",
                  "decision", "legal_ground", "decision_note", "decided_at", "delivered_on", "delivery_means",
                  "closed", "exports", "legal_basis"]
        read_only_fields = fields

    def get_overdue(self, r) -> bool:
        return r.closed_at is None and r.deadline < timezone.localdate()

    def get_recordings(self, r) -> list[int]:
        return [x.pk for x in r.recordings.all()]

    def get_decision(self, r) -> str | None:
        return r.decision or None

    def get_legal_ground(self, r) -> str | None:
        return r.legal_ground or None

    def get_legal_basis(self, r) -> str:
        return access_requests.access_request_legal_basis(r)

    def get_closed(self, r) -> bool:
        return r.closed_at is not None

    def get_exports(self, r) -> list[int]:
        return [e.pk for e in r.exports.all()]


class CandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    camera = serializers.CharField(source="camera.serial")
    started_at = serializers.DateTimeField(allow_null=True)  # a partner's file has no time of its own
    ended_at = serializers.DateTimeField(allow_null=True)
    # Issue 22: body_worn (LIL art. 105/107) or videoprotection (CSI L253-5), and where it came from.
    source = serializers.CharField()
    regime = serializers.CharField()
    officer = serializers.SerializerMethodField()
    location = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    intervention = serializers.CharField()
    status = serializers.CharField()

    def get_officer(self, rec) -> str | None:
        return (rec.wearer.matricule or rec.wearer.username) if rec.wearer_id else None


class CandidatesSerializer(serializers.Serializer):
    criteria = serializers.DictField()
    count = serializers.IntegerField()
    results = CandidateSerializer(many=True)
