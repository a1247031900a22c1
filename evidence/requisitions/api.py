"""REST API for requisitions (issue 22): thin, reads through the selectors, writes through the services."""
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from ..sources import Regime
from .models import Requisition
from .selectors import requisitions_visible_to
from .services import RequisitionRefused, requisition_create


class RequisitionCreateSerializer(serializers.Serializer):
    partner = serializers.CharField(max_length=200)
    regime = serializers.ChoiceField(choices=Regime.choices)
    reference = serializers.CharField(max_length=200)
    motif = serializers.CharField()
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    # Videoprotection: the period of the partner's prefectoral authorisation, at most P1M (CSI L252-5).
    retention = serializers.CharField(max_length=20, required=False, allow_blank=True)


class RequisitionCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    upload_url = serializers.URLField()
    expires_at = serializers.DateTimeField()


class DeclarantSerializer(serializers.Serializer):
    name = serializers.CharField()
    role = serializers.CharField()
    contact = serializers.CharField()
    declared_at = serializers.DateTimeField()


class RequisitionFileSerializer(serializers.Serializer):
    filename = serializers.CharField()
    size = serializers.IntegerField(source="length")
    sha256 = serializers.CharField()
    recording = serializers.IntegerField(source="recording_id", allow_null=True)
    status = serializers.CharField()
    offset = serializers.IntegerField()
    message = serializers.CharField()
    # An export bundle's clips (their recordings) and what stayed in it, flagged (docs/requisitions.md).
    report = serializers.JSONField()
    declarant = DeclarantSerializer(allow_null=True)  # who sent it, as they declared on the link's page


class RequisitionSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    files = RequisitionFileSerializer(source="uploads", many=True, read_only=True)

    class Meta:
        model = Requisition
        fields = ["id", "status", "partner", "regime", "reference", "motif", "period_start", "period_end",
                  "retention", "expires_at", "created_at", "files"]
        read_only_fields = fields

    def get_status(self, obj) -> str:
        return obj.status_at()


class RequisitionViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Requisitions of the caller's organisation (supervisors, legal staff); any other answers 404."""

    serializer_class = RequisitionSerializer

    def get_queryset(self):
        return requisitions_visible_to(user=self.request.user).prefetch_related("uploads__declarant")

    @extend_schema(request=RequisitionCreateSerializer, responses={201: RequisitionCreatedSerializer})
    def create(self, request):
        """Issue a requisition (supervisor, legal staff): its tus upload link is in the answer, once."""
        data = RequisitionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            requisition, token = requisition_create(by=request.user, **data.validated_data)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except RequisitionRefused as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        url = request.build_absolute_uri(reverse("requisition-tus-uploads", args=[token]))
        body = RequisitionCreatedSerializer({"id": requisition.pk, "upload_url": url,
                                             "expires_at": requisition.expires_at}).data
        return Response(body, status=status.HTTP_201_CREATED)
