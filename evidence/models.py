import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .sources import Regime, Source


class TriggerReason(models.TextChoices):
    # CSI L241-2: recording is triggered when an incident happens or is likely to happen.
    INCIDENT = "incident", _("incident")
    RISK_OF_INCIDENT = "risk_of_incident", _("risque d'incident")


class Purpose(models.TextChoices):
    PREVENTION = "prevention", _("prévention des incidents")
    OFFENCE = "offence", _("constat des infractions")
    EVIDENCE = "evidence", _("collecte de preuves")
    TRAINING = "training", _("formation")


class ReviewState(models.TextChoices):
    UNREVIEWED = "unreviewed", _("non revu")
    REVIEWED = "reviewed", _("revu")
    FLAGGED = "flagged", _("signalé")


# Verified in the store and kept: the statuses of a recording that is evidence today.
LIVE_STATUSES = ["stored", "processing", "ready", "unplayable"]
# Erased, or being erased: nothing may be seen, tagged, extracted or held any more.
GONE_STATUSES = ["erasing", "erased"]


class Recording(models.Model):
    """One clip pulled from a camera. Identified by camera + SHA-256 of the original bytes."""

    class Status(models.TextChoices):
        RECEIVING = "receiving", _("réception en cours")
        STORED = "stored", _("stocké et vérifié")
        PROCESSING = "processing", _("préparation de la lecture")
        READY = "ready", _("prêt")
        UNPLAYABLE = "unplayable", _("illisible (original conservé)")
        FAILED = "failed", _("échec du stockage (resté sur la caméra)")
        DUPLICATE = "duplicate", _("doublon d'un enregistrement déjà stocké")
        # Two-phase erasure (CSI R241-13, R241-14): the intent is in the custody log before any byte
        # is deleted; the row stays here until every object is gone and the completion is logged.
        ERASING = "erasing", _("effacement en cours")
        ERASED = "erased", _("effacé")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="recordings")
    camera = models.ForeignKey("devices.Camera", on_delete=models.PROTECT, related_name="recordings")
    # CSI R241-10: the wearer's identity; null until known ("to complete").
    wearer = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="recordings")
    wearer_source = models.CharField(max_length=16, blank=True)  # sidecar | assignment | ""
    offload_session = models.ForeignKey("devices.OffloadSession", null=True, blank=True, on_delete=models.PROTECT, related_name="recordings")
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # A clip unpacked from a partner's export bundle (a ZIP uploaded under a requisition, issue 22):
    # the bundle's own recording, kept write-once beside it (docs/requisitions.md).
    bundle = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="bundle_members")
    # The partner system's camera name, from the bundle's manifest or the clip's sidecar.
    source_camera = models.CharField(max_length=200, blank=True)

    source = models.CharField(max_length=16, choices=Source.choices, default=Source.CAMERA)
    regime = models.CharField(max_length=16, choices=Regime.choices, default=Regime.BODY_WORN)

    # Where it came from on the camera.
    source_path = models.CharField(max_length=1000)
    source_size = models.BigIntegerField()
    source_mtime_ns = models.BigIntegerField()

    # CSI R241-10: day and time range. Times without an offset, or guessed, are not attested.
    started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    time_source = models.CharField(max_length=16, blank=True)  # sidecar | container | file_mtime
    time_attested = models.BooleanField(default=False)
    duration = models.FloatField(null=True, blank=True)
    location = models.JSONField(null=True, blank=True)  # [lat, lon]
    track = models.JSONField(null=True, blank=True)  # [[lat, lon, epoch], ...]

    # Integrity (CSI R241-11 V).
    sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    size = models.BigIntegerField(null=True, blank=True)
    camera_sha256 = models.CharField(max_length=64, blank=True)
    camera_hash_matches = models.BooleanField(null=True)
    store_key = models.CharField(max_length=500, unique=True)
    store_version_id = models.CharField(max_length=200, blank=True)
    stream_hashes = models.JSONField(default=dict, blank=True)
    sidecar_key = models.CharField(max_length=500, blank=True)
    sidecar_sha256 = models.CharField(max_length=64, blank=True)
    sidecar_version_id = models.CharField(max_length=200, blank=True)
    sidecar_errors = models.JSONField(default=list, blank=True)

    # Playback.
    media_info = models.JSONField(default=dict, blank=True)
    playback_key = models.CharField(max_length=500, blank=True)
    playback_version_id = models.CharField(max_length=200, blank=True)
    playback_method = models.CharField(max_length=16, blank=True)  # remux | transcode
    poster_key = models.CharField(max_length=500, blank=True)
    poster_version_id = models.CharField(max_length=200, blank=True)

    # Tags (CSI L241-2).
    trigger_reason = models.CharField(max_length=24, choices=TriggerReason.choices, blank=True)
    trigger_source = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices, blank=True)
    subject_notified = models.BooleanField(null=True)
    notice_omitted_reason = models.TextField(blank=True)
    intervention = models.CharField(max_length=100, blank=True, db_index=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVING, db_index=True)
    status_message = models.TextField(blank=True)
    # CSI R241-13: erased one month after the day of recording unless held.
    retain_until = models.DateTimeField(null=True, blank=True, db_index=True)
    retention_basis = models.CharField(max_length=500, blank=True)
    # Docked after its retention end with a camera clock known to be right: kept only for a
    # decision (TEMOIN_LATE_DOCKING_GRACE), shown to supervisors (CSI R241-11 III: transfer on return).
    docked_late = models.BooleanField(default=False)
    ingested_at = models.DateTimeField()
    verified_at = models.DateTimeField(null=True, blank=True)
    # Tombstone (CSI R241-13): what remains after erasure, and the rule that erased it.
    erasure_started_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    erasure_rule = models.CharField(max_length=300, blank=True)

    # Supervisor's review (issue #4): unreviewed until a supervisor marks it reviewed or flagged.
    review_state = models.CharField(max_length=12, choices=ReviewState.choices, default=ReviewState.UNREVIEWED)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-started_at", "-id"], name="rec_org_started"),
            models.Index(fields=["organisation", "wearer", "-started_at"], name="rec_org_wearer_started"),
            models.Index(fields=["organisation", "review_state"], name="rec_org_review"),
            models.Index(fields=["organisation", "status"]),
            models.Index(fields=["camera", "source_path", "source_size", "source_mtime_ns"]),
        ]
        constraints = [
            # One live recording per camera and content (ARCHITECTURE.md §3). Duplicates, and rows
            # being or already erased, are outside it: an original and its duplicate are erased
            # together, and the same clip docked again after erasure is a new recording.
            models.UniqueConstraint(
                fields=["camera", "sha256"],
                condition=~models.Q(sha256="") & models.Q(status__in=LIVE_STATUSES),
                name="unique_content_per_camera",
            )
        ]

    def __str__(self) -> str:
        return f"{self.camera.serial} {self.source_path}"

    @property
    def gone(self) -> bool:
        """Erased, or its erasure has begun (CSI R241-13): nothing may be done with it any more."""
        return self.status in GONE_STATUSES

    @property
    def to_complete(self) -> bool:
        """Missing tags put the recording in the wearer's "to complete" queue (CSI L241-2)."""
        if not self.trigger_reason or self.subject_notified is None or self.wearer_id is None:
            return True
        return self.subject_notified is False and not self.notice_omitted_reason.strip()


class Procedure(models.TextChoices):
    # CSI L241-2, R241-13: the only exception to erasure after one month.
    JUDICIAL = "judicial", _("judiciaire")
    ADMINISTRATIVE = "administrative", _("administrative")
    DISCIPLINARY = "disciplinary", _("disciplinaire")


class Hold(models.Model):
    """Conservation pour procédure: keeps one recording, or every recording of an intervention."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="holds")
    procedure = models.CharField(max_length=16, choices=Procedure.choices)
    reference = models.CharField(max_length=200)
    recording = models.ForeignKey(Recording, null=True, blank=True, on_delete=models.PROTECT, related_name="holds")
    intervention = models.CharField(max_length=100, blank=True, db_index=True)
    motif = models.TextField(blank=True)
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField()
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    released_at = models.DateTimeField(null=True, blank=True)
    release_motif = models.TextField(blank=True)
    # The recordings this hold keeps, fixed when it is placed (or extended): re-tagging a
    # recording's intervention afterwards neither adds it nor takes it away (CSI R241-13).
    covered = models.ManyToManyField(Recording, blank=True, related_name="covering_holds")

    class Meta:
        ordering = ["-placed_at"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(recording__isnull=False) & models.Q(intervention=""))
                | (models.Q(recording__isnull=True) & ~models.Q(intervention="")),
                name="hold_covers_a_recording_or_an_intervention",
            )
        ]

    @property
    def active(self) -> bool:
        return self.released_at is None

    def __str__(self) -> str:
        return f"{self.get_procedure_display()} {self.reference}"


class Consultation(models.Model):
    """A viewing of a recording, logged with its motif before any media byte is served.

    CSI R241-14: consultations record author, date, time and motif. The media URL handed out is
    bound to this row and to its user, and expires.
    """

    recording = models.ForeignKey(Recording, on_delete=models.PROTECT, related_name="consultations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consultations")
    motif = models.TextField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    token_sha256 = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-created_at"]


class Annotation(models.Model):
    """A timecoded comment or bookmark on a recording (issue #4); never changes the evidence."""

    class Kind(models.TextChoices):
        COMMENT = "comment", _("commentaire")
        BOOKMARK = "bookmark", _("signet")

    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="annotations")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="+")
    author_label = models.CharField(max_length=200, blank=True)  # e.g. "axis:bookmark" for imported ones
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.COMMENT)
    at_seconds = models.FloatField()
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["at_seconds", "id"]


class RecordingGrant(models.Model):
    """Per-recording grant to one person, until a date (issue 23: our own table; django-guardian,
    whose backend ignored the expiry and whose migration created an AnonymousUser row, is gone).

    CSI R241-12: beyond the roles, agents "individually designated and authorised" may see what they
    are authorised for: e.g. an investigator given one intervention until a date. Read only through
    evidence.access.selectors (expired grants give nothing).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recording_grants")
    recording = models.ForeignKey(Recording, on_delete=models.CASCADE, related_name="grants")
    expires_at = models.DateTimeField(db_index=True)
    granted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    motif = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "recording"], name="one_grant_per_user_and_recording")]


class StoreOrphan(models.Model):
    """An object found in the store that nothing alive owns (a write whose record was lost when a
    process died, the bytes of something erased that the store kept). Registered and logged when
    found; erased, logged, as soon as its lock in the store ends (evidence/retention/sweep.py)."""

    key = models.CharField(max_length=500, unique=True)
    organisation = models.ForeignKey("accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    size = models.BigIntegerField(default=0)
    modified = models.DateTimeField()
    found_at = models.DateTimeField()
    retain_until = models.DateTimeField(null=True, blank=True)
    legal_hold = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    erasure_started_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["found_at", "id"]

    def __str__(self) -> str:
        return self.key


# Interventions (issue #21) live in their own package but belong to this app.
from .interventions.models import Intervention, InterventionClockCorrection, InterventionLink  # noqa: E402,F401
from .requisitions.models import Requisition, RequisitionUpload  # noqa: E402,F401
