from django.urls import path

from . import views

urlpatterns = [
    path("flotte/", views.fleet, name="fleet"),
    path("flotte/cameras/<int:pk>/sortie/", views.camera_check_out, name="camera-check-out"),
    path("flotte/cameras/<int:pk>/retour/", views.camera_check_in, name="camera-check-in"),
    path("flotte/cameras/nouvelle/", views.camera_create, name="camera-create"),
    path("flotte/cameras/<int:pk>/modifier/", views.camera_edit, name="camera-edit"),
    path("flotte/cameras/<int:pk>/retrait/", views.camera_retire, name="camera-retire"),
    path("flotte/cameras/<int:pk>/remise-en-service/", views.camera_reinstate, name="camera-reinstate"),
    path("flotte/stations/nouvelle/", views.dock_create, name="dock-create"),
    path("flotte/stations/<int:pk>/modifier/", views.dock_edit, name="dock-edit"),
    path("flotte/stations/<int:pk>/retrait/", views.dock_retire, name="dock-retire"),
    path("flotte/stations/<int:pk>/remise-en-service/", views.dock_reinstate, name="dock-reinstate"),
]
