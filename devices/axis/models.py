"""Axis body worn system as a source of evidence: Témoin is its "content destination".

The body worn system (BWS) speaks a subset of the OpenStack Swift object API (specification:
README of AxisCommunications/body-worn-integration-api, v1.6). These models hold what the BWS
tells us: its credentials and tokens, its system, users and devices objects, and each recording
container with its clips (each clip becomes one ``evidence.Recording``), bookmarks and other objects.
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AxisCredential(models.Model):
    """``BlobAPIUserName`` / ``BlobAPIKey`` of a connection file; one organisation per credential.

    Only a SHA-256 of the key is kept: the key is 256 random bits shown once, in the connection
    file, so a slow password hash would add nothing but latency to every authentication.
    """

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="axis_credentials")
    username = models.CharField(max_length=64, unique=True)
    key_sha256 = models.CharField(max_length=64)
    site_name = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("identifiant de connexion Axis")

    def __str__(self) -> str:
        return self.username

    @property
    def account(self) -> str:
        """The Swift account of the storage URL (``/v1/<account>``)."""
        return f"AUTH_{self.username}"


class AxisToken(models.Model):
    """An ``X-Auth-Token`` handed out by ``/auth/v1.0``; expires (the BWS authenticates again)."""

    credential = models.ForeignKey(AxisCredential, on_delete=models.CASCADE, related_name="tokens")
    token_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)


class AxisSystem(models.Model):
    """``System/<SystemID>``: binds one body worn system installation to this destination."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="axis_systems")
    system_id = models.CharField(max_length=100)
    connection_id = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "system_id"], name="axis_unique_system")]


class AxisUser(models.Model):
    """``Users/<UserUUID>``: a user of the body worn manager, mapped to one of our officers.

    The user-supplied ``UserID`` (capability ``StoreUserIDKey``) is the officer's matricule.
    """

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="axis_users")
    uuid = models.CharField(max_length=100)  # the object name, the BWS's internal user id
    external_id = models.CharField(max_length=100, blank=True)  # the "UserID" metadata (matricule)
    name = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="axis_users")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "uuid"], name="axis_unique_user")]

    def __str__(self) -> str:
        # The specification's advice: "display Name (UserID)", the name is not unique.
        return f"{self.name} ({self.external_id})" if self.external_id else self.name or self.uuid


class AxisDevice(models.Model):
    """``Devices/<BWCSerialNumber>``: a camera registered in the body worn manager."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="axis_devices")
    camera = models.OneToOneField("devices.Camera", on_delete=models.PROTECT, related_name="axis_device")
    serial = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "serial"], name="axis_unique_device")]

    def __str__(self) -> str:
        return f"{self.name} ({self.serial})" if self.name else self.serial


class AxisRecording(models.Model):
    """One recording container ``<UserID>_<BWCSerialNumber>_<TriggerOnTime>``, or a rejected-content one."""

    class Status(models.TextChoices):
        TRANSFERRING = "transferring", _("transfert en cours")
        COMPLETE = "complete", _("transfert terminé")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="axis_recordings")
    name = models.CharField(max_length=256)
    axis_user = models.ForeignKey(AxisUser, null=True, blank=True, on_delete=models.PROTECT, related_name="recordings")
    device = models.ForeignKey(AxisDevice, null=True, blank=True, on_delete=models.PROTECT, related_name="recordings")
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRANSFERRING)

    # Parsed from the metadata (all times UTC, as the specification sends them).
    trigger_on = models.CharField(max_length=100, blank=True)
    trigger_off = models.CharField(max_length=100, blank=True)
    triggered_at = models.DateTimeField(null=True, blank=True)
    trigger_off_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    firmware = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    scu_serial = models.CharField(max_length=100, blank=True)
    location = models.JSONField(null=True, blank=True)  # [lat, lon] where the recording was triggered
    track = models.JSONField(null=True, blank=True)  # [[lat, lon, epoch], ...] from the GNSS object
    # Category bookmarks turned into our tags (purpose, trigger_reason) for every clip.
    tags = models.JSONField(default=dict, blank=True)

    # Rejected content (capability StoreRejectedContent): kept under custody and flagged.
    rejected = models.BooleanField(default=False)
    rejected_reason = models.TextField(blank=True)
    original_container = models.CharField(max_length=256, blank=True)

    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    # Personal data (bookmark texts, track) cleared once every clip was erased (CSI R241-13).
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="axis_unique_container")]

    def __str__(self) -> str:
        return self.name


class AxisClip(models.Model):
    """A video clip object ``<StartTime>_<RecordingID>.<mkv|mp4>``: its latest upload attempt."""

    container = models.ForeignKey(AxisRecording, on_delete=models.PROTECT, related_name="clips")
    name = models.CharField(max_length=1024)
    recording = models.ForeignKey("evidence.Recording", on_delete=models.PROTECT, related_name="axis_clips")
    metadata = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    md5 = models.CharField(max_length=32, blank=True)  # only when the BWS sent an ETag to check
    upload_started_at = models.DateTimeField()
    uploads = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["started_at", "name"]
        constraints = [models.UniqueConstraint(fields=["container", "name"], name="axis_unique_clip")]

    def __str__(self) -> str:
        return f"{self.container.name}/{self.name}"


class AxisObject(models.Model):
    """Any other object of a recording container (bookmark, GNSS track, key file), kept write-once."""

    class Kind(models.TextChoices):
        BOOKMARK = "bookmark", _("signet")
        TRACK = "track", _("trace GNSS")
        KEY = "key", _("clé de chiffrement")
        OTHER = "other", _("autre")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    container = models.ForeignKey(AxisRecording, on_delete=models.PROTECT, related_name="attachments")
    name = models.CharField(max_length=1024)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    metadata = models.JSONField(default=dict, blank=True)
    store_key = models.CharField(max_length=500, blank=True)
    store_version_id = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    md5 = models.CharField(max_length=32, blank=True)
    size = models.BigIntegerField(default=0)
    retain_until = models.DateTimeField(null=True, blank=True)
    errors = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        # Not unique: an object sent again with other content is a new version (the latest is current).
        indexes = [models.Index(fields=["container", "name"])]


class AxisBookmark(models.Model):
    """A bookmark: free-text comment, category and ``key:value`` tags at a time of the recording."""

    object = models.OneToOneField(AxisObject, on_delete=models.PROTECT, related_name="bookmark")
    container = models.ForeignKey(AxisRecording, on_delete=models.PROTECT, related_name="bookmarks")
    description = models.TextField(blank=True)
    category_id = models.CharField(max_length=100, blank=True)
    category_name = models.CharField(max_length=200, blank=True)
    tags = models.JSONField(default=list, blank=True)  # [[key, value], ...]
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "pk"]
