"""REST API for interventions (issue #21; contract in the README): thin, reads through the selectors.

Paths carry the service's reference (which may contain "/"), so they are plain views on explicit
paths rather than a router (urls.py).
"""
from __future__ import annotations

from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_fields import AwareDateTimeField

from ..api import HoldSerializer
from ..models import Procedure, Recording
from ..retention import RetentionRefused
from evidence.access.selectors import recordings_visible_to
from . import selectors, services
from .models import Intervention


# --- Serializers -----------------------------------------------------------------------------------

class InterventionRecordingSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    camera = serializers.CharField()
    officer = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField(help_text="on the intervention's clock (camera correction applied)")
    recorded_started_at = serializers.DateTimeField(help_text="as the camera recorded it")
    duration = serializers.FloatField(allow_null=True)
    offset_seconds = serializers.FloatField(help_text="the recording's start minus the intervention's start")
    clock_correction = serializers.FloatField(help_text="seconds added to this camera's times")
    track = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()), allow_null=True)
    location = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    status = serializers.CharField()
    link_source = serializers.CharField()


class InterventionSerializer(serializers.Serializer):
    reference = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    place = serializers.CharField()
    notes = serializers.CharField()
    officers = serializers.ListField(child=serializers.CharField())
    recordings = InterventionRecordingSerializer(many=True)


class InterventionRowSerializer(serializers.Serializer):
    reference = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    place = serializers.CharField()
    url = serializers.CharField()


class InterventionCreateSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=100)
    recordings = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    place = serializers.CharField(required=False, allow_blank=True, default="", max_length=300)


class RecordingIdsSerializer(serializers.Serializer):
    recordings = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)


class InterventionHoldSerializer(serializers.Serializer):
    procedure = serializers.ChoiceField(choices=Procedure.choices)
    reference = serializers.CharField(max_length=200)
    motif = serializers.CharField(required=False, allow_blank=True, default="")


class InterventionExportSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=["judicial", "administrative", "disciplinary", "training"])
    recipient = serializers.CharField(max_length=300)
    motif = serializers.CharField(max_length=2000)
    redaction = serializers.ChoiceField(choices=["none", "others", "all"], default="none")


class ClockCorrectionSerializer(serializers.Serializer):
    camera = serializers.CharField(help_text="camera serial")
    seconds = serializers.FloatField(help_text="seconds added to this camera's times (0 removes the correction)")
    motif = serializers.CharField(max_length=2000)


class ConsultationsSerializer(serializers.Serializer):
    motif = serializers.CharField(max_length=2000)


def _officer(rec: Recording) -> str | None:
    return (rec.wearer.matricule or rec.wearer.username) if rec.wearer_id else None


def intervention_body(intervention: Intervention, user) -> dict:
    """The detail as ``user`` may see it: only the recordings visible to them, and what they tell."""
    recordings = list(selectors.intervention_recordings_visible_to(user=user, intervention=intervention))
    timeline = selectors.intervention_timeline(intervention=intervention, recordings=recordings)
    sources = dict(intervention.links.values_list("recording_id", "source"))
    rows = []
    for row in timeline["rows"]:
        rec = row["recording"]
        rows.append({"id": rec.pk, "camera": rec.camera.serial, "officer": _officer(rec),
                     "started_at": row["started_at"], "recorded_started_at": rec.started_at,
                     "duration": row["duration"], "offset_seconds": row["offset_seconds"],
                     "clock_correction": row["clock_correction"], "track": rec.track, "location": rec.location,
                     "status": rec.status, "link_source": sources.get(rec.pk, "")})
    officers = sorted({o for o in (_officer(r["recording"]) for r in timeline["rows"]) if o})
    return InterventionSerializer({
        "reference": intervention.reference, "started_at": timeline["started_at"],
        "ended_at": timeline["ended_at"], "place": intervention.place, "notes": intervention.notes,
        "officers": officers, "recordings": rows}).data


def intervention_get(user, reference: str) -> Intervention:
    """The intervention if ``user`` may see it; 404 otherwise (never its existence)."""
    if not reference or len(reference) > 100 or "\x00" in reference:
        raise Http404  # no such reference can exist (PostgreSQL text refuses NUL)
    found = selectors.interventions_visible_to(user=user).filter(reference=reference).first()
    if found is None:
        raise Http404
    return found


def _recordings(user, ids: list[int]) -> list[Recording]:
    """Recordings by id among those ``user`` may see; an unknown or unseen id is one answer: 400."""
    found = {r.pk: r for r in recordings_visible_to(user=user).filter(pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError({"recordings": [f"unknown recordings: {', '.join(map(str, missing))}"]})
    return [found[i] for i in dict.fromkeys(ids)]


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.InterventionError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc


def _when(value: str | None, name: str):
    """An ISO 8601 date-time with its offset, within what the database holds (config/api_fields.py)."""
    if not value:
        return None
    try:
        return AwareDateTimeField().run_validation(value)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from None


class InterventionPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


# --- Views -----------------------------------------------------------------------------------------

class InterventionList(APIView):
    @extend_schema(parameters=[
        OpenApiParameter("q", OpenApiTypes.STR, description="reference, place or notes"),
        OpenApiParameter("started_after", OpenApiTypes.DATETIME),
        OpenApiParameter("started_before", OpenApiTypes.DATETIME),
    ], responses={200: InterventionRowSerializer(many=True)})
    def get(self, request):
        """Interventions with a recording the caller may see (paginated: count, results)."""
        p = request.query_params
        if "\x00" in p.get("q", ""):
            raise ValidationError({"q": ["text without NUL characters"]})
        qs = selectors.intervention_search(user=request.user, q=p.get("q", ""),
                                           started_after=_when(p.get("started_after"), "started_after"),
                                           started_before=_when(p.get("started_before"), "started_before"))
        pager = InterventionPagination()
        page = pager.paginate_queryset(qs, request, view=self)
        rows = [{"reference": i.reference, "started_at": i.first_start, "ended_at": i.last_end, "place": i.place,
                 "url": request.build_absolute_uri(reverse("api-intervention", args=[i.reference]))} for i in page]
        return pager.get_paginated_response(InterventionRowSerializer(rows, many=True).data)

    @extend_schema(request=InterventionCreateSerializer, responses={201: InterventionSerializer})
    def post(self, request):
        """{"reference", "recordings": [ids], "notes"?} → 201 the detail."""
        data = InterventionCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        recordings = _recordings(request.user, v["recordings"])
        intervention = _call(services.intervention_create, by=request.user, reference=v["reference"],
                             recordings=recordings, notes=v["notes"], place=v["place"])
        return Response(intervention_body(intervention, request.user), status=status.HTTP_201_CREATED)


class InterventionDetail(APIView):
    @extend_schema(responses={200: InterventionSerializer})
    def get(self, request, reference: str):
        return Response(intervention_body(intervention_get(request.user, reference), request.user))


class InterventionRecordings(APIView):
    @extend_schema(request=RecordingIdsSerializer, responses={200: InterventionSerializer})
    def post(self, request, reference: str):
        """{"recordings": [ids]} links more recordings; the detail is returned."""
        intervention = intervention_get(request.user, reference)
        data = RecordingIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recordings = _recordings(request.user, data.validated_data["recordings"])
        _call(services.intervention_link, intervention=intervention, by=request.user, recordings=recordings)
        return Response(intervention_body(intervention, request.user))


class InterventionRecording(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, reference: str, pk: int):
        """Unlink one recording (supervisor)."""
        intervention = intervention_get(request.user, reference)
        recording = selectors.intervention_recordings_visible_to(user=request.user,
                                                                 intervention=intervention).filter(pk=pk).first()
        if recording is None:
            raise Http404
        _call(services.intervention_unlink, intervention=intervention, recording=recording, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InterventionSuggestions(APIView):
    @extend_schema(parameters=[OpenApiParameter("radius_m", OpenApiTypes.FLOAT)],
                   responses={200: InterventionRecordingSerializer(many=True)})
    def get(self, request, reference: str):
        """Recordings of other cameras overlapping in time near the first recording's track."""
        intervention = intervention_get(request.user, reference)
        try:
            radius = float(request.query_params.get("radius_m") or selectors.SUGGESTION_RADIUS_M)
        except ValueError:
            raise ValidationError({"radius_m": ["metres expected"]}) from None
        if not 0 < radius <= 50_000:
            raise ValidationError({"radius_m": ["between 0 and 50 000 metres"]})
        found = selectors.intervention_suggestions_for(user=request.user, intervention=intervention, radius_m=radius)
        return Response({"count": len(found), "results": [
            {"id": r.pk, "camera": r.camera.serial, "officer": _officer(r), "started_at": r.started_at,
             "ended_at": r.ended_at, "duration": r.duration, "location": r.location} for r in found]})

    @extend_schema(request=RecordingIdsSerializer, responses={200: InterventionSerializer})
    def post(self, request, reference: str):
        """Confirm suggested recordings (a supervisor, or the wearer of each)."""
        intervention = intervention_get(request.user, reference)
        data = RecordingIdsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recordings = _recordings(request.user, data.validated_data["recordings"])
        _call(services.intervention_suggestion_confirm, intervention=intervention, by=request.user,
              recordings=recordings)
        return Response(intervention_body(intervention, request.user))


class InterventionHolds(APIView):
    @extend_schema(request=InterventionHoldSerializer, responses={201: HoldSerializer})
    def post(self, request, reference: str):
        """Hold every recording linked to the intervention at this moment (CSI R241-13)."""
        from evidence.retention.holds import hold_place

        intervention = intervention_get(request.user, reference)
        data = InterventionHoldSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            hold = hold_place(by=request.user, procedure=v["procedure"], reference=v["reference"], motif=v["motif"],
                              intervention=intervention.reference)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except (ValueError, RetentionRefused) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(HoldSerializer(hold).data, status=status.HTTP_201_CREATED)


class InterventionExports(APIView):
    @extend_schema(request=InterventionExportSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, reference: str):
        """Export the intervention's linked recordings → {"id", "status", "recordings"}."""
        from ..disclosure import services as disclosure

        intervention = intervention_get(request.user, reference)
        data = InterventionExportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            export = disclosure.export_create(recordings=[], intervention=intervention, by=request.user, **v)
        except PermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except disclosure.DisclosureError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from exc
        export.refresh_from_db()
        return Response({"id": export.pk, "status": export.status,
                         "recordings": list(export.items.order_by("position").values_list("recording_id", flat=True))},
                        status=status.HTTP_201_CREATED)


class InterventionClock(APIView):
    @extend_schema(request=ClockCorrectionSerializer, responses={200: InterventionSerializer})
    def post(self, request, reference: str):
        """Correct one camera's clock within the intervention, with a motif (logged)."""
        intervention = intervention_get(request.user, reference)
        data = ClockCorrectionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        recordings = selectors.intervention_recordings_visible_to(user=request.user, intervention=intervention)
        camera = next((r.camera for r in recordings if r.camera.serial == v["camera"]), None)
        if camera is None:
            raise ValidationError({"camera": ["no recording of this camera in the intervention"]})
        _call(services.intervention_clock_correct, intervention=intervention, camera=camera, seconds=v["seconds"],
              by=request.user, motif=v["motif"])
        return Response(intervention_body(intervention, request.user))


class InterventionConsultations(APIView):
    @extend_schema(request=ConsultationsSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, reference: str):
        """One motif → one consultation per recording shown: [{"recording", "media_url", "expires_at"}]."""
        intervention = intervention_get(request.user, reference)
        data = ConsultationsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recordings = list(selectors.intervention_recordings_visible_to(user=request.user, intervention=intervention))
        opened = _call(services.intervention_consult, intervention=intervention, by=request.user,
                       recordings=recordings, motif=data.validated_data["motif"])
        return Response({"consultations": [
            {"recording": rec.pk,
             "media_url": request.build_absolute_uri(reverse("consultation-media", args=[token, "video"])),
             "expires_at": c.expires_at} for rec, c, token in opened]}, status=status.HTTP_201_CREATED)
