from django.conf import settings
from django.db import models


class CustodyEvent(models.Model):
    """One entry of the journal de traçabilité (CSI R241-14, LIL art. 101).

    Append-only and hash-chained: ``hash`` covers ``prev_hash`` and the canonical serialisation of
    the entry (see ``audit.services.custody_event_canonical``). Rows are never updated or deleted.
    """

    seq = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField(db_index=True)
    organisation = models.ForeignKey(
        "accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who acted, as text that survives the user row: "user:jdupont" or "system:offload@dock1".
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    subject_type = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=64)
    recording = models.ForeignKey(
        "evidence.Recording",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="custody_events",
    )
    motif = models.TextField(blank=True)
    recipients = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject_type}:{self.subject_id}"
