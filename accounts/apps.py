from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organisations et utilisateurs"

    def ready(self):
        from . import signals  # noqa: F401  (failed logins → custody log)
