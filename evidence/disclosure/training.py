"""Training packages (LEGAL.md rule 6, CSI R241-12 and R241-13): only fully anonymised copies,
approved by someone other than their requester; the videos remuxed without any tag, track or time
that names or places; a manifest that names nothing; no custody proof. Kept under their own
retention rule (TEMOIN_TRAINING_RETENTION), apart from the recordings they came from."""
from __future__ import annotations

import datetime as dt
import uuid
import zipfile
from pathlib import Path

from audit.integrations import signing
from evidence.integrations.store import HashingReader, get_store

from .models import Export
from .zipstream import Built, ZipPipe, ZipWriter

def training_retain_until(now: dt.datetime) -> dt.datetime:
    """The end of a training package's own retention (LEGAL.md rule 6; TEMOIN_TRAINING_RETENTION)."""
    from django.conf import settings

    from evidence.retention.dates import retention_period

    return now + retention_period(settings.TEMOIN_TRAINING_RETENTION)


TRAINING_FORMAT = "temoin-training/1"
TRAINING_README = """Copie de formation Témoin — vidéos anonymisées (CSI R241-13)

FRANÇAIS
Ces vidéos sont des copies entièrement anonymisées : visages floutés et vérifiés par un second
passage automatique, copie regardée et approuvée par une autre personne que son demandeur, son
supprimé sauf raison indiquée dans manifest.json. Elles ne portent ni nom, ni matricule, ni lieu, ni
numéro d'intervention, ni caméra, ni heure d'enregistrement, ni métadonnées de conteneur.
Usage : formation des agents uniquement. Intégrité : ouvrez verify.html dans un navigateur (hors
connexion), ou lancez python3 verify.py

ENGLISH
Fully anonymised training copies: faces blurred and checked by an automatic second look, watched
and approved by someone other than the requester, sound removed unless a reason is stated in
manifest.json. No name, badge number, place, intervention, camera, recording time or container
metadata. Integrity: open verify.html in a browser (offline), or run python3 verify.py

Empreinte SHA-256 de la clé publique / public key fingerprint: {fingerprint}
"""
EPOCH = dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc)  # ZIP entries of a training package carry no time


def anonymous_copy(src: Path, dst: Path, *, keep_audio: bool) -> None:
    """Remux without anything that names or places: no container or stream tags (creation_time,
    location/GPS, encoder, handler), no chapters, no data or subtitle tracks (GPS tracks), no audio
    unless a reason keeps it (LEGAL.md rule 6, CSI R241-13). Streams are copied, not re-encoded."""
    from evidence.integrations import ffmpeg

    args = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(src), "-map", "0:v:0"]
    if keep_audio:
        args += ["-map", "0:a:0?"]
    args += ["-c", "copy", "-map_metadata", "-1", "-map_metadata:s", "-1", "-map_chapters", "-1",
             "-fflags", "+bitexact", "-flags", "+bitexact", "-movflags", "+faststart", "-f", "mp4", "-y", str(dst)]
    ffmpeg.run_ffmpeg(args, timeout=3600)


def training_sources(export: Export, derivatives: dict, items, workdir: Path) -> list[dict]:
    """Each approved, fully anonymised copy remuxed into ``workdir``; refused otherwise."""
    from evidence.redaction.selectors import derivative_anonymity

    store = get_store()
    out = []
    for n, item in enumerate(items, start=1):
        d = derivatives.get(item.recording_id)
        anonymity = derivative_anonymity(derivative=d) if d is not None else {"fully_anonymised": False,
                                                                             "reasons": ["pas de copie floutée"]}
        if not anonymity["fully_anonymised"]:
            raise RuntimeError(f"training copy {n}: not fully anonymised ({'; '.join(anonymity['reasons'])})")
        keep_audio = anonymity["audio"] != "removed" and bool(anonymity["audio_reason"])
        dst = workdir / f"video-{n:02d}.mp4"
        with store.local_path(d.store_key, getattr(d, "store_version_id", "")) as src:
            anonymous_copy(Path(src), dst, keep_audio=keep_audio)
        out.append({"file": f"videos/video-{n:02d}.mp4", "path": dst, "duration": round(d.recording.duration or 0),
                    "audio": "kept" if keep_audio else "removed",
                    "audio_reason": anonymity["audio_reason"] if keep_audio else None})
    return out


def build_training(*, export: Export, items, derivatives: dict, now: dt.datetime) -> Built:
    """A training package: the anonymised videos, a manifest that names nothing, the verifier.

    No custody proof (its entries name agents and places), no custody report, no recording
    metadata; the custody log keeps, on the deployment, which recordings, copies and people were
    involved (export.created, recording.extracted)."""
    import tempfile

    key = signing.private_key().public_key()  # created on first use, as a checkpoint would
    pem = signing.public_key_pem(key)
    fingerprint = signing.key_id(key)
    with tempfile.TemporaryDirectory(prefix="temoin-training-") as tmp:
        videos = training_sources(export, derivatives, items, Path(tmp))
        state: dict = {}

        def produce(out) -> None:
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                w = ZipWriter(zf, EPOCH)
                prefix = f"temoin-export-{export.pk}/"
                for v in videos:
                    with open(v["path"], "rb") as fh:
                        w.add_stream(prefix + v["file"], fh)
                w.add_bytes(prefix + "public_key.pem", pem.encode())
                w.add_verifiers(prefix)
                w.add_bytes(prefix + "LISEZMOI.txt", TRAINING_README.format(fingerprint=fingerprint).encode())
                manifest = {
                    "format": TRAINING_FORMAT,
                    "export": {"id": export.pk, "purpose": export.purpose, "redaction": export.redaction},
                    "files": {k[len(prefix):]: v for k, v in sorted(w.files.items())},
                    "videos": [{"file": v["file"], "duration_s": v["duration"], "audio": v["audio"],
                                "audio_reason": v["audio_reason"], "faces_blurred_and_checked": True,
                                "approved_by_another_person": True, "container_metadata": "removed"}
                               for v in videos],
                    "public_key": {"file": "public_key.pem", "algorithm": "Ed25519", "key_id": fingerprint},
                }
                state["manifest_sha256"] = w.add_signed_manifest(prefix, manifest)
                state["files"] = len(w.files) + 2

        # Anonymous, it no longer follows the recordings it came from: kept under the training rule
        # (LEGAL.md rule 6, TEMOIN_TRAINING_RETENTION), then erased by the sweep (training_packages_expire).
        retain_until = training_retain_until(now)
        store_key = f"exports/{export.organisation.slug}/{export.uuid}/{uuid.uuid4().hex}.zip"
        with ZipPipe(produce) as source:
            stored = get_store().put(store_key, HashingReader(source, None), retain_until=retain_until,
                                     content_type="application/zip")
    return Built(key=stored.key, version_id=stored.version_id, sha256=stored.sha256, size=stored.size,
                 manifest_sha256=state["manifest_sha256"], retain_until=retain_until, files=state["files"],
                 checkpoints=[])
