from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from evidence import views
from evidence.api import RecordingViewSet

router = DefaultRouter()
router.register("recordings", RecordingViewSet, basename="api-recording")

urlpatterns = [
    path("", views.recording_list, name="recording-list"),
    path("enregistrements/<int:pk>/", views.recording_detail, name="recording-detail"),
    path("connexion/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("audit.urls")),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
