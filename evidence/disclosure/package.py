"""Building an export package: a ZIP a court, a defence lawyer or a data subject can verify offline.

Contents (docs/disclosure.md):

    recordings/<n>-<id>.<ext>         the originals, or the approved redacted copies
    reports/tracabilite-<id>.pdf      the custody report of each recording (audit/pdf.py)
    public_key.pem                    the deployment's Ed25519 public key
    verify.py                         standalone verifier (Python standard library only)
    verify.html                       the same checks in a browser, offline (WebCrypto; no network)
    LISEZMOI.txt                      how to verify, in French and English
    manifest.json                     SHA-256 of every file above, recordings, custody events, the
                                      chain segments that link them to signed checkpoints
    manifest.sig                      Ed25519 signature of manifest.json (base64)
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import uuid
import zipfile
from pathlib import Path

from django.db.models import Q
from django.utils import timezone, translation

from audit.chain import canonical_from_row, FULL_COLUMNS
from audit.verification import check_checkpoints, prove_entries
from audit.integrations import signing
from audit.models import Checkpoint, CustodyEvent
from audit.services import custody_checkpoint_create
from evidence.integrations.store import HashingReader, get_store

from .models import Export
from .training import build_training
from .zipstream import Built, ZipPipe, ZipWriter

FORMAT = "temoin-export/1"
# The ZIP follows the fate of the recordings it carries (CSI R241-13): it is locked until the
# earliest retention end among them, and is erased with the first of them that goes (the sweep).
# Held recordings may be past their end: a lock date must lie in the future, hence this minimum.
MIN_LOCK = dt.timedelta(minutes=1)


HASH_RULE = ("hash = SHA-256(prev_hash + \"\\n\" + canonical) in lowercase hex; canonical = the entry as JSON "
             "with sorted keys, no whitespace, UTF-8, times in UTC with microseconds; prev_hash of entry 1 is "
             "\"0\" * 64.")
TREE_RULE = ("Each segment runs from an exported item's event to the first signed checkpoint at or after it. "
             "Its entries are the leaves of a Merkle tree (RFC 9162 section 2.1): leaf = SHA-256(0x00 + "
             "\"<seq>:<hash>\"), node = SHA-256(0x01 + left + right), the entries in seq order. The package "
             "carries, for each segment, the root (signed with the manifest), the audit path of each item event "
             "and the audit path of the checkpoint's entry, whose hash the checkpoint's Ed25519 signature fixes. "
             "Other entries appear only as the hashes of those paths: their content never leaves the log. The "
             "links between entries were recomputed by the deployment before signing (audit.verification.prove_entries).")

README = """Export Témoin n° {id} — {purpose}
Destinataire / recipient : {recipient}

FRANÇAIS
Ce dossier contient les enregistrements, leur rapport de traçabilité (PDF), le manifeste signé et deux
programmes de vérification, qui font les mêmes vérifications sans réseau ni installation :

  - verify.html : ouvrez ce fichier dans un navigateur récent (Firefox, Chrome, Edge, Safari), puis
    choisissez le fichier ZIP reçu ou ce dossier. La page affiche OK ou NOT OK pour chaque fichier et
    chaque vérification ; rien n'est envoyé, elle fonctionne hors connexion.
  - verify.py, pour qui préfère la ligne de commande (Python 3.8 ou plus) :

        python3 verify.py

    Il se termine avec le code 0 si tout concorde, 1 sinon.

Comparez l'empreinte de clé publique affichée avec celle que publie le service
(Journal de traçabilité > clé publique).

ENGLISH
This folder holds the recordings, their custody reports (PDF), the signed manifest and two verifiers
making the same checks offline, with nothing to install:

  - verify.html: open this file in a recent browser (Firefox, Chrome, Edge, Safari), then choose the
    ZIP you received or this folder. The page shows OK or NOT OK for each file and each check; nothing
    is sent anywhere, it works offline.
  - verify.py, for those who prefer the command line (Python 3.8 or later):

        python3 verify.py

    It exits with 0 when everything matches, 1 otherwise.

Compare the public key fingerprint shown with the one the police service publishes.

Empreinte SHA-256 de la clé publique / public key fingerprint: {fingerprint}
"""


def _utc(value) -> str | None:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


def _canonical(row: dict) -> bytes:
    return bytes(row["canonical"]) if row["canonical"] is not None else canonical_from_row(row)


def _leaf(seq: int, digest: str) -> bytes:
    return hashlib.sha256(b"\x00" + f"{seq}:{digest}".encode()).digest()


def merkle_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """The levels of an RFC 9162 tree, leaves first: a last node without a sibling moves up as it is."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        below = levels[-1]
        up = [hashlib.sha256(b"\x01" + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            up.append(below[-1])
        levels.append(up)
    return levels


def merkle_path(levels: list[list[bytes]], index: int) -> list[str]:
    """The audit path of leaf ``index`` (RFC 9162 section 2.1.3.1), from the leaf up, hex."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling].hex())
        index >>= 1
    return path


# What a data subject's copy proves (LIL art. 105; issue 15): the bytes' custody (collected,
# stored, verified), the redacted copy handed over, and this export, nothing about other people's
# requests or procedures on the same recording.
SUBJECT_COPY_ACTIONS = {"recording.collected", "recording.stored", "recording.verified"}


def _disclosed(row: dict, export: Export) -> bool:
    if export.purpose != "access_request":
        return True
    if row["subject_type"] == "disclosure.export":
        return row["subject_id"] == str(export.pk)
    if row["action"] in SUBJECT_COPY_ACTIONS:
        return True
    details = row["details"] or {}
    if row["action"] == "recording.extracted":
        return details.get("export") == export.pk
    if row["subject_type"] == "redaction.derivative":
        return int(row["subject_id"]) in set(export.items.exclude(derivative_id=None)
                                             .values_list("derivative_id", flat=True))
    return False


class CustodyNotProven(RuntimeError):
    pass


def custody_proof(*, recording_ids: list[int], export: Export) -> dict:
    """The item events and, for each, a Merkle audit path to a segment ending on a signed checkpoint.

    A new checkpoint is signed first, so that every event written so far (the extraction itself
    included) ends on a signature. The package discloses the content of its own items' events only:
    every other entry is present at most as a hash on an audit path (issue 15; RGPD art. 5-1-c,
    minimisation). The deployment first proves the segments from the stored bytes (prove_entries),
    and refuses to sign a package over a chain that does not verify.
    """
    custody_checkpoint_create(reason=Checkpoint.Reason.MANUAL)
    key = signing.public_key()
    valid = sorted((c for c in check_checkpoints(list(Checkpoint.objects.order_by("seq", "id")), key) if c.valid),
                   key=lambda c: c.statement["seq"])
    latest = valid[-1].statement["seq"] if valid else 0
    item_q = Q(recording_id__in=recording_ids) | Q(subject_type="disclosure.export", subject_id=str(export.pk))
    rows = CustodyEvent.objects.filter(item_q, seq__lte=latest).order_by("seq").values(
        "seq", "action", "subject_type", "subject_id", "details")
    seqs = [r["seq"] for r in rows if _disclosed(r, export)]
    proof = prove_entries(seqs)
    if not proof.ok:
        raise CustodyNotProven("custody chain does not verify: " + "; ".join(p.message for p in proof.problems))
    # Each event ends on the first signed checkpoint at or after it; events sharing it share a segment.
    ranges: list[list] = []
    for s in seqs:
        end = next(c for c in valid if c.statement["seq"] >= s)
        if ranges and ranges[-1][2] is end:
            continue
        ranges.append([s, end.statement["seq"], end])
    segments, where, used = [], {}, {}
    for number, (lo, hi, end) in enumerate(ranges):
        hashes = list(CustodyEvent.objects.filter(seq__gte=lo, seq__lte=hi).order_by("seq")
                      .values_list("seq", "hash").iterator(chunk_size=5000))
        if [h[0] for h in hashes[:1] + hashes[-1:]] != [lo, hi] or len(hashes) != hi - lo + 1:
            raise CustodyNotProven(f"custody entries #{lo}–#{hi} are not contiguous")
        levels = merkle_levels([_leaf(q, h) for q, h in hashes])
        for q in seqs:
            if lo <= q <= hi:
                where[q] = (number, merkle_path(levels, q - lo))
        segments.append({"from_seq": lo, "to_seq": hi, "size": hi - lo + 1, "root": levels[-1][0].hex(),
                         "checkpoint_seq": hi, "checkpoint_path": merkle_path(levels, hi - lo)})
        used[end.checkpoint.pk] = end.checkpoint
    events = []
    for r in CustodyEvent.objects.filter(seq__in=seqs).order_by("seq").values(*FULL_COLUMNS):
        canonical = _canonical(r)
        readable = json.loads(canonical)
        number, path = where[r["seq"]]
        readable.update({"prev_hash": r["prev_hash"], "hash": r["hash"],
                         "action_label": CustodyEvent(action=r["action"]).action_label,
                         "canonical_b64": base64.b64encode(canonical).decode(), "segment": number, "path": path})
        events.append(readable)
    checkpoints = [{"seq": cp.seq, "payload": cp.payload, "signature": cp.signature, "key_id": cp.key_id,
                    "algorithm": "Ed25519", "created_at": _utc(cp.created_at)}
                   for cp in sorted(used.values(), key=lambda c: (c.seq, c.pk))]
    return {"hash_rule": HASH_RULE, "tree_rule": TREE_RULE, "genesis_hash": "0" * 64, "events": events,
            "segments": segments, "checkpoints": checkpoints}


def _recording_meta(recording, item, derivative, path: str) -> dict:
    r = recording
    return {
        "id": r.pk, "uuid": str(r.uuid), "file": path, "camera": r.camera.serial,
        "wearer": (r.wearer.matricule or r.wearer.username) if r.wearer_id else None,
        "started_at": _utc(r.started_at), "ended_at": _utc(r.ended_at), "time_attested": r.time_attested,
        "duration": r.duration, "location": r.location, "intervention": r.intervention,
        "trigger_reason": r.trigger_reason, "subject_notified": r.subject_notified, "purpose": r.purpose,
        "source_path": r.source_path, "retain_until": _utc(r.retain_until),
        "original": {"sha256": r.sha256, "size": r.size, "store_key": r.store_key,
                     "store_version_id": r.store_version_id, "camera_sha256": r.camera_sha256 or None,
                     "camera_hash_matches": r.camera_hash_matches, "stream_hashes": r.stream_hashes or {}},
        "redacted": ({"derivative": derivative.id, "mode": derivative.mode, "sha256": derivative.sha256,
                      "size": derivative.size, "original_sha256": derivative.original_sha256}
                     if derivative is not None else None),
    }


def build(*, export: Export, derivative_of, report_progress, now: dt.datetime | None = None) -> Built:
    """The package of ``export``, in French: it goes to a French court or a French data subject, so its
    custody reports, labels and README stay French even when the export is started from an English
    interface (issue 20; Constitution art. 2: the language of the Republic, and of its courts, is French).
    A ``with`` block, not the decorator form: one override object shared by concurrent builds would
    restore the wrong language."""
    with translation.override("fr"):
        return _build(export=export, derivative_of=derivative_of, report_progress=report_progress, now=now)


def _build(*, export: Export, derivative_of, report_progress, now: dt.datetime | None = None) -> Built:
    """The package of ``export``. ``derivative_of(recording, mode)`` gives an approved redacted copy,
    ``report_progress(percent)`` shows the building's progress (both from the disclosure services,
    which call this: no import back)."""
    from audit import pdf
    from audit.selectors import recording_custody_report

    now = now or timezone.now()
    store = get_store()
    items = list(export.items.select_related("recording__camera", "recording__wearer", "recording__organisation"))
    recordings = [i.recording for i in items]
    derivatives = {}
    for item in items:
        if item.derivative_id is not None:
            d = derivative_of(item.recording, export.redaction)
            if d is None or d.id != item.derivative_id:
                raise RuntimeError(f"the approved redacted copy {item.derivative_id} of recording "
                                   f"{item.recording_id} is no longer available")
            derivatives[item.recording_id] = d
    if export.purpose == "training":
        return build_training(export=export, items=items, derivatives=derivatives, now=now)
    total = sum((derivatives[r.pk].size if r.pk in derivatives else r.size) or 0 for r in recordings) or 1
    done = {"bytes": 0, "shown": -1}

    def progress(n: int) -> None:
        done["bytes"] += n
        pct = min(95, int(95 * done["bytes"] / total))
        if pct != done["shown"]:
            done["shown"] = pct
            report_progress(pct)

    custody = custody_proof(recording_ids=[r.pk for r in recordings], export=export)
    key = signing.public_key()
    pem = signing.public_key_pem(key)
    fingerprint = signing.key_id(key)

    # A data subject's copy carries the report without other people's names, motifs or recipients.
    restricted = export.purpose == "access_request"
    reports = {r.pk: pdf.custody_report_pdf(recording_custody_report(recording=r, user=export.requested_by, now=now,
                                                                     restricted=restricted))
               for r in recordings}
    readme = README.format(id=export.pk, purpose=export.get_purpose_display(), recipient=export.recipient,
                           fingerprint=fingerprint).encode()
    export_meta = {"id": export.pk, "uuid": str(export.uuid), "organisation": export.organisation.name,
                   "purpose": export.purpose, "recipient": export.recipient, "motif": export.motif,
                   "redaction": export.redaction,
                   "requested_by": export.requested_by.get_full_name() or export.requested_by.username,
                   "created_at": _utc(export.created_at), "built_at": _utc(now),
                   "access_request": export.access_request_id}
    sources = []
    for item, r in zip(items, recordings):
        d = derivatives.get(r.pk)
        src, version = (d.store_key, getattr(d, "store_version_id", "")) if d else (r.store_key, r.store_version_id)
        name = f"recordings/{item.position:03d}-{r.pk}{f'-floute-{d.mode}' if d else ''}{Path(src).suffix or '.bin'}"
        sources.append((r, item, d, src, version, name, (d.sha256, d.size) if d else (r.sha256, r.size)))
    state: dict = {}

    def produce(out) -> None:
        """Writes the ZIP into ``out`` (a pipe to the store): no database access in this thread."""
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            w = ZipWriter(zf, now)
            prefix = f"temoin-export-{export.pk}/"
            metas = []
            for r, item, d, src, version, name, expected in sources:
                with contextlib.closing(store.open(src, version)) as fh:
                    sha, size = w.add_stream(prefix + name, fh)
                if (sha, size) != tuple(expected):
                    # CSI R241-11 V: never hand out bytes that are not the ones under custody.
                    raise RuntimeError(f"recording {r.pk}: the store returned {sha}/{size} instead of "
                                       f"{expected[0]}/{expected[1]}; export stopped")
                metas.append(_recording_meta(r, item, d, name))
            for r in recordings:
                w.add_bytes(prefix + f"reports/tracabilite-{r.pk}.pdf", reports[r.pk])
            w.add_bytes(prefix + "public_key.pem", pem.encode())
            w.add_verifiers(prefix)
            w.add_bytes(prefix + "LISEZMOI.txt", readme)
            manifest = {
                "format": FORMAT, "export": export_meta,
                "files": {k[len(prefix):]: v for k, v in sorted(w.files.items())},
                "recordings": metas,
                "custody": {k: v for k, v in custody.items() if k != "checkpoints"},
                "checkpoints": custody["checkpoints"],
                "public_key": {"file": "public_key.pem", "algorithm": "Ed25519", "key_id": fingerprint},
            }
            state["manifest_sha256"] = w.add_signed_manifest(prefix, manifest)
            state["files"] = len(w.files) + 2

    retain_until = max(min((r.retain_until for r in recordings if r.retain_until), default=now + MIN_LOCK),
                       now + MIN_LOCK)
    store_key = f"exports/{export.organisation.slug}/{export.uuid}/{uuid.uuid4().hex}.zip"
    # The ZIP streams straight into the write-once store (one write, hashed on the way), built in
    # a thread while the store consumes it: file hashing and store writing overlap on two cores.
    with ZipPipe(produce) as source:
        reader = HashingReader(source, progress)
        stored = store.put(store_key, reader, retain_until=retain_until, content_type="application/zip")
    return Built(key=stored.key, version_id=stored.version_id, sha256=stored.sha256, size=stored.size,
                 manifest_sha256=state["manifest_sha256"], retain_until=retain_until, files=state["files"],
                 checkpoints=[c["seq"] for c in custody["checkpoints"]])
