from django.apps import AppConfig


class RedactionConfig(AppConfig):
    name = "evidence.redaction"
    label = "redaction"
