"""GET /api/register/ (ARCHITECTURE.md §7): the register of consultations, extractions and erasures.

Same readers and same organisation scope as the page (CSI R241-14); others get 403.
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, serializers
from rest_framework.exceptions import ValidationError

from config.api_fields import AwareDateTimeField

from . import selectors
from .register import REGISTER_KINDS, register_kind_of
from .models import CustodyEvent


class CanReadRegister(permissions.BasePermission):
    message = "Registre réservé au maire, au délégué à la protection des données et au service juridique."

    def has_permission(self, request, view):
        return selectors.register_can_read(request.user)


class RegisterEntrySerializer(serializers.ModelSerializer):
    kind = serializers.SerializerMethodField()
    action_label = serializers.CharField(read_only=True)
    author = serializers.CharField(source="actor_label", read_only=True)
    author_username = serializers.SerializerMethodField()

    class Meta:
        model = CustodyEvent
        fields = ["seq", "occurred_at", "kind", "action", "action_label", "author", "author_username",
                  "subject_type", "subject_id", "recording", "motif", "recipients", "details", "hash"]

    def get_kind(self, obj) -> str:
        return register_kind_of(obj.action)

    def get_author_username(self, obj) -> str | None:
        return obj.actor.username if obj.actor_id else None


def _datetime(params, name):
    """An ISO 8601 date-time with its offset, within what the database holds (config/api_fields.py)."""
    value = params.get(name)
    if not value:
        return None
    try:
        return AwareDateTimeField().run_validation(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from None


@extend_schema(parameters=[
    OpenApiParameter("kind", OpenApiTypes.STR, enum=list(REGISTER_KINDS)),
    OpenApiParameter("since", OpenApiTypes.DATETIME), OpenApiParameter("until", OpenApiTypes.DATETIME),
    OpenApiParameter("author", OpenApiTypes.STR, description="username, matricule or part of the author label"),
    OpenApiParameter("recording", OpenApiTypes.INT),
])
class RegisterList(generics.ListAPIView):
    """Register entries of the caller's organisation, newest first (paginated: count, results)."""

    serializer_class = RegisterEntrySerializer
    permission_classes = [permissions.IsAuthenticated, CanReadRegister]

    def get_queryset(self):
        p = self.request.query_params
        kind = p.get("kind", "")
        if kind and kind not in REGISTER_KINDS:
            raise ValidationError({"kind": f"one of {', '.join(REGISTER_KINDS)}"})
        recording = p.get("recording")
        if recording:
            try:
                recording = int(recording)
            except ValueError:
                raise ValidationError({"recording": "expected a recording id"}) from None
            if not 0 < recording < 2**63:
                raise ValidationError({"recording": "expected a recording id"})
        return selectors.register_entries_visible_to(
            user=self.request.user, kind=kind, since=_datetime(p, "since"), until=_datetime(p, "until"),
            author=p.get("author", "").strip(), recording_id=recording or None)
