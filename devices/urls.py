from django.urls import path

from . import views

urlpatterns = [
    path("flotte/", views.fleet, name="fleet"),
    path("flotte/cameras/<int:pk>/sortie/", views.camera_check_out, name="camera-check-out"),
    path("flotte/cameras/<int:pk>/retour/", views.camera_check_in, name="camera-check-in"),
]
