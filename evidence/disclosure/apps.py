from django.apps import AppConfig


class DisclosureConfig(AppConfig):
    name = "evidence.disclosure"
    label = "disclosure"
