from django.urls import path

from . import api, views

urlpatterns = [
    path("registre/", views.register, name="register"),
    path("registre/export.csv", views.register_export, {"fmt": "csv"}, name="register-export-csv"),
    path("registre/export.pdf", views.register_export, {"fmt": "pdf"}, name="register-export-pdf"),
    path("journal/", views.journal, name="custody-journal"),
    path("journal/verifier/", views.journal_verify, name="custody-journal-verify"),
    path("journal/alertes/<int:pk>/acquitter/", views.alert_acknowledge, name="custody-alert-acknowledge"),
    path("conformite/", views.compliance, name="compliance"),
    path("conformite/controler/", views.compliance_run, name="compliance-run"),
    path("conformite/rapport.json", views.compliance_report, {"fmt": "json"}, name="compliance-report-json"),
    path("conformite/rapport.pdf", views.compliance_report, {"fmt": "pdf"}, name="compliance-report-pdf"),
    path("journal/cle-publique/", views.public_key, name="custody-public-key"),
    path("journal/cle-publique.pem", views.public_key_pem, name="custody-public-key-pem"),
    path("enregistrements/<int:pk>/tracabilite/", views.recording_custody, name="recording-custody"),
    path("enregistrements/<int:pk>/tracabilite.pdf", views.recording_custody_pdf, name="recording-custody-pdf"),
    path("api/register/", api.RegisterList.as_view(), name="api-register"),
]
