from django.urls import path

from . import views

urlpatterns = [
    path("sante/", views.health_page, name="ops-health"),
    path("api/health/", views.health_api, name="ops-health-api"),
    path("metrics", views.metrics, name="ops-metrics"),
]
