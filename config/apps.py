from django.apps import AppConfig


class TemoinConfig(AppConfig):
    name = "config"
    verbose_name = "Témoin"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
