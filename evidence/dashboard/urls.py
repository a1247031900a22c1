from django.urls import path

from . import views

urlpatterns = [
    path("tableau-de-bord/", views.dashboard, name="dashboard"),
    path("bilan-annuel/", views.annual_summary, name="annual-summary"),
    path("tableau-de-bord/dechargements/", views.dashboard_offloads, name="dashboard-offloads"),
]
