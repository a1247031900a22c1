"""REST API for recordings (ARCHITECTURE.md §7): thin, every read through the selectors."""
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from audit.models import CustodyEvent
from audit.selectors import recording_custody_events

from .access.selectors import recordings_visible_to
from .access.services import consultation_open
from .models import Annotation, Hold, Procedure, Purpose, Recording, ReviewState, TriggerReason
from .pagination import RecordingPagination
from .retention import RetentionRefused
from .retention.holds import hold_place, hold_release
from .retention.selectors import holds_for_recording, holds_visible_to
from .review.selectors import annotations_for
from .review.services import TAG_FIELDS, annotation_add, recording_review, recording_tag
from .search import SORTS, RecordingSearchForm
from .sources import Source


class HoldSerializer(serializers.ModelSerializer):
    placed_by = serializers.CharField(source="placed_by.username", read_only=True)
    released_by = serializers.CharField(source="released_by.username", read_only=True, default=None)
    active = serializers.BooleanField(read_only=True)

    class Meta:
        model = Hold
        fields = ["id", "procedure", "reference", "recording", "intervention", "motif", "placed_by", "placed_at",
                  "active", "released_by", "released_at", "release_motif"]
        read_only_fields = fields


class HoldCreateSerializer(serializers.Serializer):
    procedure = serializers.ChoiceField(choices=Procedure.choices)
    reference = serializers.CharField(max_length=200)
    motif = serializers.CharField(required=False, allow_blank=True, default="")
    scope = serializers.ChoiceField(choices=["recording", "intervention"], default="recording",
                                    help_text="hold this recording, or every recording of its intervention")


class HoldReleaseSerializer(serializers.Serializer):
    motif = serializers.CharField()


class RecordingTagSerializer(serializers.Serializer):
    """The tags a wearer or supervisor completes (ARCHITECTURE.md §7, PATCH)."""

    trigger_reason = serializers.ChoiceField(choices=TriggerReason.choices, required=False, allow_blank=True)
    subject_notified = serializers.BooleanField(required=False, allow_null=True)
    notice_omitted_reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    purpose = serializers.ChoiceField(choices=Purpose.choices, required=False, allow_blank=True)
    intervention = serializers.CharField(required=False, allow_blank=True, max_length=100)


class CustodyEventSerializer(serializers.ModelSerializer):
    action_label = serializers.CharField(read_only=True)
    author = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = CustodyEvent
        fields = ["seq", "occurred_at", "action", "action_label", "author", "motif", "recipients", "details",
                  "prev_hash", "hash"]


class AnnotationSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = ["id", "kind", "at_seconds", "text", "author", "created_at"]
        read_only_fields = ["id", "author", "created_at"]

    def get_author(self, obj) -> str:
        return obj.author.get_full_name() or obj.author.username if obj.author_id else obj.author_label


class AnnotationCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Annotation.Kind.choices, default="comment")
    at_seconds = serializers.FloatField(min_value=0)
    text = serializers.CharField(max_length=2000)


class ReviewSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=ReviewState.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ConsultationCreateSerializer(serializers.Serializer):
    motif = serializers.CharField(max_length=2000)


class ConsultationSerializer(serializers.Serializer):
    media_url = serializers.CharField()
    poster_url = serializers.CharField()
    expires_at = serializers.DateTimeField()


class RecordingSerializer(serializers.ModelSerializer):
    camera = serializers.CharField(source="camera.serial", read_only=True)
    officer = serializers.SerializerMethodField()
    holds = serializers.SerializerMethodField()
    to_complete = serializers.BooleanField(read_only=True)
    retention_rule = serializers.SerializerMethodField()
    interventions = serializers.SerializerMethodField()
    # What the ingest flagged: a sidecar's or manifest's problems, a partner's unknown file type,
    # a manifest hash that differs (issue 22).
    flags = serializers.ListField(child=serializers.CharField(), source="sidecar_errors", read_only=True)

    class Meta:
        model = Recording
        fields = [
            "id", "sha256", "size", "camera", "officer", "started_at", "ended_at", "duration",
            "time_attested", "time_source", "trigger_reason", "trigger_source", "subject_notified",
            "notice_omitted_reason", "purpose", "intervention", "location", "status", "status_message",
            "retain_until", "retention_rule", "holds", "to_complete", "camera_sha256", "camera_hash_matches",
            "stream_hashes", "playback_method", "ingested_at", "verified_at", "review_state", "reviewed_at",
            "review_note", "interventions", "source", "regime", "bundle", "source_camera", "flags",
        ]

    def get_interventions(self, obj) -> list[str]:
        """References of the interventions the recording is linked to (issue #21); none once erased
        (the tombstone keeps no intervention, CSI R241-13)."""
        if obj.gone:
            return []
        return list(obj.intervention_links.order_by("linked_at", "id").values_list("intervention__reference", flat=True))

    def get_retention_rule(self, obj) -> str:
        """The period and its legal basis, shown wherever a retention end is shown."""
        return obj.erasure_rule or f"{obj.organisation.retention} — {obj.organisation.retention_basis}"

    def get_officer(self, obj) -> str | None:
        return obj.wearer.matricule or obj.wearer.username if obj.wearer_id else None

    @extend_schema_field(HoldSerializer(many=True))
    def get_holds(self, obj) -> list[dict]:
        return HoldSerializer(holds_for_recording(recording=obj), many=True).data


_DATETIME = serializers.DateTimeField()  # the API's date-time format, for rows written out directly


class RecordingListSerializer(RecordingSerializer):
    """The list's rows. Declared like the detail for the schema; written out directly, because the
    generic field machinery was half the time of a list request at a million recordings."""

    class Meta(RecordingSerializer.Meta):
        fields = [
            "id", "sha256", "size", "camera", "officer", "started_at", "ended_at", "duration",
            "trigger_reason", "subject_notified", "purpose", "intervention", "status", "retain_until",
            "to_complete", "review_state", "source", "regime",
        ]

    # Columns the list reads (with the camera's serial and the wearer's identifiers).
    COLUMNS = ("id", "organisation_id", "sha256", "size", "started_at", "ended_at", "duration", "trigger_reason",
               "subject_notified", "notice_omitted_reason", "purpose", "intervention", "status", "retain_until",
               "review_state", "wearer_id", "camera__serial", "wearer__matricule", "wearer__username", "source",
               "regime")
    def to_representation(self, r):
        when = _DATETIME.to_representation
        return {
            "id": r.id, "sha256": r.sha256, "size": r.size, "camera": r.camera.serial,
            "officer": self.get_officer(r),
            "started_at": when(r.started_at) if r.started_at else None,
            "ended_at": when(r.ended_at) if r.ended_at else None, "duration": r.duration,
            "trigger_reason": r.trigger_reason, "subject_notified": r.subject_notified, "purpose": r.purpose,
            "intervention": r.intervention, "status": r.status,
            "retain_until": when(r.retain_until) if r.retain_until else None,
            "to_complete": r.to_complete, "review_state": r.review_state, "source": r.source, "regime": r.regime,
        }


@extend_schema_view(
    list=extend_schema(parameters=[
        OpenApiParameter("officer", OpenApiTypes.STR, description="wearer's matricule"),
        OpenApiParameter("camera", OpenApiTypes.STR, description="camera serial"),
        OpenApiParameter("started_after", OpenApiTypes.DATETIME),
        OpenApiParameter("started_before", OpenApiTypes.DATETIME,
                         description="exclusive instant; a day alone (2026-12-06) includes that whole local day"),
        OpenApiParameter("trigger_reason", OpenApiTypes.STR, enum=TriggerReason.values),
        OpenApiParameter("status", OpenApiTypes.STR, enum=Recording.Status.values),
        OpenApiParameter("purpose", OpenApiTypes.STR, enum=Purpose.values),
        OpenApiParameter("subject_notified", OpenApiTypes.STR, enum=["yes", "no", "unknown"]),
        OpenApiParameter("intervention", OpenApiTypes.STR),
        OpenApiParameter("review_state", OpenApiTypes.STR, enum=ReviewState.values),
        OpenApiParameter("source", OpenApiTypes.STR, enum=Source.values,
                         description="camera (offload), axis, or requisition (a partner's upload)"),
        OpenApiParameter("hold", OpenApiTypes.STR, enum=["held", "not_held"], description="hold in force"),
        OpenApiParameter("q", OpenApiTypes.STR, description="intervention, camera, wearer name or hash prefix"),
        OpenApiParameter("sort", OpenApiTypes.STR, enum=list(SORTS)),
    ])
)
class RecordingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Recordings the caller may see. Any other recording answers 404, never its metadata."""

    http_method_names = ["get", "post", "patch", "head", "options"]
    pagination_class = RecordingPagination

    @extend_schema(request=RecordingTagSerializer, responses={200: RecordingSerializer})
    def partial_update(self, request, pk=None):
        """Complete or correct the tags; the change and its old values go to the custody log."""
        recording = self.get_object()
        data = RecordingTagSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            recording = recording_tag(recording=recording, by=request.user, changes=data.validated_data)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            field = str(exc).split(":", 1)[0] if ":" in str(exc) else "detail"
            raise ValidationError({field if field in TAG_FIELDS else "detail": str(exc)}) from exc
        return Response(RecordingSerializer(recording).data)

    def get_serializer_class(self):
        return RecordingListSerializer if self.action == "list" else RecordingSerializer

    def get_queryset(self):
        qs = recordings_visible_to(user=self.request.user)
        if self.action != "list":
            return qs
        form = RecordingSearchForm(self.request.query_params)
        if not form.is_valid():
            errors = {}
            for name, messages in form.errors.items():
                hint = "expected an ISO 8601 date-time" if name.startswith("started_") else "; ".join(messages)
                if name in ("trigger_reason", "status", "purpose", "review_state", "subject_notified", "sort",
                            "source"):
                    hint = f"one of {', '.join(v for v, _ in form.fields[name].choices if v)}"
                errors[name] = [hint]
            raise ValidationError(errors)
        # The list reads only the columns it shows.
        return form.apply(qs).only(*RecordingListSerializer.COLUMNS)

    @extend_schema(responses={200: CustodyEventSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def custody(self, request, pk=None):
        """The recording's custody events, in chain order (ARCHITECTURE.md §7)."""
        recording = self.get_object()
        return Response(CustodyEventSerializer(recording_custody_events(recording=recording), many=True).data)

    @extend_schema(request=ConsultationCreateSerializer, responses={201: ConsultationSerializer})
    @action(detail=True, methods=["post"])
    def consultations(self, request, pk=None):
        """Motif before media: logs the consultation, then returns a short-lived media URL."""
        recording = self.get_object()
        data = ConsultationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            consultation, token = consultation_open(recording=recording, by=request.user,
                                                             motif=data.validated_data["motif"])
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            raise ValidationError({"motif" if str(exc).startswith("motif") else "detail": str(exc)}) from exc
        body = {"media_url": request.build_absolute_uri(reverse("consultation-media", args=[token, "video"])),
                "poster_url": request.build_absolute_uri(reverse("consultation-media", args=[token, "poster"])),
                "expires_at": consultation.expires_at}
        return Response(ConsultationSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["GET"], responses={200: AnnotationSerializer(many=True)})
    @extend_schema(methods=["POST"], request=AnnotationCreateSerializer, responses={201: AnnotationSerializer})
    @action(detail=True, methods=["get", "post"])
    def annotations(self, request, pk=None):
        """Timecoded comments and bookmarks of the recording."""
        recording = self.get_object()
        if request.method == "GET":
            return Response(AnnotationSerializer(annotations_for(recording=recording), many=True).data)
        data = AnnotationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            note = annotation_add(recording=recording, by=request.user, **data.validated_data)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            field = str(exc).split(":", 1)[0]
            raise ValidationError({field if field in ("text", "at_seconds", "kind") else "detail": str(exc)}) from exc
        return Response(AnnotationSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ReviewSerializer, responses={200: RecordingSerializer})
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """A supervisor marks the recording reviewed or flagged (a flag needs a note)."""
        recording = self.get_object()
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            recording = recording_review(recording=recording, by=request.user, **data.validated_data)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            raise ValidationError({"note" if str(exc).startswith("note") else "detail": str(exc)}) from exc
        return Response(RecordingSerializer(recording).data)

    @extend_schema(request=HoldCreateSerializer, responses={201: HoldSerializer})
    @action(detail=True, methods=["post"])
    def holds(self, request, pk=None):
        """Place a hold for a procedure (CSI R241-13): supervisor or legal."""
        recording = self.get_object()
        data = HoldCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v["scope"] == "intervention" and not recording.intervention:
            raise ValidationError({"scope": "this recording has no intervention number"})
        try:
            hold = hold_place(
                by=request.user, procedure=v["procedure"], reference=v["reference"], motif=v["motif"],
                recording=recording if v["scope"] == "recording" else None,
                intervention=recording.intervention if v["scope"] == "intervention" else "",
            )
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except (ValueError, RetentionRefused) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(HoldSerializer(hold).data, status=status.HTTP_201_CREATED)


class HoldViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = HoldSerializer

    def get_queryset(self):
        return holds_visible_to(user=self.request.user)

    @extend_schema(request=HoldReleaseSerializer, responses={200: HoldSerializer})
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        """Release a hold: legal role, with a motif."""
        hold = self.get_object()
        data = HoldReleaseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            hold = hold_release(hold=hold, by=request.user, motif=data.validated_data["motif"])
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(HoldSerializer(hold).data)
