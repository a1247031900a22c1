"""HTTP API for disclosure (ARCHITECTURE.md §7): thin; reads through the selectors, writes through
the services. A recording, export or request the caller may not see answers 404; a visible one with
the wrong role answers 403; a refused request answers 400 with a French message naming the field.
"""
from __future__ import annotations

import datetime as dt
import math

from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.throttle import rate_limit
from evidence.access.selectors import access_request_search_base, recordings_visible_to

from . import selectors, services
from .models import AccessRequest, Export, LegalGround


# --- Schema (OpenAPI): what the endpoints read and answer. Input is checked by the services, whose
# refusals carry French messages naming the field. ----------------------------------------------------

class ExtractionRequestSchema(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=["judicial", "administrative", "disciplinary", "training"])
    recipient = serializers.CharField(max_length=300)
    motif = serializers.CharField(max_length=2000)
    redaction = serializers.ChoiceField(choices=["none", "others", "all"], required=False,
                                        help_text="training requires all (CSI R241-13)")


class ExtractionSchema(serializers.Serializer):
    id = serializers.IntegerField()
    download_url = serializers.URLField()
    expires_at = serializers.DateTimeField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()


class ExportRequestSchema(serializers.Serializer):
    recordings = serializers.ListField(child=serializers.IntegerField())
    purpose = serializers.ChoiceField(choices=["judicial", "administrative", "disciplinary", "training"])
    recipient = serializers.CharField(max_length=300)
    motif = serializers.CharField(max_length=2000)
    redaction = serializers.ChoiceField(choices=["none", "others", "all"])


class ExportCreatedSchema(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Export.Status.values)


class ExportSchema(serializers.Serializer):
    id = serializers.IntegerField()
    uuid = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Export.Status.values)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    purpose = serializers.CharField()
    recipient = serializers.CharField()
    motif = serializers.CharField()
    redaction = serializers.CharField()
    recordings = serializers.ListField(child=serializers.IntegerField())
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    status_message = serializers.CharField(allow_null=True)
    access_request = serializers.IntegerField(allow_null=True)
    download_url = serializers.URLField(required=False, help_text="when ready: the ZIP package")
    sha256 = serializers.CharField(required=False)
    size = serializers.IntegerField(required=False)
    manifest_sha256 = serializers.CharField(required=False)
    retain_until = serializers.DateTimeField(required=False)


class ExportListSchema(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ExportSchema(many=True)


class ShareRequestSchema(serializers.Serializer):
    recipient = serializers.CharField(max_length=300)
    expires_at = serializers.DateTimeField()
    max_downloads = serializers.IntegerField(min_value=1, max_value=100)


class ShareSchema(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField(help_text="public page for the recipient; shown once")
    expires_at = serializers.DateTimeField()
    max_downloads = serializers.IntegerField()


class ShareRevokeSchema(serializers.Serializer):
    motif = serializers.CharField(required=False)


class ShareRevokedSchema(serializers.Serializer):
    id = serializers.IntegerField()
    revoked_at = serializers.DateTimeField()


class AccessRequestCreateSchema(serializers.Serializer):
    requester_name = serializers.CharField(max_length=300)
    requester_contact = serializers.CharField(required=False)
    identity_checked = serializers.BooleanField()
    identity_check_method = serializers.CharField(required=False, help_text="required when identity_checked")
    received_on = serializers.DateField()
    description = serializers.CharField()
    window_start = serializers.DateTimeField(required=False)
    window_end = serializers.DateTimeField(required=False)
    place = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2, required=False,
                                  help_text="[lat, lon]")
    radius_m = serializers.IntegerField(required=False)
    officer = serializers.CharField(required=False)


class AccessRequestSchema(AccessRequestCreateSchema):
    id = serializers.IntegerField()
    deadline = serializers.DateField()
    overdue = serializers.BooleanField()
    extended = serializers.BooleanField()
    extension_notice_on = serializers.DateField(allow_null=True)
    extension_notice = serializers.CharField()
    recordings = serializers.ListField(child=serializers.IntegerField())
    decision = serializers.ChoiceField(choices=AccessRequest.Decision.values, allow_null=True)
    legal_ground = serializers.CharField(allow_null=True)
    decision_note = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    delivered_on = serializers.DateField(allow_null=True)
    delivery_means = serializers.CharField()
    closed = serializers.BooleanField()
    exports = serializers.ListField(child=serializers.IntegerField())


class AccessRequestListSchema(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AccessRequestSchema(many=True)


class ExtensionSchema(serializers.Serializer):
    notice_on = serializers.DateField(help_text="within one month of receipt (GDPR art. 12(3))")
    notice = serializers.CharField()


class CandidateSchema(serializers.Serializer):
    id = serializers.IntegerField()
    camera = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    officer = serializers.CharField(allow_null=True)
    location = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    intervention = serializers.CharField()
    status = serializers.CharField()


class CandidatesSchema(serializers.Serializer):
    criteria = serializers.DictField()
    count = serializers.IntegerField()
    results = CandidateSchema(many=True)


class SelectionSchema(serializers.Serializer):
    recordings = serializers.ListField(child=serializers.IntegerField())


class DecisionSchema(serializers.Serializer):
    decision = serializers.ChoiceField(choices=AccessRequest.Decision.values)
    legal_ground = serializers.ChoiceField(choices=LegalGround.values, required=False,
                                           help_text="required for partial and refused (LIL art. 107 II)")
    note = serializers.CharField(required=False)


class DeliverySchema(serializers.Serializer):
    delivered_on = serializers.DateField()
    means = serializers.CharField()


def _call(fn, **kwargs):
    """Run a service; turn its refusals into HTTP answers."""
    try:
        return fn(**kwargs)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.DisclosureError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc


def _data(request) -> dict:
    """The JSON body, which must be an object (issue 17 finding 5: a list gave a 500)."""
    from collections.abc import Mapping

    if not isinstance(request.data, Mapping):
        raise ValidationError({"detail": [_("Objet JSON attendu.")]})
    return request.data


def _strict_int(v) -> int:
    """An integer as written: 7.9, "7.9", true or 2**63 are refused, never rounded (issue 17)."""
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise ValueError(v)
    n = int(v.strip()) if isinstance(v, str) else v
    if not 0 <= n < 2 ** 63:
        raise ValueError(v)
    return n


def _int_list(value, field: str) -> list[int]:
    if not isinstance(value, list) or not value:
        raise ValidationError({field: [_("Liste de numéros d'enregistrements attendue.")]})
    try:
        return [_strict_int(v) for v in value]
    except (TypeError, ValueError):
        raise ValidationError({field: [_("Liste de numéros d'enregistrements attendue.")]}) from None


def _visible_recordings(user, ids: list[int], base=None):
    found = {r.pk: r for r in (base if base is not None else recordings_visible_to(user=user)).filter(pk__in=ids)}
    if len(found) != len(set(ids)):
        raise NotFound(_("Enregistrement introuvable."))
    return [found[i] for i in dict.fromkeys(ids)]


def _datetime(value, field: str, required: bool = False):
    if value in (None, ""):
        if required:
            raise ValidationError({field: [_("Date et heure ISO 8601 attendues, avec fuseau horaire.")]})
        return None
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
    if parsed is None or timezone.is_naive(parsed):
        raise ValidationError({field: [_("Date et heure ISO 8601 attendues, avec fuseau horaire.")]})
    return parsed


def _date(value, field: str):
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_date(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ValidationError({field: [_("Date attendue (AAAA-MM-JJ).")]})
    return parsed


# --- Extraction of one recording -------------------------------------------------------------------

class RecordingExtraction(APIView):
    @extend_schema(request=ExtractionRequestSchema, responses={201: ExtractionSchema})
    def post(self, request, pk: int):
        """{"purpose", "recipient", "motif"[, "redaction"]} → {"download_url", "expires_at"}; logged first."""
        recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
        d = _data(request)
        extraction, token = _call(services.extraction_create, recording=recording, by=request.user,
                                  purpose=d.get("purpose") or "", recipient=d.get("recipient"), motif=d.get("motif"),
                                  redaction=d.get("redaction") or "none")
        return Response({"id": extraction.pk,
                         "download_url": request.build_absolute_uri(reverse("extraction-download", args=[token])),
                         "expires_at": extraction.expires_at, "sha256": extraction.sha256, "size": extraction.size},
                        status=status.HTTP_201_CREATED)


# --- Export packages ---------------------------------------------------------------------------------

def export_body(export: Export, request) -> dict:
    body = {"id": export.pk, "uuid": str(export.uuid), "status": export.status, "progress": export.progress,
            "purpose": export.purpose, "recipient": export.recipient, "motif": export.motif,
            "redaction": export.redaction, "recordings": [i.recording_id for i in export.items.all()],
            "created_at": export.created_at, "finished_at": export.finished_at,
            "status_message": export.status_message or None, "access_request": export.access_request_id}
    if export.status == Export.Status.READY:
        body.update({"download_url": request.build_absolute_uri(reverse("api-export-download", args=[export.pk])),
                     "sha256": export.sha256, "size": export.size, "manifest_sha256": export.manifest_sha256,
                     "retain_until": export.retain_until})
    return body


class ExportList(APIView):
    @extend_schema(responses={200: ExportListSchema})
    def get(self, request):
        # Paginated (50 a page, ?page=n), items prefetched: no longer the first 200 with a query each.
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            selectors.exports_visible_to(user=request.user).prefetch_related("items"), request, view=self)
        return paginator.get_paginated_response([export_body(e, request) for e in page])

    @extend_schema(request=ExportRequestSchema, responses={201: ExportCreatedSchema})
    def post(self, request):
        """{"recordings": [ids], "purpose", "recipient", "motif", "redaction"} → {"id", "status"}."""
        d = _data(request)
        recordings = _visible_recordings(request.user, _int_list(d.get("recordings"), "recordings"))
        export = _call(services.export_create, recordings=recordings, by=request.user,
                       purpose=d.get("purpose") or "", recipient=d.get("recipient"), motif=d.get("motif"),
                       redaction=d.get("redaction") or "none")
        export.refresh_from_db()
        return Response({"id": export.pk, "status": export.status}, status=status.HTTP_201_CREATED)


class ExportDetail(APIView):
    @extend_schema(responses={200: ExportSchema})
    def get(self, request, pk: int):
        export = get_object_or_404(selectors.exports_visible_to(user=request.user), pk=pk)
        return Response(export_body(export, request))


class ExportShares(APIView):
    @extend_schema(request=ShareRequestSchema, responses={201: ShareSchema})
    def post(self, request, pk: int):
        """{"recipient", "expires_at", "max_downloads"} → {"id", "url"}."""
        export = get_object_or_404(selectors.exports_visible_to(user=request.user), pk=pk)
        d = _data(request)
        max_downloads = d.get("max_downloads")
        if isinstance(max_downloads, str) and max_downloads.isdigit():
            max_downloads = int(max_downloads)
        share, token = _call(services.share_create, export=export, by=request.user, recipient=d.get("recipient"),
                             expires_at=_datetime(d.get("expires_at"), "expires_at", required=True),
                             max_downloads=max_downloads)
        return Response({"id": share.pk, "url": request.build_absolute_uri(reverse("share-public", args=[token])),
                         "expires_at": share.expires_at, "max_downloads": share.max_downloads},
                        status=status.HTTP_201_CREATED)


class ShareRevoke(APIView):
    @extend_schema(request=ShareRevokeSchema, responses={200: ShareRevokedSchema})
    def post(self, request, pk: int):
        share = get_object_or_404(selectors.shares_visible_to(user=request.user), pk=pk)
        share = _call(services.share_revoke, share=share, by=request.user, motif=_data(request).get("motif") or "")
        return Response({"id": share.pk, "revoked_at": share.revoked_at})


# --- Data-subject access requests ----------------------------------------------------------------------

def access_request_body(r: AccessRequest, today: dt.date) -> dict:
    return {
        "id": r.pk, "requester_name": r.requester_name, "requester_contact": r.requester_contact,
        "identity_checked": r.identity_checked, "identity_check_method": r.identity_check_method,
        "received_on": r.received_on, "description": r.description, "window_start": r.window_start,
        "window_end": r.window_end, "place": r.place, "radius_m": r.radius_m, "officer": r.officer,
        "deadline": r.deadline, "overdue": r.closed_at is None and r.deadline < today, "extended": r.extended,
        "extension_notice_on": r.extension_notice_on, "extension_notice": r.extension_notice,
        "recordings": [x.pk for x in r.recordings.all()], "decision": r.decision or None,
        "legal_ground": r.legal_ground or None, "decision_note": r.decision_note, "decided_at": r.decided_at,
        "delivered_on": r.delivered_on, "delivery_means": r.delivery_means, "closed": r.closed_at is not None,
        "exports": list(r.exports.values_list("pk", flat=True)),
    }


def _readable(request):
    if request.user.role not in selectors.ACCESS_REQUEST_READERS:
        raise PermissionDenied(_("Les demandes d'accès sont réservées au délégué à la protection des données et au "
                                 "maire."))


def _place(d):
    place = d.get("place")
    if place in (None, "", []):
        return None
    if not isinstance(place, list) or len(place) != 2:
        raise ValidationError({"place": [_("Lieu : [latitude, longitude] attendu.")]})
    return place


def _radius(value):
    if value in (None, ""):
        return None
    try:
        return _strict_int(value)
    except (TypeError, ValueError):
        raise ValidationError({"radius_m": [_("Rayon en mètres attendu (nombre entier).")]}) from None


class AccessRequestList(APIView):
    @extend_schema(responses={200: AccessRequestListSchema},
                   parameters=[OpenApiParameter("all", OpenApiTypes.BOOL, description="closed requests too")])
    def get(self, request):
        """Open requests by deadline (``?all=1`` also lists the closed ones)."""
        _readable(request)
        qs = (selectors.access_requests_visible_to(user=request.user).order_by("deadline", "id")
              if request.query_params.get("all") else selectors.access_requests_open(user=request.user))
        today = timezone.localdate()
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs.prefetch_related("recordings"), request, view=self)
        return paginator.get_paginated_response([access_request_body(r, today) for r in page])

    @extend_schema(request=AccessRequestCreateSchema, responses={201: AccessRequestSchema})
    def post(self, request):
        _readable(request)
        d = _data(request)
        identity_checked = d.get("identity_checked")
        received = d.get("received_on")
        r = _call(services.access_request_register, by=request.user, requester_name=d.get("requester_name"),
                  requester_contact=d.get("requester_contact") or "",
                  identity_checked=identity_checked if isinstance(identity_checked, bool) else None,
                  identity_check_method=d.get("identity_check_method") or "",
                  received_on=_date(received, "received_on") if received else None,
                  description=d.get("description"), window_start=_datetime(d.get("window_start"), "window_start"),
                  window_end=_datetime(d.get("window_end"), "window_end"), place=_place(d),
                  radius_m=_radius(d.get("radius_m")), officer=d.get("officer") or "")
        return Response(access_request_body(r, timezone.localdate()), status=status.HTTP_201_CREATED)


def _request_for(request, pk: int) -> AccessRequest:
    return get_object_or_404(selectors.access_requests_visible_to(user=request.user), pk=pk)


class AccessRequestDetail(APIView):
    @extend_schema(responses={200: AccessRequestSchema})
    def get(self, request, pk: int):
        return Response(access_request_body(_request_for(request, pk), timezone.localdate()))


class AccessRequestExtension(APIView):
    @extend_schema(request=ExtensionSchema, responses={200: AccessRequestSchema})
    def post(self, request, pk: int):
        r = _request_for(request, pk)
        d = _data(request)
        r = _call(services.access_request_extend, request=r, by=request.user,
                  notice_on=_date(d.get("notice_on"), "notice_on"), notice=d.get("notice"))
        return Response(access_request_body(r, timezone.localdate()))


def candidate_body(rec) -> dict:
    return {"id": rec.pk, "camera": rec.camera.serial, "started_at": rec.started_at, "ended_at": rec.ended_at,
            "officer": (rec.wearer.matricule or rec.wearer.username) if rec.wearer_id else None,
            "location": rec.location, "intervention": rec.intervention, "status": rec.status}


def search_candidates(*, request_row: AccessRequest, user, params) -> tuple[list, dict]:
    """Criteria from the query (or, absent, from the request itself); the search is logged."""
    def get(name, default):
        value = params.get(name)
        return value if value not in (None, "") else default

    start = _datetime(get("start", None), "start") if params.get("start") else request_row.window_start
    end = _datetime(get("end", None), "end") if params.get("end") else request_row.window_end
    place = request_row.place
    if params.get("lat") and params.get("lon"):
        try:
            place = [float(params["lat"]), float(params["lon"])]
        except ValueError:
            raise ValidationError({"place": [_("Latitude et longitude numériques attendues.")]}) from None
        # "nan", "inf", "1e400" parse as floats: they would reach the custody log, which refuses them.
        if not (math.isfinite(place[0]) and math.isfinite(place[1])
                and -90 <= place[0] <= 90 and -180 <= place[1] <= 180):
            raise ValidationError({"place": [_("Latitude entre -90 et 90, longitude entre -180 et 180 attendues.")]})
    radius = _radius(get("radius_m", request_row.radius_m))
    officer = get("officer", request_row.officer)
    if officer and any(ord(c) < 32 for c in officer):
        raise ValidationError({"officer": [_("Matricule sans caractère de contrôle attendu.")]})
    intervention = None
    if params.get("intervention"):  # issue #21: search among one intervention's recordings
        from evidence.interventions.models import Intervention

        # The search runs over the request's organisation (the DPO searches candidates there, issue 15),
        # not over what the searcher may already watch.
        intervention = Intervention.objects.filter(organisation_id=request_row.organisation_id,
                                                   reference=params["intervention"].strip()).first()
        if intervention is None:
            raise ValidationError({"intervention": [_("Intervention inconnue.")]})
    found = selectors.access_request_candidates(user=user, start=start, end=end, place=place, radius_m=radius,
                                                officer=officer, intervention=intervention)
    criteria = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None,
                "place": place, "radius_m": radius, "officer": officer or None,
                "intervention": intervention.reference if intervention else None}
    _call(services.access_request_search_record, request=request_row, by=user, criteria=criteria,
          found=[r.pk for r in found])
    return found, criteria


def searcher_of(request) -> str:
    return f"user:{request.user.pk}"


class AccessRequestCandidates(APIView):
    # Each search reads the organisation's recordings by time and place: bounded per user (issue 17).
    @method_decorator(rate_limit("access_request.search", setting="TEMOIN_RATE_ACCESS_REQUEST_SEARCH",
                                 source=searcher_of, json=True))
    @extend_schema(responses={200: CandidatesSchema}, parameters=[
        OpenApiParameter("start", OpenApiTypes.DATETIME), OpenApiParameter("end", OpenApiTypes.DATETIME),
        OpenApiParameter("lat", OpenApiTypes.FLOAT), OpenApiParameter("lon", OpenApiTypes.FLOAT),
        OpenApiParameter("radius_m", OpenApiTypes.INT), OpenApiParameter("officer", OpenApiTypes.STR),
        OpenApiParameter("intervention", OpenApiTypes.STR, description="an intervention's reference")])
    def get(self, request, pk: int):
        """Candidate recordings by time window, place (within ``radius_m`` of lat/lon) and officer."""
        r = _request_for(request, pk)
        found, criteria = search_candidates(request_row=r, user=request.user, params=request.query_params)
        return Response({"criteria": criteria, "count": len(found), "results": [candidate_body(c) for c in found]})


class AccessRequestRecordings(APIView):
    @extend_schema(request=SelectionSchema, responses={200: AccessRequestSchema})
    def post(self, request, pk: int):
        """{"recordings": [ids]}: the recordings that show the requester."""
        r = _request_for(request, pk)
        ids = _data(request).get("recordings")
        # The DPO selects among the search's results (ARCHITECTURE.md §1), not among what they may play.
        recordings = _visible_recordings(request.user, _int_list(ids, "recordings"),
                                         access_request_search_base(user=request.user)) if ids else []
        r = _call(services.access_request_select, request=r, by=request.user, recordings=recordings)
        return Response(access_request_body(r, timezone.localdate()))


class AccessRequestDecision(APIView):
    @extend_schema(request=DecisionSchema, responses={200: AccessRequestSchema})
    def post(self, request, pk: int):
        r = _request_for(request, pk)
        d = _data(request)
        r = _call(services.access_request_decide, request=r, by=request.user, decision=d.get("decision") or "",
                  legal_ground=d.get("legal_ground") or "", note=d.get("note") or "")
        return Response(access_request_body(r, timezone.localdate()))


class AccessRequestCopy(APIView):
    @extend_schema(request=None, responses={201: ExportCreatedSchema})
    def post(self, request, pk: int):
        """The copy for the requester (other people blurred): an export package → {"id", "status"}."""
        r = _request_for(request, pk)
        export = _call(services.access_request_copy, request=r, by=request.user)
        export.refresh_from_db()
        return Response({"id": export.pk, "status": export.status}, status=status.HTTP_201_CREATED)


class AccessRequestDelivery(APIView):
    @extend_schema(request=DeliverySchema, responses={200: AccessRequestSchema})
    def post(self, request, pk: int):
        r = _request_for(request, pk)
        d = _data(request)
        r = _call(services.access_request_deliver, request=r, by=request.user,
                  delivered_on=_date(d.get("delivered_on"), "delivered_on"), means=d.get("means"))
        return Response(access_request_body(r, timezone.localdate()))
