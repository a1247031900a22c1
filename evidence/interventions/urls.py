"""Interventions: the API (contract in the README) and the page. References may contain "/": the
``path`` converter takes them whole, and the longer paths come first."""
from django.urls import path

from . import api, views

urlpatterns = [
    path("api/interventions/", api.InterventionList.as_view(), name="api-interventions"),
    path("api/interventions/<path:reference>/recordings/<int:pk>/", api.InterventionRecording.as_view(),
         name="api-intervention-recording"),
    path("api/interventions/<path:reference>/recordings/", api.InterventionRecordings.as_view(),
         name="api-intervention-recordings"),
    path("api/interventions/<path:reference>/suggestions/", api.InterventionSuggestions.as_view(),
         name="api-intervention-suggestions"),
    path("api/interventions/<path:reference>/holds/", api.InterventionHolds.as_view(), name="api-intervention-holds"),
    path("api/interventions/<path:reference>/exports/", api.InterventionExports.as_view(),
         name="api-intervention-exports"),
    path("api/interventions/<path:reference>/clock/", api.InterventionClock.as_view(), name="api-intervention-clock"),
    path("api/interventions/<path:reference>/consultations/", api.InterventionConsultations.as_view(),
         name="api-intervention-consultations"),
    path("api/interventions/<path:reference>/", api.InterventionDetail.as_view(), name="api-intervention"),
    path("interventions/", views.intervention_list, name="intervention-list"),
    path("interventions/<path:reference>/consultation/", views.intervention_consult, name="intervention-consult"),
    path("interventions/<path:reference>/horloge/", views.intervention_clock, name="intervention-clock"),
    path("interventions/<path:reference>/suggestions/", views.intervention_suggestions_confirm,
         name="intervention-suggestions"),
    path("interventions/<path:reference>/", views.intervention_detail, name="intervention-detail"),
]
