"""Disclosure: extractions for a procedure, export packages, shares with external recipients, and
data-subject access requests (LEGAL.md rules 6 and 8; CSI R241-12 to R241-15, LIL 105 and 107).

Every row here is scoped to one organisation; every change writes its custody event in the same
transaction (disclosure/services.py).
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExtractionPurpose(models.TextChoices):
    # CSI R241-12, R241-13: extraction only for a procedure, or for training (anonymised).
    JUDICIAL = "judicial", _("procédure judiciaire")
    ADMINISTRATIVE = "administrative", _("procédure administrative")
    DISCIPLINARY = "disciplinary", _("procédure disciplinaire")
    TRAINING = "training", _("formation (copie anonymisée)")


class ExportPurpose(models.TextChoices):
    JUDICIAL = "judicial", _("procédure judiciaire")
    ADMINISTRATIVE = "administrative", _("procédure administrative")
    DISCIPLINARY = "disciplinary", _("procédure disciplinaire")
    TRAINING = "training", _("formation (copie anonymisée)")
    # LIL art. 105, GDPR art. 15: the copy handed to a data subject (made by the DPO only).
    ACCESS_REQUEST = "access_request", _("demande d'accès d'une personne filmée")


class Redaction(models.TextChoices):
    NONE = "none", _("aucun floutage (originaux)")
    OTHERS = "others", _("tout le monde flouté sauf la personne concernée")
    ALL = "all", _("anonymisation complète")


class Extraction(models.Model):
    """One recording extracted for a procedure: a short-lived download link bound to its author.

    CSI R241-14: logged (author, date, motif, recipient) before the link is handed out.
    """

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    recording = models.ForeignKey("evidence.Recording", on_delete=models.PROTECT, related_name="extractions")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=16, choices=ExtractionPurpose.choices)
    recipient = models.CharField(max_length=300)
    motif = models.TextField()
    redaction = models.CharField(max_length=8, choices=Redaction.choices, default=Redaction.NONE)
    derivative_id = models.BigIntegerField(null=True, blank=True)
    # What the link serves: the original, or the approved redacted copy.
    store_key = models.CharField(max_length=500)
    store_version_id = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    filename = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    token_sha256 = models.CharField(max_length=64, unique=True)
    downloads = models.PositiveIntegerField(default=0)  # whole copies served: ceil(bytes_served / size)
    bytes_served = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"extraction n° {self.pk} ({self.get_purpose_display()})"


class Export(models.Model):
    """A package (ZIP) of recordings with manifest, custody proof, report and verify.py."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("en attente")
        RUNNING = "running", _("en préparation")
        READY = "ready", _("prêt")
        FAILED = "failed", _("échec")
        # CSI R241-13: the package follows the fate of the recordings it carries; its erasure is
        # logged before its bytes are deleted (erasing) and after (erased).
        ERASING = "erasing", _("effacement en cours")
        ERASED = "erased", _("effacé")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(max_length=16, choices=ExportPurpose.choices)
    recipient = models.CharField(max_length=300)
    motif = models.TextField()
    redaction = models.CharField(max_length=8, choices=Redaction.choices, default=Redaction.NONE)
    access_request = models.ForeignKey("AccessRequest", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="exports")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0)
    status_message = models.TextField(blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The ZIP in the write-once store, and its own SHA-256 (also in the custody event export.ready).
    store_key = models.CharField(max_length=500, blank=True)
    store_version_id = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    retain_until = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)  # whole copies served: ceil(bytes_served / size)
    bytes_served = models.PositiveBigIntegerField(default=0)
    erasure_started_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export n° {self.pk}"

    @property
    def filename(self) -> str:
        return f"temoin-export-{self.pk}.zip"


class ExportItem(models.Model):
    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="items")
    recording = models.ForeignKey("evidence.Recording", on_delete=models.PROTECT, related_name="+")
    position = models.PositiveIntegerField()
    # The approved redacted copy used instead of the original (redaction others/all).
    derivative_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["export", "recording"], name="unique_recording_per_export")]


class Share(models.Model):
    """A link for an external recipient: one export, expiry, download limit, revocation."""

    export = models.ForeignKey(Export, on_delete=models.PROTECT, related_name="shares")
    recipient = models.CharField(max_length=300)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    max_downloads = models.PositiveIntegerField()
    # The limit is on bytes (issue 17): max_downloads × the package's size, whatever the Range headers;
    # downloads = ceil(bytes_served / size), the copies handed out.
    downloads = models.PositiveIntegerField(default=0)
    bytes_served = models.PositiveBigIntegerField(default=0)
    views = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    revoke_motif = models.TextField(blank=True)
    token_sha256 = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"partage n° {self.pk} ({self.recipient})"

    @property
    def exhausted(self) -> bool:
        return self.bytes_served >= self.max_downloads * (self.export.size or 0)


class LegalGround(models.TextChoices):
    # LIL art. 107 II: the right of access may be restricted, wholly or partly, to ...
    INQUIRIES = "inquiries", _("éviter de gêner des enquêtes, recherches ou procédures administratives ou "
                               "judiciaires (LIL art. 107 II 1°)")
    OFFENCES = "offences", _("éviter de nuire à la prévention ou la détection d'infractions pénales, aux enquêtes "
                             "ou aux poursuites, ou à l'exécution des sanctions pénales (LIL art. 107 II 2°)")
    PUBLIC_SECURITY = "public_security", _("protéger la sécurité publique (LIL art. 107 II 3°)")
    NATIONAL_SECURITY = "national_security", _("protéger la sécurité nationale (LIL art. 107 II 4°)")
    OTHERS_RIGHTS = "others_rights", _("protéger les droits et libertés d'autrui (LIL art. 107 II 5°)")


class AccessRequest(models.Model):
    """A data subject's request for the images of themselves (CSI R241-15, LIL 105 and 107,
    GDPR 12(3)): registered, answered within one month (extendable by two with notice)."""

    class Decision(models.TextChoices):
        FULL = "full", _("communication intégrale")
        PARTIAL = "partial", _("communication partielle")
        REFUSED = "refused", _("refus")

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    requester_name = models.CharField(max_length=300)
    requester_contact = models.CharField(max_length=500, blank=True)
    identity_checked = models.BooleanField()
    identity_check_method = models.CharField(max_length=500, blank=True)
    received_on = models.DateField()
    description = models.TextField()
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    place = models.JSONField(null=True, blank=True)  # [lat, lon]
    radius_m = models.PositiveIntegerField(null=True, blank=True)
    officer = models.CharField(max_length=100, blank=True)  # matricule or name, as the requester describes
    # GDPR art. 12(3): one month from receipt; extendable by two months with notice.
    deadline = models.DateField()
    extended = models.BooleanField(default=False)
    extension_notice_on = models.DateField(null=True, blank=True)
    extension_notice = models.TextField(blank=True)
    recordings = models.ManyToManyField("evidence.Recording", blank=True, related_name="+")
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    legal_ground = models.CharField(max_length=20, choices=LegalGround.choices, blank=True)
    decision_note = models.TextField(blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")
    delivered_on = models.DateField(null=True, blank=True)
    delivery_means = models.CharField(max_length=500, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["deadline", "id"]

    def __str__(self) -> str:
        return f"demande d'accès n° {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class AccessRequestReminder(models.Model):
    """A deadline reminder e-mailed to the DPO(s) about one access request, once per threshold.

    GDPR art. 12(3): the answer is due within one month of receipt (three when extended); the DPO is
    reminded seven days before, two days before, and once the deadline has passed
    (evidence/disclosure/reminders.py). The unique constraint makes a reminder sent at most once."""

    class Threshold(models.TextChoices):
        DAYS_7 = "7d", _("échéance dans 7 jours au plus")
        DAYS_2 = "2d", _("échéance dans 2 jours au plus")
        OVERDUE = "overdue", _("échéance dépassée")

    access_request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="reminders")
    threshold = models.CharField(max_length=8, choices=Threshold.choices)
    deadline = models.DateField()  # the deadline the reminder was about (an extension moves it)
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["access_request", "threshold", "deadline"],
                                               name="one_reminder_per_request_threshold_deadline")]
