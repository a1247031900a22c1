"""Reads on the custody log, always scoped to the requesting user (CSI R241-12, R241-14)."""
from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _, gettext_lazy

from accounts.models import Role, User

from .models import Alert, Checkpoint, CustodyEvent, Verification
from .register import register_kind_q

# CSI R241-14: the register of consultations, extractions and erasures is read by the data
# controller (maire), the DPO and the commune's legal staff; shown to the CNIL on request.
REGISTER_ROLES = {Role.MAYOR, Role.DPO, Role.LEGAL}
# Who is told when the log fails verification: the technical administrator, the maire, the DPO.
JOURNAL_ROLES = {Role.ADMIN, Role.MAYOR, Role.DPO}

def _active_member(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.organisation_id)


def register_can_read(user: User) -> bool:
    return _active_member(user) and user.role in REGISTER_ROLES


def journal_can_read(user: User) -> bool:
    return _active_member(user) and user.role in JOURNAL_ROLES


def register_entries_visible_to(*, user: User, kind: str = "", since: dt.datetime | None = None,
                                until: dt.datetime | None = None, author: str = "",
                                recording_id: int | None = None) -> QuerySet[CustodyEvent]:
    """Register entries of the user's organisation, newest first; none for other roles."""
    qs = CustodyEvent.objects.select_related("actor")
    if not register_can_read(user):
        return qs.none()
    qs = qs.filter(register_kind_q(kind), organisation_id=user.organisation_id)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    if until is not None:
        qs = qs.filter(occurred_at__lt=until)
    if author:
        qs = qs.filter(Q(actor_label__icontains=author) | Q(actor__username__iexact=author)
                       | Q(actor__matricule__iexact=author) | Q(actor__last_name__icontains=author))
    if recording_id is not None:
        qs = qs.filter(recording_id=recording_id)
    return qs.order_by("-seq")


def recording_custody_events(*, recording) -> QuerySet[CustodyEvent]:
    """Every entry about one recording, oldest first. The caller has checked the recording is
    visible to the user (evidence.access.selectors.recordings_visible_to)."""
    return CustodyEvent.objects.filter(recording_id=recording.pk).order_by("seq")


def alerts_visible_to(*, user: User) -> QuerySet[Alert]:
    # The chain is one for the deployment: its alerts concern every organisation hosted. An alert
    # about one organisation's recordings (an erasure, a compliance violation) is that organisation's.
    if not journal_can_read(user):
        return Alert.objects.none()
    from django.db.models import Q

    return (Alert.objects.filter(Q(organisation__isnull=True) | Q(organisation_id=user.organisation_id))
            .select_related("acknowledged_by").order_by("acknowledged_at", "-created_at"))


def compliance_can_read(user: User) -> bool:
    """The DPO and the mayor answer for the rules (and the administrator runs the deployment)."""
    return journal_can_read(user)


def compliance_latest(*, user: User):
    """The latest compliance audit, with only what concerns the user's organisation (and the
    deployment-wide findings, such as the custody chain)."""
    from .models import ComplianceAudit

    if not compliance_can_read(user):
        return None, []
    audit = ComplianceAudit.objects.order_by("-started_at", "-id").first()
    if audit is None:
        return None, []
    slug = user.organisation.slug if user.organisation_id else None
    return audit, [v for v in audit.violations if v.get("organisation") in (None, slug)]


def verifications_recent(*, user: User, limit: int = 10) -> list[Verification]:
    if not journal_can_read(user):
        return []
    return list(Verification.objects.select_related("latest_checkpoint")[:limit])


def checkpoints_recent(*, limit: int = 10) -> list[Checkpoint]:
    """Checkpoints carry hashes and signatures only, no personal data: readable by any user."""
    return list(Checkpoint.objects.order_by("-seq", "-id")[:limit])


def verification_latest() -> Verification | None:
    return Verification.objects.select_related("latest_checkpoint").first()


# --- Custody report of one recording ---------------------------------------------------------

def _fmt_time(value, tz) -> str:
    if value is None:
        return "—"
    return value.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S %Z")


# Issue 20: the register and the custody report are read by people outside the service (a court
# clerk, the CNIL): French words (English ones when the reader chose English), no empty fields ("duplicate_of : None"), no raw lists of changes,
# no storage paths (the identifiers table of the report names the stored object once).
DETAIL_LABELS = {
    "trigger_reason": gettext_lazy("motif de déclenchement"), "subject_notified": gettext_lazy("personnes filmées informées"),
    "notice_omitted_reason": gettext_lazy("raison de l'absence d'information"), "purpose": gettext_lazy("finalité"),
    "intervention": gettext_lazy("intervention"), "from": gettext_lazy("avant"), "to": gettext_lazy("après"), "note": gettext_lazy("note"), "rule": gettext_lazy("règle"),
    "procedure": gettext_lazy("procédure"), "reference": gettext_lazy("référence"), "recipient": gettext_lazy("destinataire"), "decision": gettext_lazy("décision"),
    "legal_ground": gettext_lazy("fondement"), "recordings": gettext_lazy("enregistrements"), "sha256": gettext_lazy("SHA-256"), "size": gettext_lazy("taille (octets)"),
    "expires_at": gettext_lazy("expire le"), "consultation": gettext_lazy("consultation n°"), "access_request": gettext_lazy("demande d'accès n°"),
    "export": gettext_lazy("export n°"), "hold": gettext_lazy("conservation n°"), "at_seconds": gettext_lazy("instant (s)"), "kind": gettext_lazy("type"),
    "text": gettext_lazy("texte"), "camera": gettext_lazy("caméra"), "officer": gettext_lazy("agent"), "format": gettext_lazy("format"), "entries": gettext_lazy("entrées"),
    "status": gettext_lazy("état"), "reason": gettext_lazy("raison"), "changes": gettext_lazy("modifications"), "redaction": gettext_lazy("floutage"),
}
HIDDEN_DETAILS = ("payload_b64", "signature", "stream_hashes", "command", "media_info")
VALUE_WORDS = {True: gettext_lazy("oui"), False: gettext_lazy("non"), "incident": gettext_lazy("incident"), "risk_of_incident": gettext_lazy("risque d'incident"),
               "reviewed": gettext_lazy("revu"), "unreviewed": gettext_lazy("non revu"), "flagged": gettext_lazy("signalé"), "judicial": gettext_lazy("judiciaire"),
               "administrative": gettext_lazy("administrative"), "disciplinary": gettext_lazy("disciplinaire"), "training": gettext_lazy("formation"),
               "prevention": gettext_lazy("prévention"), "offence": gettext_lazy("constatation d'infraction"), "evidence": gettext_lazy("preuve")}


def _is_internal(key: str, value) -> bool:
    if key in HIDDEN_DETAILS or value is None or value == "" or value == [] or value == {}:
        return True
    # Storage keys and file-system paths mean nothing to a reader outside and expose the layout.
    return key.endswith(("_key", "_path", "path", "volume", "version_id")) or key in ("key", "bucket")


def _pair(label: str, value: str) -> str:
    # French puts a space before the colon, English does not.
    return _("%(label)s : %(value)s") % {"label": label, "value": value}


def _label(key: str) -> str:
    return str(DETAIL_LABELS.get(key, key.replace("_", " ")))


def _word(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return ", ".join(_word(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{_label(k)} {_word(v)}" for k, v in value.items()
                         if not _is_internal(k, v))
    if isinstance(value, bool) or (isinstance(value, str) and value in VALUE_WORDS):
        return str(VALUE_WORDS[value])
    return str(value)


def details_summary(details: dict, limit: int = 400) -> str:
    """Details of a custody event as a person reads them, in the language in use (French by default)."""
    parts = []
    for key, value in (details or {}).items():
        if _is_internal(key, value):
            continue
        if key == "changes" and isinstance(value, dict):
            # {"trigger_reason": ["", "risk_of_incident"]} → "motif de déclenchement : — → risque d'incident"
            for field, change in value.items():
                label = _label(field)
                if isinstance(change, (list, tuple)) and len(change) == 2:
                    parts.append(_pair(label, f"{_word(change[0])} → {_word(change[1])}"))
                else:
                    parts.append(_pair(label, _word(change)))
            continue
        parts.append(_pair(_label(key), _word(value)))
    text = _(" ; ").join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def author_name(event) -> str:
    """The author as a person reads it: full name and role, not "user:login" (issue 20)."""
    actor = getattr(event, "actor", None)
    if event.actor_id is not None and actor is not None:
        name = actor.get_full_name() or actor.username
        return f"{name} ({actor.get_role_display()})"
    label = str(event.actor_label or "")
    if label.startswith("external:"):
        return _("destinataire externe (%(who)s)") % {"who": label.split(":", 1)[1]}
    if label.startswith("user:"):
        return label.split(":", 1)[1]
    return _("système") if label in ("", "system") else label


WITHHELD = gettext_lazy("réservé aux personnes habilitées")


def _report_event(e, tz) -> dict:
    row = {"seq": e.seq, "when": _fmt_time(e.occurred_at, tz), "author": author_name(e), "action": e.action_label,
           "motif": e.motif, "recipients": ", ".join(map(str, e.recipients or [])),
           "details": details_summary(e.details), "hash": e.hash}
    return row


def _wearer_rows(rows: list[dict], events, user, own_in_full: bool = True) -> list[dict]:
    """The agent's variant: their own entries in full; others' by role, without motif, recipients
    or details (the hash stays: the proof is the same)."""
    out = []
    for row, e in zip(rows, events):
        if own_in_full and e.actor_id == user.pk:
            out.append(row)
            continue
        if e.actor_id is not None and e.actor is not None:
            author = e.actor.get_role_display()
        elif str(e.actor_label).startswith("external:"):
            author = _("destinataire externe")
        else:
            author = _("système")
        out.append({**row, "author": author, "motif": str(WITHHELD) if e.motif else "",
                    "recipients": str(WITHHELD) if e.recipients else "", "details": ""})
    return out


def recording_custody_report(*, recording, user, now=None, restricted: bool | None = None) -> dict:
    """Everything the custody report shows: identifiers, hashes, every entry, and the proof that
    those entries are unaltered parts of the signed chain (audit.verification.prove_entries)."""
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from .verification import prove_entries
    from .integrations import signing

    from accounts.models import Role

    now = now or timezone.now()
    tz = ZoneInfo(recording.organisation.time_zone or "Europe/Paris")
    # Issue 15: an agent (the wearer, or one individually authorised) reads what was done with the
    # recording, not who else asked for it nor why: third parties' names, motifs and recipients of
    # procedures (a citizen's access request, a disciplinary extraction) stay with supervisor, legal
    # staff, DPO and mayor (RGPD art. 5-1-c; LIL art. 107 for the data subjects).
    wearer_view = user is not None and getattr(user, "role", None) == Role.OFFICER
    subject_copy = bool(restricted)  # a data subject's copy (disclosure/package.py): nobody's entries in full
    if restricted is not None:
        wearer_view = restricted
    events = list(recording_custody_events(recording=recording).select_related("actor"))
    proof = prove_entries([e.seq for e in events])
    key = signing.public_key()
    fingerprint = signing.key_id(key) if key is not None else ""

    lines = []
    if not events:
        headline = _("Aucun événement à vérifier pour cet enregistrement.")
    elif proof.ok:
        ranges = ", ".join(_("n° %(first)s à %(last)s") % {"first": lo, "last": hi} for lo, hi in proof.ranges)
        headline = _("Intègre : les %(count)s événements ont été recalculés dans la chaîne (%(ranges)s).") % {
            "count": len(events), "ranges": ranges}
    else:
        headline = _("NON INTÈGRE : le journal de traçabilité ne prouve plus ces événements.")
    for cp in proof.checkpoints:
        stamp = (_(", horodaté le %(when)s par une autorité d'horodatage RFC 3161 (%(tsa)s)") % {
            "when": _fmt_time(cp.tsa_time, tz), "tsa": cp.tsa_url} if cp.tsa_time else "")
        lines.append(_("S'appuie sur le point de contrôle signé n° %(seq)s du %(when)s (empreinte de tête %(hash)s, "
                       "%(count)s entrées, clé Ed25519 %(key)s…)%(stamp)s.") % {
            "seq": cp.seq, "when": _fmt_time(cp.created_at, tz), "hash": cp.head_hash, "count": cp.count,
            "key": cp.key_id[:16], "stamp": stamp})
    if proof.unsealed_from is not None:
        lines.append(_("Les événements à partir du n° %(first)s sont postérieurs au dernier point de contrôle : "
                       "vérifiés jusqu'à la tête du journal (n° %(head)s), ils seront scellés par le prochain point "
                       "de contrôle signé.") % {"first": proof.unsealed_from, "head": proof.head_seq})
    for problem in proof.problems:
        lines.append(_("%(problem)s (entrée n° %(seq)s) : %(message)s") % {
            "problem": problem.label, "seq": problem.seq, "message": problem.message})
    if wearer_view:
        lines.append((_("Version remise à la personne filmée") if subject_copy else _("Version de l'agent"))
                     + _(" : les noms des tiers, les motifs et les destinataires des démarches faites par d'autres "
                         "sont réservés au responsable de service, au service juridique, au DPO et au maire ; les "
                         "empreintes, identiques, prouvent la même chaîne."))
    latest = verification_latest()
    if latest is not None:
        lines.append(_("Dernière vérification du journal entier : %(when)s, %(result)s (%(count)s entrées).") % {
            "when": _fmt_time(latest.started_at, tz), "result": _("intègre") if latest.ok else _("NON INTÈGRE"),
            "count": latest.events})
    if fingerprint:
        lines.append(_("Empreinte SHA-256 de la clé publique de ce déploiement : %(fingerprint)s.") % {
            "fingerprint": fingerprint})

    r = recording
    identifiers = [
        (_("Numéro"), str(r.pk)), (_("Identifiant unique"), str(r.uuid)), (_("Organisation"), r.organisation.name),
        (_("Caméra individuelle"), f"{r.camera.serial}{f' ({r.camera.model})' if r.camera.model else ''}"),
        (_("Agent porteur"), str(r.wearer) if r.wearer_id else _("non renseigné")),
        (_("Début / fin"), f"{_fmt_time(r.started_at, tz)} → {_fmt_time(r.ended_at, tz)}"
                           f"{'' if r.time_attested else ' ' + _('(heure non attestée)')}"),
        (_("Fichier sur la caméra"), r.source_path), (_("Intervention"), r.intervention or "—"),
        (_("Stockage inaltérable"), _("original conservé en écriture unique")
         + (f" (version {r.store_version_id})" if r.store_version_id else "")),
        (_("Statut"), r.get_status_display()), (_("Date d'effacement"), _fmt_time(r.retain_until, tz)),
    ]
    hashes = [(_("Fichier original"), r.sha256 or "—"),
              (_("Taille"), _("%(size)s octets") % {"size": r.size} if r.size is not None else "—"),
              (_("Empreinte donnée par la caméra"), r.camera_sha256 or "—")]
    if r.camera_hash_matches is not None:
        hashes.append((_("Concordance caméra / stockage"), _("oui") if r.camera_hash_matches else _("NON")))
    if r.sidecar_sha256:
        hashes.append((_("Métadonnées de la caméra"), r.sidecar_sha256))
    labels = {"original": _("original"), "playback": _("copie de lecture")}
    for copy, streams in (r.stream_hashes or {}).items():
        for stream, value in (streams or {}).items():
            kind = {"v": _("vidéo"), "a": _("audio")}.get(stream.split(":")[0], stream)
            hashes.append((_("Flux %(kind)s %(stream)s (%(copy)s)") % {"kind": kind, "stream": stream,
                                                                       "copy": labels.get(copy, copy)}, value))

    return {
        "recording": r,
        "organisation": r.organisation.name,
        "generated": _fmt_time(now, tz),
        "generated_by": (user.get_full_name() or user.username) if user is not None else _("système"),
        "identifiers": identifiers,
        "hashes": hashes,
        "events": (_wearer_rows([_report_event(e, tz) for e in events], events, user, not subject_copy)
                   if wearer_view
                   else [_report_event(e, tz) for e in events]),
        "wearer_view": wearer_view,
        "verification": {"ok": proof.ok, "headline": headline, "lines": lines, "proof": proof},
        "key_fingerprint": fingerprint,
        "how_to_verify": _("Chaque empreinte d'événement est le SHA-256 de l'empreinte précédente, d'un saut de "
                           "ligne et de l'enregistrement canonique de l'événement ; les points de contrôle signent "
                           "l'empreinte de tête avec la clé Ed25519 publiée sur la page « clé publique » du "
                           "journal de traçabilité. La procédure de vérification indépendante figure dans la "
                           "documentation « Journal de traçabilité » de Témoin, remise par le service sur demande."),
    }
