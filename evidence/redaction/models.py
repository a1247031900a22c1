"""Redaction (floutage): a job per recording and mode, its tracks, and the derivatives it renders.

The original recording is never touched: a render writes a new write-once object (a derivative)
carrying its own SHA-256 and the SHA-256 of the original it was made from (LEGAL.md rules 2, 6, 8).
"""
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Mode(models.TextChoices):
    # LEGAL.md rule 6 (CSI R241-13): training copies are fully anonymised.
    ALL = "all", _("anonymisation complète (formation)")
    # LEGAL.md rule 8 (LIL art. 107, GDPR art. 15(4)): a data subject's copy blurs the others.
    OTHERS = "others", _("tout le monde sauf la personne concernée (demande d'accès)")


class Audio(models.TextChoices):
    REMOVED = "removed", _("son supprimé")
    KEPT = "kept", _("son conservé")


class RedactionJob(models.Model):
    """One redaction of one recording: analyse → review → render → approve."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("analyse en attente")
        ANALYSING = "analysing", _("détection en cours")
        REVIEW = "review", _("à relire")
        RENDERING = "rendering", _("production de la copie en cours")
        RENDERED = "rendered", _("copie produite, à approuver")
        APPROVED = "approved", _("copie approuvée")
        FAILED = "failed", _("échec")

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    recording = models.ForeignKey("evidence.Recording", on_delete=models.PROTECT, related_name="redaction_jobs")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    motif = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # Progress of the step under way (analysis or render), 0–100.
    progress = models.PositiveSmallIntegerField(default=0)
    status_message = models.TextField(blank=True)
    # Detection parameters used (detector, every N frames, analysis width) and what the analysis saw.
    params = models.JSONField(default=dict, blank=True)
    fps = models.FloatField(null=True, blank=True)
    frame_count = models.PositiveIntegerField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Audio muted over these time ranges, in seconds: [[start, end], ...].
    mute_ranges = models.JSONField(default=list, blank=True)
    # Voices identify people as faces do (CSI R241-13, LIL art. 107): by default the copy has no
    # sound; it is kept only with a stated reason (training need, the requester asked for it).
    audio = models.CharField(max_length=8, choices=Audio.choices, default=Audio.REMOVED)
    audio_reason = models.TextField(blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"floutage n° {self.pk} ({self.get_mode_display()})"

    @property
    def duration(self) -> float | None:
        if self.fps and self.frame_count:
            return self.frame_count / self.fps
        return None


class Track(models.Model):
    """One face, plate or hand-drawn region followed over time.

    ``keyframes`` holds boxes in the original's pixel coordinates, sorted by frame:
    ``[[frame, x, y, w, h], ...]``. Between two keyframes the box is interpolated linearly; the
    track covers ``first_frame``..``last_frame`` (the detections widened by the detection step, so
    that the frames between two detection passes are covered too).
    """

    class Kind(models.TextChoices):
        FACE = "face", _("visage")
        PLATE = "plate", _("plaque d'immatriculation")
        MANUAL = "manual", _("zone ajoutée à la main")

    job = models.ForeignKey(RedactionJob, on_delete=models.CASCADE, related_name="tracks")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    keyframes = models.JSONField(default=list)
    first_frame = models.PositiveIntegerField()
    last_frame = models.PositiveIntegerField()
    # Reviewer's decisions: a dropped track is a false detection (not blurred); in mode "others"
    # the subject's own track(s) stay sharp.
    kept = models.BooleanField(default=True)
    is_subject = models.BooleanField(default=False)
    # Mean detector score, for sorting the list in the editor.
    score = models.FloatField(default=0)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="unique_track_number_per_job")]

    @property
    def blurred(self) -> bool:
        return self.kept and not self.is_subject

    def __str__(self) -> str:
        return f"piste {self.number} ({self.get_kind_display()})"


class Derivative(models.Model):
    """A redacted copy: a write-once object of its own, linked to the original by its SHA-256."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="+")
    recording = models.ForeignKey("evidence.Recording", on_delete=models.PROTECT, related_name="derivatives")
    job = models.ForeignKey(RedactionJob, on_delete=models.PROTECT, related_name="derivatives")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    store_key = models.CharField(max_length=500, unique=True)
    store_version_id = models.CharField(max_length=200, blank=True)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    original_sha256 = models.CharField(max_length=64)
    # What was rendered: tracks blurred and kept sharp, mute ranges, frames, the command lines.
    details = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_motif = models.TextField(blank=True)
    # The second look on the rendered copy (second_look.second_look): None until it ran, then whether
    # it found no face left; ``second_look`` holds what it measured and the faces it found.
    check_passed = models.BooleanField(null=True, blank=True)
    second_look = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def approved(self) -> bool:
        return self.approved_at is not None

    @property
    def faces_left(self) -> list[dict]:
        return list((self.second_look or {}).get("faces_left") or [])

    def __str__(self) -> str:
        return f"copie floutée n° {self.pk} ({self.get_mode_display()})"


class CopyViewing(models.Model):
    """The approver played the redacted copy through (issue 15: who approves a copy has watched it).

    Written from the job page's player, under the user's live consultation of the recording; the
    custody event ``redaction.copy_watched`` is written in the same transaction.
    """

    derivative = models.ForeignKey(Derivative, on_delete=models.PROTECT, related_name="viewings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    consultation = models.ForeignKey("evidence.Consultation", on_delete=models.PROTECT, related_name="+")
    played_seconds = models.FloatField()
    duration = models.FloatField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]

    @property
    def coverage(self) -> float:
        return self.played_seconds / self.duration if self.duration else 0.0
