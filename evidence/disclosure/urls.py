"""Pages and API of disclosure (ARCHITECTURE.md §7), included at the site root by config/urls.py."""
from django.urls import path

from . import api, downloads, views

urlpatterns = [
    # Pages.
    path("extractions/", views.disclosure_list, name="disclosure-list"),
    path("enregistrements/<int:pk>/extraction/", views.recording_extract, name="recording-extract"),
    path("extractions/t/<str:token>/", downloads.extraction_download, name="extraction-download"),
    path("exports/<int:pk>/", views.export_detail, name="export-detail"),
    path("exports/<int:pk>/etat/", views.export_status, name="export-status"),
    path("exports/<int:pk>/telecharger/", downloads.export_download, name="export-download"),
    path("exports/<int:pk>/partages/", views.share_create, name="share-create"),
    path("partages/<int:pk>/revocation/", views.share_revoke, name="share-revoke"),
    path("partage/<str:token>/", downloads.share_public, name="share-public"),
    path("partage/<str:token>/telecharger/", downloads.share_download, name="share-download"),
    path("demandes-acces/", views.access_request_list, name="access-request-list"),
    path("demandes-acces/nouvelle/", views.access_request_create, name="access-request-create"),
    path("demandes-acces/<int:pk>/", views.access_request_detail, name="access-request-detail"),
    path("demandes-acces/<int:pk>/prolongation/", views.access_request_extend, name="access-request-extend"),
    path("demandes-acces/<int:pk>/enregistrements/", views.access_request_select, name="access-request-select"),
    path("demandes-acces/<int:pk>/decision/", views.access_request_decide, name="access-request-decide"),
    path("demandes-acces/<int:pk>/copie/", views.access_request_copy, name="access-request-copy"),
    path("demandes-acces/<int:pk>/remise/", views.access_request_deliver, name="access-request-deliver"),
    # API.
    path("api/recordings/<int:pk>/extractions/", api.RecordingExtraction.as_view(), name="api-recording-extractions"),
    path("api/exports/", api.ExportList.as_view(), name="api-exports"),
    path("api/exports/<int:pk>/", api.ExportDetail.as_view(), name="api-export"),
    path("api/exports/<int:pk>/download/", downloads.export_download, name="api-export-download"),
    path("api/exports/<int:pk>/shares/", api.ExportShares.as_view(), name="api-export-shares"),
    path("api/shares/<int:pk>/revoke/", api.ShareRevoke.as_view(), name="api-share-revoke"),
    path("api/access-requests/", api.AccessRequestList.as_view(), name="api-access-requests"),
    path("api/access-requests/<int:pk>/", api.AccessRequestDetail.as_view(), name="api-access-request"),
    path("api/access-requests/<int:pk>/extension/", api.AccessRequestExtension.as_view(),
         name="api-access-request-extension"),
    path("api/access-requests/<int:pk>/candidates/", api.AccessRequestCandidates.as_view(),
         name="api-access-request-candidates"),
    path("api/access-requests/<int:pk>/recordings/", api.AccessRequestRecordings.as_view(),
         name="api-access-request-recordings"),
    path("api/access-requests/<int:pk>/decision/", api.AccessRequestDecision.as_view(),
         name="api-access-request-decision"),
    path("api/access-requests/<int:pk>/copy/", api.AccessRequestCopy.as_view(), name="api-access-request-copy"),
    path("api/access-requests/<int:pk>/delivery/", api.AccessRequestDelivery.as_view(),
         name="api-access-request-delivery"),
]
