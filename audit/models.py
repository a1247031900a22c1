from django.conf import settings
from django.db import models


# French wording of each action for the pages (STYLE.md vocabulary); the code keeps the keys.
ACTION_LABELS = {
    "organisation.created": "organisation créée",
    "role.granted": "habilitation accordée",
    "camera.registered": "caméra enregistrée",
    "camera.assigned": "caméra affectée à un agent",
    "offload.started": "déchargement commencé",
    "offload.finished": "déchargement terminé",
    "recording.collected": "collecte depuis la caméra",
    "recording.collect_retried": "nouvelle tentative de collecte",
    "recording.stored": "stockage inaltérable",
    "recording.verified": "vérification par relecture",
    "recording.seen_again": "caméra redéposée : déjà stocké",
    "recording.store_failed": "échec du stockage (resté sur la caméra)",
    "recording.released_from_device": "effacé de la caméra après vérification",
    "recording.playback_ready": "copie de lecture prête",
    "recording.unplayable": "illisible (original conservé)",
}


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

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject_type}:{self.subject_id}"
