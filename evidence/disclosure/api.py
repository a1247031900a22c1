"""HTTP API for disclosure (ARCHITECTURE.md §7): thin; reads through the selectors, writes through
the services. A recording, export or request the caller may not see answers 404; a visible one with
the wrong role answers 403; a refused request answers 400 with French messages by field.

Each operation reads its input through a serializer (issue 15 item 6), so the OpenAPI schema is what
the code accepts: types, bounds, required fields, and the 4xx bodies. The serializers check the
*shape*; the services check the *rules* (roles, CSI and GDPR deadlines, redaction), and their
refusals name the field too.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from audit.throttle import rate_limit
from config.api_fields import error_responses
from evidence.access.selectors import access_request_search_base, recordings_visible_to

from . import access_requests, selectors, services, shares
from .models import AccessRequest
from .serializers import (
    ExtractionCreateSerializer,
    ExportCreateSerializer,
    ShareCreateSerializer,
    ShareRevokeSerializer,
    AccessRequestCreateSerializer,
    ExtensionSerializer,
    SelectionSerializer,
    DecisionSerializer,
    DeliverySerializer,
    CandidateQuerySerializer,
    ExtractionSerializer,
    ExportCreatedSerializer,
    ExportSerializer,
    ShareSerializer,
    ShareRevokedSerializer,
    AccessRequestSerializer,
    CandidatesSerializer,
)


def _read(serializer_class, request, *, data=None) -> dict:
    serializer = serializer_class(data=request.data if data is None else data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _call(fn, **kwargs):
    """Run a service; turn its refusals into HTTP answers."""
    try:
        return fn(**kwargs)
    except PermissionError as exc:
        raise PermissionDenied(str(exc)) from exc
    except services.DisclosureError as exc:
        raise ValidationError({exc.field: [str(exc)]}) from exc


def _visible_recordings(user, ids: list[int], base=None):
    found = {r.pk: r for r in (base if base is not None else recordings_visible_to(user=user)).filter(pk__in=ids)}
    if len(found) != len(set(ids)):
        raise NotFound(_lazy("Enregistrement introuvable."))
    return [found[i] for i in dict.fromkeys(ids)]


# --- Extraction of one recording -------------------------------------------------------------------

class RecordingExtraction(generics.GenericAPIView):
    serializer_class = ExtractionCreateSerializer

    @extend_schema(request=ExtractionCreateSerializer,
                   responses={201: ExtractionSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        """One recording for a procedure → a short-lived download link; logged before any byte leaves."""
        recording = get_object_or_404(recordings_visible_to(user=request.user), pk=pk)
        d = _read(ExtractionCreateSerializer, request)
        extraction, token = _call(services.extraction_create, recording=recording, by=request.user, **d)
        body = {"id": extraction.pk,
                "download_url": request.build_absolute_uri(reverse("extraction-download", args=[token])),
                "expires_at": extraction.expires_at, "sha256": extraction.sha256, "size": extraction.size}
        return Response(ExtractionSerializer(body).data, status=status.HTTP_201_CREATED)


# --- Export packages ---------------------------------------------------------------------------------

class ExportList(generics.ListAPIView):
    """Exports the caller may read, newest first, 50 a page (``?page=n``), items prefetched."""

    serializer_class = ExportSerializer

    def get_queryset(self):
        return selectors.exports_visible_to(user=self.request.user).prefetch_related("items")

    @extend_schema(responses={200: ExportSerializer(many=True), **error_responses(401)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=ExportCreateSerializer,
                   responses={201: ExportCreatedSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request):
        """Recordings for a procedure → a package built in the background (``status`` until ready)."""
        d = _read(ExportCreateSerializer, request)
        recordings = _visible_recordings(request.user, d.pop("recordings"))
        export = _call(services.export_create, recordings=recordings, by=request.user, **d)
        export.refresh_from_db()
        return Response(ExportCreatedSerializer(export).data, status=status.HTTP_201_CREATED)


class ExportDetail(generics.RetrieveAPIView):
    serializer_class = ExportSerializer

    def get_queryset(self):
        return selectors.exports_visible_to(user=self.request.user).prefetch_related("items")

    @extend_schema(responses={200: ExportSerializer, **error_responses(401, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ExportShares(generics.GenericAPIView):
    serializer_class = ShareCreateSerializer

    @extend_schema(request=ShareCreateSerializer, responses={201: ShareSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        """A link for one outside recipient, with expiry and a download limit."""
        export = get_object_or_404(selectors.exports_visible_to(user=request.user), pk=pk)
        d = _read(ShareCreateSerializer, request)
        share, token = _call(shares.share_create, export=export, by=request.user, **d)
        body = {"id": share.pk, "url": request.build_absolute_uri(reverse("share-public", args=[token])),
                "expires_at": share.expires_at, "max_downloads": share.max_downloads}
        return Response(ShareSerializer(body).data, status=status.HTTP_201_CREATED)


class ShareRevoke(generics.GenericAPIView):
    serializer_class = ShareRevokeSerializer

    @extend_schema(request=ShareRevokeSerializer,
                   responses={200: ShareRevokedSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        share = get_object_or_404(selectors.shares_visible_to(user=request.user), pk=pk)
        motif = _read(ShareRevokeSerializer, request).get("motif") or ""
        share = _call(shares.share_revoke, share=share, by=request.user, motif=motif)
        return Response(ShareRevokedSerializer(share).data)


# --- Data-subject access requests ----------------------------------------------------------------------

def _readable(request):
    if request.user.role not in selectors.ACCESS_REQUEST_READERS:
        raise PermissionDenied(_lazy("Les demandes d'accès sont réservées au délégué à la protection des données et "
                                     "au maire."))


def _answer(r: AccessRequest, code=status.HTTP_200_OK) -> Response:
    return Response(AccessRequestSerializer(r).data, status=code)


class AccessRequestList(generics.ListAPIView):
    """Open requests by deadline (``?all=1`` also lists the closed ones), 50 a page."""

    serializer_class = AccessRequestSerializer

    def get_queryset(self):
        _readable(self.request)
        user = self.request.user
        qs = (selectors.access_requests_visible_to(user=user).order_by("deadline", "id")
              if self.request.query_params.get("all") else selectors.access_requests_open(user=user))
        return qs.prefetch_related("recordings", "exports")

    @extend_schema(responses={200: AccessRequestSerializer(many=True), **error_responses(401, 403)},
                   parameters=[OpenApiParameter("all", OpenApiTypes.BOOL, description="closed requests too")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=AccessRequestCreateSerializer,
                   responses={201: AccessRequestSerializer, **error_responses(400, 401, 403)})
    def post(self, request):
        """Register a request received from a person filmed (GDPR art. 15, LIL art. 105)."""
        _readable(request)
        d = _read(AccessRequestCreateSerializer, request)
        for name in ("requester_contact", "identity_check_method", "officer"):
            d[name] = d.get(name) or ""
        r = _call(access_requests.access_request_register, by=request.user, **d)
        return _answer(r, status.HTTP_201_CREATED)


def _request_for(request, pk: int) -> AccessRequest:
    return get_object_or_404(selectors.access_requests_visible_to(user=request.user), pk=pk)


class AccessRequestDetail(generics.GenericAPIView):
    serializer_class = AccessRequestSerializer

    @extend_schema(responses={200: AccessRequestSerializer, **error_responses(401, 404)})
    def get(self, request, pk: int):
        return _answer(_request_for(request, pk))


class AccessRequestExtension(generics.GenericAPIView):
    serializer_class = ExtensionSerializer

    @extend_schema(request=ExtensionSerializer, responses={200: AccessRequestSerializer,
                                                           **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        """Extend the deadline by two months, once, with the notice given to the requester."""
        r = _request_for(request, pk)
        d = _read(ExtensionSerializer, request)
        return _answer(_call(access_requests.access_request_extend, request=r, by=request.user, **d))


def search_candidates(*, request_row: AccessRequest, user, params) -> tuple[list, dict]:
    """Criteria from the query (or, absent, from the request itself); the search is logged.
    Refusals are DRF ``ValidationError``s naming the parameter (the page shows them too)."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    serializer = CandidateQuerySerializer(data=query)
    serializer.is_valid(raise_exception=True)
    q = serializer.validated_data
    start = q.get("start", request_row.window_start)
    end = q.get("end", request_row.window_end)
    place = [q["lat"], q["lon"]] if "lat" in q else request_row.place
    radius = q.get("radius_m", request_row.radius_m)
    officer = q.get("officer", request_row.officer)
    intervention = None
    if q.get("intervention"):  # issue #21: search among one intervention's recordings
        from evidence.interventions.models import Intervention

        # The search runs over the request's organisation (the DPO searches candidates there, issue 15),
        # not over what the searcher may already watch.
        intervention = Intervention.objects.filter(organisation_id=request_row.organisation_id,
                                                   reference=q["intervention"].strip()).first()
        if intervention is None:
            raise ValidationError({"intervention": [_lazy("Intervention inconnue.")]})
    found = selectors.access_request_candidates(user=user, start=start, end=end, place=place, radius_m=radius,
                                                officer=officer, intervention=intervention)
    criteria = {"start": start.isoformat() if start else None, "end": end.isoformat() if end else None,
                "place": place, "radius_m": radius, "officer": officer or None,
                "intervention": intervention.reference if intervention else None}
    _call(access_requests.access_request_search_record, request=request_row, by=user, criteria=criteria,
          found=[r.pk for r in found])
    return found, criteria


def searcher_of(request) -> str:
    return f"user:{request.user.pk}"


class AccessRequestCandidates(generics.GenericAPIView):
    serializer_class = CandidatesSerializer

    # Each search reads the organisation's recordings by time and place: bounded per user (issue 17).
    @method_decorator(rate_limit("access_request.search", setting="TEMOIN_RATE_ACCESS_REQUEST_SEARCH",
                                 source=searcher_of, json=True))
    @extend_schema(parameters=[CandidateQuerySerializer],
                   responses={200: CandidatesSerializer, **error_responses(400, 401, 403, 404, 429)})
    def get(self, request, pk: int):
        """Candidate recordings by time window, place (within ``radius_m`` of lat/lon) and officer."""
        r = _request_for(request, pk)
        found, criteria = search_candidates(request_row=r, user=request.user, params=request.query_params)
        return Response(CandidatesSerializer({"criteria": criteria, "count": len(found), "results": found}).data)


class AccessRequestRecordings(generics.GenericAPIView):
    serializer_class = SelectionSerializer

    @extend_schema(request=SelectionSerializer, responses={200: AccessRequestSerializer,
                                                           **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        """The recordings that show the requester."""
        r = _request_for(request, pk)
        ids = _read(SelectionSerializer, request)["recordings"]
        # The DPO selects among the search's results (ARCHITECTURE.md §1), not among what they may play.
        recordings = _visible_recordings(request.user, ids, access_request_search_base(user=request.user)) if ids else []
        return _answer(_call(access_requests.access_request_select, request=r, by=request.user, recordings=recordings))


class AccessRequestDecision(generics.GenericAPIView):
    serializer_class = DecisionSerializer

    @extend_schema(request=DecisionSerializer, responses={200: AccessRequestSerializer,
                                                          **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        r = _request_for(request, pk)
        d = _read(DecisionSerializer, request)
        return _answer(_call(access_requests.access_request_decide, request=r, by=request.user, decision=d["decision"],
                             legal_ground=d.get("legal_ground") or "", note=d.get("note") or ""))


class AccessRequestCopy(generics.GenericAPIView):
    serializer_class = ExportCreatedSerializer

    @extend_schema(request=None, responses={201: ExportCreatedSerializer, **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        """The copy for the requester (other people blurred): an export package."""
        r = _request_for(request, pk)
        export = _call(access_requests.access_request_copy, request=r, by=request.user)
        export.refresh_from_db()
        return Response(ExportCreatedSerializer(export).data, status=status.HTTP_201_CREATED)


class AccessRequestDelivery(generics.GenericAPIView):
    serializer_class = DeliverySerializer

    @extend_schema(request=DeliverySerializer, responses={200: AccessRequestSerializer,
                                                          **error_responses(400, 401, 403, 404)})
    def post(self, request, pk: int):
        r = _request_for(request, pk)
        d = _read(DeliverySerializer, request)
        return _answer(_call(access_requests.access_request_deliver, request=r, by=request.user, **d))
