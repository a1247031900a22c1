"""Mounted under /axis/ (config/urls.py): the content destination of an Axis body worn system."""
from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^auth/v1\.0/?$", views.auth, name="axis-auth"),
    re_path(r"^v1/(?P<account>[^/]+)/?$", views.account, name="axis-account"),
    re_path(r"^v1/(?P<account>[^/]+)/(?P<container>[^/]+)/?$", views.container, name="axis-container"),
    re_path(r"^v1/(?P<account>[^/]+)/(?P<container>[^/]+)/(?P<obj>.+)$", views.storage_object, name="axis-object"),
]
