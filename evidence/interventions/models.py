"""Interventions as first-class objects (issue #21): every camera of one intervention, together.

An intervention is named by the service's own numbering (unique per organisation). Recordings are
linked to it from their tag, from the camera's metadata (sidecar or Axis) at collection, by hand, or
from a suggestion confirmed by a supervisor or the wearer. Every creation and every link is in the
custody log (CSI R241-14). These models belong to the evidence app (imported by evidence/models.py).
"""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Intervention(models.Model):
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="interventions")
    reference = models.CharField(max_length=100)
    place = models.CharField(max_length=300, blank=True)
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    created_label = models.CharField(max_length=100, blank=True)  # e.g. "system:collection"
    created_at = models.DateTimeField()
    recordings = models.ManyToManyField("evidence.Recording", through="InterventionLink",
                                        related_name="intervention_objects")

    class Meta:
        app_label = "evidence"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "reference"], name="intervention_reference_per_org"),
        ]

    def __str__(self) -> str:
        return self.reference


class InterventionLink(models.Model):
    """One recording of one intervention, and how it came to be linked."""

    class Source(models.TextChoices):
        TAG = "tag", _("étiquette")
        SIDECAR = "sidecar", _("métadonnées de la caméra")
        AXIS = "axis", _("métadonnées du système Axis")
        MANUAL = "manual", _("lien manuel")
        SUGGESTION = "suggestion", _("suggestion confirmée")

    intervention = models.ForeignKey(Intervention, on_delete=models.CASCADE, related_name="links")
    recording = models.ForeignKey("evidence.Recording", on_delete=models.CASCADE, related_name="intervention_links")
    source = models.CharField(max_length=12, choices=Source.choices)
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    linked_at = models.DateTimeField()

    class Meta:
        app_label = "evidence"
        ordering = ["linked_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["intervention", "recording"], name="intervention_link_once"),
        ]


class InterventionClockCorrection(models.Model):
    """Seconds added to one camera's times within one intervention, when its clock was off.

    The recordings themselves are never changed (CSI R241-10: their times stay as recorded and
    attested or not); the correction only places them on the intervention's shared clock.
    """

    intervention = models.ForeignKey(Intervention, on_delete=models.CASCADE, related_name="clock_corrections")
    camera = models.ForeignKey("devices.Camera", on_delete=models.PROTECT, related_name="+")
    seconds = models.FloatField()
    motif = models.TextField(blank=True)
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField()

    class Meta:
        app_label = "evidence"
        constraints = [
            models.UniqueConstraint(fields=["intervention", "camera"], name="intervention_clock_once_per_camera"),
        ]
