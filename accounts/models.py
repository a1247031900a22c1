from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Jurisdiction(models.TextChoices):
    # France: CSI L241-2 and R241-13 fix the retention of body-worn recordings at one month.
    FRANCE = "fr", _("France (CSI L241-2, R241-13)")
    # Another legal framework, whose period the organisation sets and states (retention_basis).
    CUSTOM = "custom", _("autre cadre juridique (durée déclarée)")


class Organisation(models.Model):
    """One police service: the data controller's perimeter. No query crosses organisations."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    # CSI R241-13: one calendar month by default; ISO 8601 duration (P1M, P31D, P90D).
    retention = models.CharField(max_length=32, default="P1M")
    retention_basis = models.CharField(
        max_length=300, default="CSI L241-2 et R241-13 : effacement au bout d'un mois"
    )
    time_zone = models.CharField(max_length=64, default="Europe/Paris")
    jurisdiction = models.CharField(max_length=8, choices=Jurisdiction.choices, default=Jurisdiction.FRANCE)
    # ARCHITECTURE.md §1: the DPO handles access requests and reads the register; seeing every
    # recording is the organisation's recorded choice (issue 15), off by default.
    dpo_sees_recordings = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organisation")

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    # CSI R241-12: who may access recordings; see ARCHITECTURE.md §1.
    OFFICER = "officer", _("agent porteur")
    SUPERVISOR = "supervisor", _("responsable de service / agent habilité")
    LEGAL = "legal", _("service juridique")
    DPO = "dpo", _("DPO (protection des données)")  # the same words for a woman or a man (issue 20)
    MAYOR = "mayor", _("maire / président d'EPCI")
    ADMIN = "admin", _("administrateur technique")


class User(AbstractUser):
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OFFICER)
    matricule = models.CharField(max_length=32, blank=True)
    grade = models.CharField(max_length=64, blank=True)
    # Four eyes (issue 15, CSI R241-12): a privileged role the administrator grants waits here for the
    # mayor's approval; meanwhile the account keeps its former role, or, new, cannot sign in.
    pending_role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    pending_role_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    pending_role_at = models.DateTimeField(null=True, blank=True)
    # A password the administrator chose (creation, reset) is temporary: the user replaces it at the
    # next sign-in before reaching any page (issue 20; CNIL's 2021 notice on weak authentication).
    must_change_password = models.BooleanField(default=False)
    # The interface language the user last chose with the language switcher (settings.LANGUAGES;
    # blank: never chosen, French). Pages read it from the switcher's cookie; what Témoin sends the
    # user away from a page (e-mailed reminders and notices) reads it here.
    language = models.CharField(max_length=8, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "matricule"],
                condition=~models.Q(matricule=""),
                name="unique_matricule_per_organisation",
            )
        ]

    def __str__(self) -> str:
        label = self.get_full_name() or self.username
        return f"{label} ({self.matricule})" if self.matricule else label
