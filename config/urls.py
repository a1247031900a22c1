from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from accounts import views as account_views
from evidence import views
from evidence.media import views as media
from evidence.api import HoldViewSet, RecordingViewSet
from evidence.requisitions import pages as requisition_pages
from evidence.requisitions import views as requisitions
from evidence.requisitions.api import RequisitionViewSet

from .schema import load_schema_extensions

load_schema_extensions()  # before any request thread (config/schema.py)

router = DefaultRouter()
router.register("recordings", RecordingViewSet, basename="api-recording")
router.register("holds", HoldViewSet, basename="api-hold")
router.register("requisitions", RequisitionViewSet, basename="api-requisition")

urlpatterns = [
    path("", views.recording_list, name="recording-list"),
    path("enregistrements/<int:pk>/", views.recording_detail, name="recording-detail"),
    path("enregistrements/<int:pk>/conservations/", views.hold_place, name="hold-place"),
    path("conservations/<int:pk>/levee/", views.hold_release, name="hold-release"),
    path("conservations/", views.holds_in_force, name="holds-in-force"),
    path("effacements/", views.erasures_upcoming, name="erasures-upcoming"),
    path("a-completer/", views.to_complete, name="to-complete"),
    path("a-completer/lot/", views.to_complete_batch, name="to-complete-batch"),
    path("enregistrements/<int:pk>/lecture/", views.recording_play, name="recording-play"),
    path("media/c/<str:token>/<str:part>", media.consultation_media, name="consultation-media"),
    path("enregistrements/<int:pk>/commentaires/", views.annotation_add, name="annotation-add"),
    path("enregistrements/<int:pk>/revue/", views.recording_review, name="recording-review"),
    path("revue/", views.review_queue, name="review-queue"),
    path("revue/lot/", views.review_batch, name="review-batch"),
    path("habilitations/", views.grants, name="grants"),
    path("enregistrements/<int:pk>/etiquettes/", views.recording_tag, name="recording-tag"),
    path("connexion/", account_views.LoginView.as_view(), name="login"),
    path("connexion/code/", account_views.otp_verify, name="otp-verify"),
    path("connexion/code/activation/", account_views.otp_setup, name="otp-setup"),
    path("utilisateurs/", account_views.users, name="users"),
    path("mon-compte/mot-de-passe/", account_views.password_change, name="password-change"),
    path("utilisateurs/habilitations/", account_views.role_approvals, name="role-approvals"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    # Django's set_language, which also keeps a signed-in user's choice on the account (e-mails).
    path("i18n/setlang/", account_views.language_set, name="set_language"),
    path("admin/", admin.site.urls),
    path("", include("audit.urls")),
    path("axis/", include("devices.axis.urls")),
    path("", include("evidence.disclosure.urls")),
    path("", include("evidence.redaction.urls")),
    path("", include("evidence.dashboard.urls")),
    path("", include("devices.urls")),
    path("", include("config.ops.urls")),
    path("", include("evidence.interventions.urls")),
    # A partner's tus upload link (issue 22): the token in the URL is its only credential.
    path("requisitions/", requisition_pages.requisition_list, name="requisition-list"),
    path("requisitions/<int:pk>/", requisition_pages.requisition_detail, name="requisition-detail"),
    path("requisitions/depot/<str:token>/", requisitions.tus_uploads, name="requisition-tus-uploads"),
    path("requisitions/depot/<str:token>/declaration/", requisition_pages.depot_declare,
         name="requisition-declare"),
    path("requisitions/depot/<str:token>/<str:uid>", requisitions.tus_upload, name="requisition-tus-upload"),
    path("api/", include(router.urls)),
    # The schema maps every route and parameter: for signed-in users and token holders only (issue 17).
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    path("api/docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
]
