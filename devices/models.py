from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Camera(models.Model):
    """A caméra individuelle, registered to one organisation before its clips are accepted.

    A serial is unique within an organisation, not across the deployment: a commune that registers
    a serial (by mistake, or through its Axis system) neither learns that another commune has that
    camera nor keeps it from registering its own (issue 17, finding 4). Which camera a docked
    volume is comes from the dock's organisation (devices.selectors.camera_for_docking)."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="cameras")
    serial = models.CharField(max_length=64, db_index=True)
    model = models.CharField(max_length=100, blank=True)
    firmware = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    last_docked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("caméra individuelle")
        constraints = [models.UniqueConstraint(fields=["organisation", "serial"], name="camera_serial_per_organisation")]

    def __str__(self) -> str:
        return self.serial


class CameraAssignment(models.Model):
    """The camera was issued to this officer from ``starts_at`` until ``ends_at`` (open = still)."""

    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="assignments")
    officer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="camera_assignments")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-starts_at"]
        indexes = [models.Index(fields=["camera", "starts_at"])]


class Dock(models.Model):
    """A station d'accueil: a host directory whose slots receive docked cameras."""

    organisation = models.ForeignKey("accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="docks")
    # The technical name dockd uses (and the worker queue): it never changes once the dock exists.
    name = models.SlugField(unique=True)
    # What the service calls it ("Poste central, rez-de-chaussée"): renamed from the fleet page.
    label = models.CharField(max_length=200, blank=True)
    # A retired dock offloads nothing (devices.selectors.camera_for_docking); its history stays.
    active = models.BooleanField(default=True)
    root = models.CharField(max_length=500, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    @property
    def queue(self) -> str:
        # Clip-pulling tasks run on the worker that mounts this dock's volumes.
        return f"dock.{self.name}"

    def __str__(self) -> str:
        return self.name


class DockSlot(models.Model):
    dock = models.ForeignKey(Dock, on_delete=models.CASCADE, related_name="slots")
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dock", "name"], name="unique_slot_per_dock")]

    def __str__(self) -> str:
        return f"{self.dock.name}/{self.name}"


class OffloadSession(models.Model):
    """One docking of one camera: every clip found, pulled, verified, then released from the camera."""

    class Status(models.TextChoices):
        RUNNING = "running", _("en cours")
        COMPLETE = "complete", _("terminé")
        INCOMPLETE = "incomplete", _("terminé avec des fichiers restés sur la caméra")
        REJECTED = "rejected", _("refusé")

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="offload_sessions")
    camera = models.ForeignKey(Camera, on_delete=models.PROTECT, related_name="offload_sessions")
    dock = models.ForeignKey(Dock, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    slot = models.ForeignKey(DockSlot, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    volume = models.CharField(max_length=1000)
    # Identity of one docking (slot + DEVICE.json inode and time): dockd offloads it once.
    docking = models.CharField(max_length=200, blank=True, db_index=True)
    keep_on_camera = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    # Files the profile does not know (left on the camera and listed) and other findings.
    report = models.JSONField(default=dict, blank=True)
    # What the docking tells of the camera's clock (CSI R241-10): its own time from DEVICE.json,
    # or the newest clip against the dock's clock, and the previous complete docking. Retention
    # counts from the recording time only when that time can be trusted (evidence/retention/dates.py).
    clock = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"offload {self.pk} {self.camera.serial}"


class OffloadItem(models.Model):
    """One clip found on the camera during an offload session, and what became of it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("en attente")
        VERIFIED = "verified", _("vérifié dans le stockage")
        DUPLICATE = "duplicate", _("déjà stocké et vérifié")
        MISMATCH = "mismatch", _("empreinte différente de celle de la caméra")
        FAILED = "failed", _("échec, resté sur la caméra")

    session = models.ForeignKey(OffloadSession, on_delete=models.CASCADE, related_name="items")
    path = models.CharField(max_length=1000)  # relative to the volume
    sidecar_path = models.CharField(max_length=1000, blank=True)
    size = models.BigIntegerField()
    mtime_ns = models.BigIntegerField()
    recording = models.ForeignKey("evidence.Recording", null=True, blank=True, on_delete=models.PROTECT, related_name="offload_items")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    wiped = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "path"], name="unique_item_per_session")]

    @property
    def safe_to_wipe(self) -> bool:
        return self.status in (self.Status.VERIFIED, self.Status.DUPLICATE)
