from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .register import register_kind_of

# French wording of each action for the pages (STYLE.md vocabulary), translated when the interface is in
# English (issue 20); the code keeps the keys.
ACTION_LABELS = {
    "organisation.created": _("organisation créée"),
    "organisation.retention_changed": _("durée de conservation de l'organisation modifiée"),
    "role.granted": _("habilitation accordée"),
    "role.changed": _("habilitation modifiée"),
    "role.requested": _("habilitation demandée (en attente du maire)"),
    "role.approved": _("habilitation approuvée par le maire"),
    "role.refused": _("habilitation refusée par le maire"),
    "role.approval_refused": _("approbation d'habilitation refusée"),
    "role.revoked": _("habilitation retirée"),
    "role.reinstated": _("compte réactivé"),
    "account.email_changed": _("adresse électronique modifiée"),
    "access.password_changed": _("mot de passe changé par son titulaire"),
    "access.password_reset": _("mot de passe provisoire fixé par l'administrateur"),
    "access.login_failed": _("échec de connexion"),
    "access.login_failures_counted": _("échecs de connexion répétés (décompte)"),
    "access.second_factor_enrolled": _("second facteur activé"),
    "access.second_factor_reset": _("second facteur réinitialisé"),
    "access.granted": _("habilitation nominative sur des enregistrements"),
    "access.revoked": _("habilitation nominative retirée"),
    "camera.registered": _("caméra enregistrée"),
    "camera.assigned": _("caméra affectée à un agent"),
    "camera.checked_out": _("caméra remise à un agent (sortie)"),
    "camera.checked_in": _("caméra restituée (retour)"),
    "camera.updated": _("caméra modifiée (modèle, micrologiciel)"),
    "camera.retired": _("caméra retirée du service"),
    "camera.reinstated": _("caméra remise en service"),
    "dock.registered": _("station d'accueil enregistrée"),
    "dock.updated": _("station d'accueil renommée ou complétée"),
    "dock.retired": _("station d'accueil retirée du service"),
    "dock.reinstated": _("station d'accueil remise en service"),
    "axis.credential_created": _("identifiants Axis créés"),
    "axis.credential_revoked": _("identifiants Axis révoqués"),
    "axis.system_registered": _("système Axis raccordé"),
    "axis.system_updated": _("système Axis modifié"),
    "axis.user_registered": _("utilisateur Axis enregistré"),
    "axis.user_updated": _("utilisateur Axis modifié"),
    "axis.device_registered": _("caméra Axis enregistrée"),
    "axis.device_updated": _("caméra Axis modifiée"),
    "axis.transfer_started": _("transfert Axis commencé"),
    "axis.transfer_updated": _("transfert Axis : métadonnées modifiées"),
    "axis.transfer_finished": _("transfert Axis terminé"),
    "axis.object_stored": _("objet Axis stocké (signet, trace GNSS…)"),
    "axis.object_metadata_updated": _("métadonnées d'un objet Axis modifiées"),
    "axis.container_purge_started": _("effacement des données Axis commencé"),
    "axis.container_purged": _("données Axis effacées avec les enregistrements"),
    "axis.container_purge_failed": _("effacement des données Axis inachevé"),
    "offload.started": _("déchargement commencé"),
    "offload.finished": _("déchargement terminé"),
    "recording.collected": _("collecte depuis la caméra"),
    "recording.collect_retried": _("nouvelle tentative de collecte"),
    "recording.stored": _("stockage inaltérable"),
    "recording.verified": _("vérification par relecture"),
    "recording.seen_again": _("caméra redéposée : déjà stocké"),
    "recording.store_failed": _("échec du stockage (resté sur la caméra)"),
    "recording.released_from_device": _("effacé de la caméra après vérification"),
    "recording.playback_ready": _("copie de lecture prête"),
    "recording.unplayable": _("illisible (original conservé)"),
    "recording.bundle_unpacked": _("lot d'export d'un partenaire ouvert : ses clips sont des enregistrements"),
    "recording.tagged": _("modification des étiquettes"),
    "recording.bookmarked": _("signet du système Axis"),
    "recording.reviewed": _("revue hiérarchique"),
    "recording.annotated": _("commentaire ou signet"),
    "recording.metadata_updated": _("métadonnées complétées (lieu, trace)"),
    "recording.consulted": _("consultation"),
    "recording.extracted": _("extraction"),
    "recording.erasure_started": _("effacement commencé"),
    "recording.erased": _("effacement"),
    "recording.erasure_failed": _("effacement inachevé (nouvel essai au prochain passage)"),
    "recording.retention_extended": _("durée de conservation prolongée"),
    "recording.access_denied": _("tentative d'accès refusée"),
    "hold.placed": _("conservation pour procédure"),
    "intervention.created": _("intervention créée"),
    "intervention.linked": _("enregistrement rattaché à l'intervention"),
    "intervention.unlinked": _("enregistrement détaché de l'intervention"),
    "intervention.clock_corrected": _("horloge d'une caméra corrigée pour l'intervention"),
    "hold.extended": _("conservation pour procédure étendue à l'enregistrement"),
    "hold.released": _("fin de conservation pour procédure"),
    "extraction.downloaded": _("extraction téléchargée"),
    "export.failed": _("échec de l'export"),
    "export.erasure_started": _("effacement de l'export commencé"),
    "export.erased": _("export effacé"),
    "export.erasure_failed": _("effacement de l'export inachevé"),
    "share.viewed": _("page de partage consultée"),
    "share.refused": _("partage refusé (expiré, épuisé, révoqué ou effacé)"),
    "access_request.registered": _("demande d'accès enregistrée"),
    "access_request.extended": _("demande d'accès : délai prolongé"),
    "access_request.searched": _("demande d'accès : recherche d'enregistrements"),
    "access_request.recordings_selected": _("demande d'accès : enregistrements retenus"),
    "access_request.decided": _("demande d'accès : décision"),
    "access_request.delivered": _("demande d'accès : réponse remise"),
    "access_request.reminder_sent": _("demande d'accès : rappel d'échéance envoyé au DPO"),
    "requisition.created": _("réquisition adressée à un partenaire (lien de dépôt)"),
    "requisition.declared": _("réquisition : le déposant du partenaire s'est déclaré (lien lié à son navigateur)"),
    "requisition.declarant_erased": _("réquisition : coordonnées du déposant effacées (trois ans)"),
    "requisition.upload_started": _("réquisition : dépôt d'un fichier commencé"),
    "requisition.upload_failed": _("réquisition : fichier refusé ou non stocké"),
    "requisition.upload_terminated": _("réquisition : dépôt abandonné par le partenaire"),
    "requisition.upload_abandoned": _("réquisition : dépôt inachevé abandonné, fichier partiel retiré"),
    "redaction.requested": _("floutage demandé"),
    "redaction.analysed": _("floutage : détection terminée"),
    "redaction.reviewed": _("floutage : relecture enregistrée"),
    "redaction.render_requested": _("floutage : production de la copie demandée"),
    "redaction.rendered": _("copie floutée produite"),
    "redaction.approved": _("copie floutée approuvée"),
    "redaction.checked": _("copie floutée : vérification automatique"),
    "redaction.copy_watched": _("copie floutée visionnée"),
    "redaction.approval_refused": _("copie floutée : approbation refusée"),
    "redaction.failed": _("floutage : échec"),
    "export.requested": _("export demandé"),
    "export.created": _("export demandé"),
    "export.ready": _("export prêt"),
    "export.downloaded": _("export téléchargé"),
    "share.created": _("partage créé"),
    "share.downloaded": _("partage téléchargé"),
    "share.revoked": _("partage révoqué"),
    "register.exported": _("export du registre"),
    "backup.created": _("sauvegarde (base de données et stockage)"),
    "backup.restored": _("restauration d'une sauvegarde"),
    "custody.checkpointed": _("point de contrôle signé"),
    "custody.purged": _("purge des entrées de plus de trois ans"),
    "traceability.purged": _("purge des traces de plus de trois ans"),
    "store.orphan_found": _("objet sans propriétaire trouvé dans le stockage"),
    "store.orphan_erasure_started": _("effacement d'un objet sans propriétaire commencé"),
    "store.orphan_erased": _("objet sans propriétaire effacé"),
    "store.orphan_erasure_failed": _("effacement d'un objet sans propriétaire inachevé"),
    "compliance.audited": _("contrôle de conformité"),
    "compliance.report_exported": _("rapport de conformité signé exporté"),
}


class CustodyEvent(models.Model):
    """One entry of the journal de traçabilité (CSI R241-14, LIL art. 101).

    Append-only and hash-chained: ``hash`` covers ``prev_hash`` and the canonical serialisation of
    the entry (see ``audit.chain.custody_event_canonical``), kept byte for byte in ``canonical``.
    The database refuses UPDATE, DELETE and TRUNCATE on this table (migration 0005, audit/guards.py);
    only the three-year purge may delete, after a signed checkpoint.
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
    # The exact bytes ``hash`` covers, stored at append time so that verification hashes them
    # without re-serialising (bench/custody.py). Null only for entries written before issue 3 whose
    # columns no longer rebuild their hash; those are rebuilt from the columns by the verifier.
    # On PostgreSQL a validated CHECK constraint ties the columns to these bytes.
    canonical = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]
        verbose_name = _("entrée du journal de traçabilité")
        verbose_name_plural = _("journal de traçabilité")

    @property
    def action_label(self) -> str:
        return str(ACTION_LABELS.get(self.action, self.action))

    @property
    def register_kind(self) -> str:
        return register_kind_of(self.action)

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.subject_type}:{self.subject_id}"


class Checkpoint(models.Model):
    """A signed statement "the log held entries first_seq..seq, the last one hashing to head_hash".

    ``payload`` is the exact signed text (Ed25519, the deployment key); the other columns repeat it
    for queries. A copy of the signed document lives in the write-once store (``store_key``).
    The database refuses UPDATE and DELETE on this table as on the log itself.
    """

    class Reason(models.TextChoices):
        SCHEDULED = "scheduled", _("périodique")
        PURGE = "purge", _("avant purge")
        MANUAL = "manual", _("manuel")

    seq = models.BigIntegerField(db_index=True)
    head_hash = models.CharField(max_length=64)
    first_seq = models.BigIntegerField()
    count = models.BigIntegerField()
    created_at = models.DateTimeField()
    reason = models.CharField(max_length=16, choices=Reason.choices, default=Reason.SCHEDULED)
    # CSI R241-14: entries up to this one may be purged (kept three years); their last hash stays
    # attested here so that the chain still verifies from this checkpoint.
    purge_through_seq = models.BigIntegerField(null=True, blank=True, db_index=True)
    purge_through_hash = models.CharField(max_length=64, blank=True)
    purge_before = models.DateTimeField(null=True, blank=True)
    payload = models.TextField()
    signature = models.CharField(max_length=200)
    key_id = models.CharField(max_length=64)
    store_key = models.CharField(max_length=500)
    store_version_id = models.CharField(max_length=200, blank=True)
    tsa_url = models.CharField(max_length=500, blank=True)
    tsa_token = models.BinaryField(null=True, blank=True, editable=False)
    tsa_time = models.DateTimeField(null=True, blank=True)
    # The custody.checkpointed entry that records this checkpoint in the chain.
    event_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["seq", "id"]
        get_latest_by = "seq"
        verbose_name = _("point de contrôle signé")
        verbose_name_plural = _("points de contrôle signés")

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} ({self.created_at:%Y-%m-%d %H:%M})"


class Verification(models.Model):
    """The result of one run of ``custody verify`` (by the command, the beat task or a page)."""

    class Mode(models.TextChoices):
        FAST = "fast", _("chaîne et protections")
        FULL = "full", _("complète (colonnes comprises)")

    started_at = models.DateTimeField(db_index=True)
    duration = models.FloatField(default=0.0)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.FAST)
    ok = models.BooleanField()
    events = models.BigIntegerField(default=0)
    first_seq = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    anchor = models.CharField(max_length=100, blank=True)
    latest_checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    checkpoints = models.IntegerField(default=0)
    problem_kind = models.CharField(max_length=16, blank=True)
    problem_seq = models.BigIntegerField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)
    triggered_by = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        verbose_name = _("vérification du journal")
        verbose_name_plural = _("vérifications du journal")

    def __str__(self) -> str:
        return f"{'intact' if self.ok else 'NOT intact'} {self.started_at:%Y-%m-%d %H:%M}"


class Alert(models.Model):
    """Something an administrator must look at: the custody log failed verification, a checkpoint
    could not be written, an erasure did not finish, a legal invariant does not hold. Shown on
    /journal/ and /conformite/ (admin, mayor, DPO), on the health page and in the Django admin."""

    class Kind(models.TextChoices):
        CHAIN_BROKEN = "chain_broken", _("journal de traçabilité altéré")
        CHECKPOINT_FAILED = "checkpoint_failed", _("point de contrôle impossible")
        PURGE_FAILED = "purge_failed", _("purge impossible")
        # CSI R241-13: an erasure the store refused or that failed; retried by every sweep.
        ERASURE_FAILED = "erasure_failed", _("effacement inachevé")
        # A legal invariant that does not hold on the deployment (``compliance audit``).
        COMPLIANCE = "compliance", _("règle légale non respectée")

    created_at = models.DateTimeField(db_index=True)
    last_seen_at = models.DateTimeField()
    occurrences = models.IntegerField(default=1)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # The organisation the problem concerns, when it concerns one (shown to its DPO and mayor).
    organisation = models.ForeignKey("accounts.Organisation", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    seq = models.BigIntegerField(null=True, blank=True)
    problem_kind = models.CharField(max_length=64, blank=True)
    message = models.TextField()
    verification = models.ForeignKey(Verification, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="alerts")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    acknowledgement = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("alerte")
        verbose_name_plural = _("alertes")

    @property
    def open(self) -> bool:
        return self.acknowledged_at is None

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.seq or '-'}"


class ComplianceAudit(models.Model):
    """One run of the compliance audit (audit/compliance/): what it found, when, on what."""

    started_at = models.DateTimeField(db_index=True)
    checked_at = models.DateTimeField()  # the time the rules were checked at (an injected clock in tests)
    duration = models.FloatField(default=0.0)
    ok = models.BooleanField()
    could_not_look = models.TextField(blank=True)
    violation_count = models.IntegerField(default=0)
    violations = models.JSONField(default=list, blank=True)  # the first 5,000
    organisations = models.JSONField(default=list, blank=True)  # ids concerned by a violation
    heads_checked = models.BigIntegerField(default=0)
    triggered_by = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        get_latest_by = "started_at"
        verbose_name = _("contrôle de conformité")
        verbose_name_plural = _("contrôles de conformité")

    def __str__(self) -> str:
        return f"compliance audit {self.started_at:%Y-%m-%d %H:%M}: {'ok' if self.ok else 'violations'}"


class HealthSnapshot(models.Model):
    """A health check too slow or too costly for a request, computed by a beat task and read by /sante/.

    ``name`` is the component (``workers``: Celery's broadcast inspection, about a second on Redis and
    three on the embedded filesystem broker). An anonymous burst on /api/health/ then costs one
    SELECT per request instead of one broadcast each (issue 17)."""

    name = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=8)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    seconds = models.FloatField(default=0.0)
    checked_at = models.DateTimeField()

    class Meta:
        verbose_name = _("état d'un composant")
        verbose_name_plural = _("états des composants")

    def __str__(self) -> str:
        return f"{self.name}: {self.status} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class RequestWindow(models.Model):
    """How many times one source did one thing in one fixed window: rate limits and the aggregation
    of failed logins (audit/throttle.py). ``scope`` names the thing (``login.failed``, ``axis.auth``,
    ``share.download``…), ``source`` the client (an address, a token's id); rows of past windows are
    pruned by the beat."""

    scope = models.CharField(max_length=32)
    source = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    count = models.BigIntegerField(default=0)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    # Usernames tried in the window (failed logins), the first few only: enough to see a spray.
    samples = models.JSONField(default=list, blank=True)
    # Failed logins: when the window's count went to the custody log (after the window ended).
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "source", "window_start"],
                                               name="audit_requestwindow_unique")]
        indexes = [models.Index(fields=["window_start"], name="audit_reqwin_start")]
        verbose_name = _("fenêtre de comptage")
        verbose_name_plural = _("fenêtres de comptage")

    def __str__(self) -> str:
        return f"{self.scope} {self.source} {self.window_start:%Y-%m-%d %H:%M}: {self.count}"
