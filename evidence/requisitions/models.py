"""A requisition and the files its link received (issue 22)."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..sources import Regime


class Requisition(models.Model):
    """Footage asked of a partner for a procedure; its upload link works until ``expires_at``."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="requisitions")
    partner = models.CharField(max_length=200)
    regime = models.CharField(max_length=16, choices=Regime.choices)
    reference = models.CharField(max_length=200)
    motif = models.TextField()
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Videoprotection: the retention period the prefectoral authorisation of the partner's system
    # sets (ISO 8601, at most P1M: CSI L252-5); blank for body-worn images (the organisation's period).
    retention = models.CharField(max_length=20, blank=True, default="")
    # Only the SHA-256 of the link's token is kept: the database alone does not open the link.
    token_sha256 = models.CharField(max_length=64, unique=True)
    # The partner's placeholder camera: the recordings' source device (Recording.camera is required).
    camera = models.ForeignKey("devices.Camera", on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.reference} ({self.partner})"

    def status_at(self, now=None) -> str:
        return "expired" if (now or timezone.now()) >= self.expires_at else "open"


class RequisitionDeclarant(models.Model):
    """The partner's person who opened the link in a browser and said who they are.

    One per requisition (single use by one person): the first declaration binds the link to that
    browser, which holds a random token in a cookie; only its SHA-256 is kept here. Another browser
    is refused, on the page and on every tus request (docs/requisitions.md).
    """

    requisition = models.OneToOneField(Requisition, on_delete=models.PROTECT, related_name="declarant")
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=200)  # organisation and role, as the person gives them
    contact = models.CharField(max_length=200)  # e-mail or telephone
    binding_sha256 = models.CharField(max_length=64)
    user_agent = models.CharField(max_length=300, blank=True)
    declared_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"

    def as_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "contact": self.contact,
                "declared_at": self.declared_at.isoformat()}


class RequisitionUpload(models.Model):
    """One tus upload under a requisition's link: staged, then stored write-once as a recording."""

    class Status(models.TextChoices):
        RECEIVING = "receiving", _("réception en cours")
        STORED = "stored", _("stocké et vérifié")
        DUPLICATE = "duplicate", _("doublon d'un fichier déjà reçu")
        REFUSED = "refused", _("refusé (empreinte différente)")
        FAILED = "failed", _("échec du stockage")

    requisition = models.ForeignKey(Requisition, on_delete=models.PROTECT, related_name="uploads")
    uid = models.CharField(max_length=32, unique=True)  # the upload's id in its tus URL
    filename = models.CharField(max_length=255, blank=True)  # metadata only, never a path
    length = models.BigIntegerField()
    offset = models.BigIntegerField(default=0)
    partner_sha256 = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVING)
    message = models.TextField(blank=True)
    # What an export bundle held (issue 22, item 4): the clips made recordings, the members kept in
    # the bundle and flagged with the reason (as the offload lists what it leaves on a camera).
    report = models.JSONField(default=dict, blank=True)
    recording = models.ForeignKey("evidence.Recording", null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="+")
    # Who sent it: the link's declarant when it came through the page (None for a bare tus client
    # used before anybody declared on the page).
    declarant = models.ForeignKey(RequisitionDeclarant, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="uploads")
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
