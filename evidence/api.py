"""REST API for recordings (ARCHITECTURE.md §7): thin, every read through the selectors."""
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError

from .models import Recording, TriggerReason
from .selectors import recordings_visible_to


class RecordingSerializer(serializers.ModelSerializer):
    camera = serializers.CharField(source="camera.serial", read_only=True)
    officer = serializers.SerializerMethodField()
    holds = serializers.SerializerMethodField()
    to_complete = serializers.BooleanField(read_only=True)

    class Meta:
        model = Recording
        fields = [
            "id", "sha256", "size", "camera", "officer", "started_at", "ended_at", "duration",
            "time_attested", "time_source", "trigger_reason", "trigger_source", "subject_notified",
            "notice_omitted_reason", "purpose", "intervention", "location", "status", "status_message",
            "retain_until", "holds", "to_complete", "camera_sha256", "camera_hash_matches",
            "stream_hashes", "playback_method", "ingested_at", "verified_at",
        ]

    def get_officer(self, obj) -> str | None:
        return obj.wearer.matricule or obj.wearer.username if obj.wearer_id else None

    def get_holds(self, obj) -> list[dict]:
        # Holds for procedures (CSI R241-13) arrive with the retention work; none can exist yet.
        return []


class RecordingListSerializer(RecordingSerializer):
    class Meta(RecordingSerializer.Meta):
        fields = [
            "id", "sha256", "size", "camera", "officer", "started_at", "ended_at", "duration",
            "trigger_reason", "subject_notified", "purpose", "intervention", "status", "retain_until",
            "to_complete",
        ]


def _datetime(params, name):
    value = params.get(name)
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. month 13
        parsed = None
    if parsed is None:
        raise ValidationError({name: "expected an ISO 8601 date-time"})
    return parsed


@extend_schema_view(
    list=extend_schema(parameters=[
        OpenApiParameter("officer", OpenApiTypes.STR, description="wearer's matricule"),
        OpenApiParameter("camera", OpenApiTypes.STR, description="camera serial"),
        OpenApiParameter("started_after", OpenApiTypes.DATETIME),
        OpenApiParameter("started_before", OpenApiTypes.DATETIME),
        OpenApiParameter("trigger_reason", OpenApiTypes.STR, enum=TriggerReason.values),
        OpenApiParameter("status", OpenApiTypes.STR, enum=Recording.Status.values),
    ])
)
class RecordingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Recordings the caller may see. Any other recording answers 404, never its metadata."""

    def get_serializer_class(self):
        return RecordingListSerializer if self.action == "list" else RecordingSerializer

    def get_queryset(self):
        qs = recordings_visible_to(user=self.request.user)
        if self.action != "list":
            return qs
        p = self.request.query_params
        if p.get("officer"):
            qs = qs.filter(wearer__matricule=p["officer"])
        if p.get("camera"):
            qs = qs.filter(camera__serial=p["camera"])
        if (after := _datetime(p, "started_after")) is not None:
            qs = qs.filter(started_at__gte=after)
        if (before := _datetime(p, "started_before")) is not None:
            qs = qs.filter(started_at__lt=before)
        if p.get("trigger_reason"):
            if p["trigger_reason"] not in TriggerReason.values:
                raise ValidationError({"trigger_reason": f"one of {', '.join(TriggerReason.values)}"})
            qs = qs.filter(trigger_reason=p["trigger_reason"])
        if p.get("status"):
            if p["status"] not in Recording.Status.values:
                raise ValidationError({"status": f"one of {', '.join(Recording.Status.values)}"})
            qs = qs.filter(status=p["status"])
        return qs.order_by("-started_at", "-id")
