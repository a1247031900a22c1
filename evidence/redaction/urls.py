from django.urls import path

from . import views

urlpatterns = [
    path("floutage/", views.job_list, name="redaction-jobs"),
    path("enregistrements/<int:pk>/floutage/", views.job_create, name="redaction-create"),
    path("floutage/<int:pk>/", views.job_detail, name="redaction-job"),
    path("floutage/<int:pk>/consultation/", views.consultation_start, name="redaction-consultation"),
    path("floutage/<int:pk>/editeur/", views.editor, name="redaction-editor"),
    path("floutage/<int:pk>/relecture/", views.review_save, name="redaction-review"),
    path("floutage/<int:pk>/production/", views.render_request, name="redaction-render"),
    path("floutage/copies/<int:pk>/approbation/", views.derivative_approve, name="redaction-approve"),
    path("floutage/copies/<int:pk>/couvrir/", views.derivative_cover, name="redaction-cover"),
    path("floutage/copies/<int:pk>/visionnage/", views.derivative_watched, name="redaction-watched"),
    path("floutage/m/<str:token>/<int:pk>/<int:frame>.jpg", views.frame_image, name="redaction-frame"),
    path("floutage/m/<str:token>/copies/<int:pk>.mp4", views.derivative_media, name="redaction-derivative-media"),
]
