#!/usr/bin/env python3
"""Vérification hors ligne d'un export Témoin / Offline verification of a Témoin export package.

Usage:  python3 verify.py [DOSSIER/DIRECTORY]     (default: the directory holding this script)

Python 3.8+ standard library only: no network, nothing to install. Exit code 0 when everything
matches, 1 otherwise. Checks, and prints in French and English:

1. the Ed25519 signature of manifest.json (manifest.sig) with the deployment's public key
   (public_key.pem); compare the key fingerprint printed with the one the deployment publishes
   (page "Journal de traçabilité > clé publique", or `manage.py custody export-key`);
2. the SHA-256 and size of every file listed in the manifest (this script included);
3. that each original's SHA-256 is the one written in its custody events when it was stored;
4. that each segment's Merkle tree (RFC 9162) ends on a signed checkpoint, whose Ed25519
   signature and attested head hash are checked;
5. each custody event's hash, recomputed from its canonical bytes:
   hash = SHA-256(prev_hash + "\\n" + canonical), lowercase hex, and its Merkle audit path up to
   the root of its segment (the other entries of the log appear only as hashes);
6. that the readable fields of each item event say exactly what its canonical bytes say.

A modified copy of this script could lie: its own SHA-256 is in the signed manifest, and the script
is short enough to be read before it is run. verify.html, beside it, makes the same checks in a
browser, offline (docs/disclosure.md).
"""
import base64
import hashlib
import json
import os
import sys

# --- Ed25519 signature verification (RFC 8032, section 5.1.7; reference algorithm of section 6) -----

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _inv(x):
    return pow(x, _P - 2, _P)


def _add(a, b):
    # Extended homogeneous coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z.
    aa = (a[1] - a[0]) * (b[1] - b[0]) % _P
    bb = (a[1] + a[0]) * (b[1] + b[0]) % _P
    cc = 2 * a[3] * b[3] * _D % _P
    dd = 2 * a[2] * b[2] % _P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s, point):
    result = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _recover_x(y, sign):
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inv(_D * y * y + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_GY = 4 * _inv(5) % _P
_GX = _recover_x(_GY, 0)
_G = (_GX, _GY, 1, _GX * _GY % _P)


def ed25519_verify(public_key, message, signature):
    """True when ``signature`` (64 bytes) is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a = _decompress(public_key)
    r = _decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _L
    return _equal(_mul(s, _G), _add(r, _mul(h, a)))


# Ed25519 SubjectPublicKeyInfo (RFC 8410): this DER prefix, then the 32-byte key.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def public_key_from_pem(text):
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if not lines or lines[0] != "-----BEGIN PUBLIC KEY-----" or lines[-1] != "-----END PUBLIC KEY-----":
        raise ValueError("not a PEM public key")
    der = base64.b64decode("".join(lines[1:-1]), validate=True)
    if len(der) != 44 or not der.startswith(_SPKI_PREFIX):
        raise ValueError("not an Ed25519 public key")
    return der[len(_SPKI_PREFIX):]


# --- Report ------------------------------------------------------------------------------------

class Report:
    def __init__(self):
        self.problems = []
        self.matches = 0

    def ok(self, fr, en):
        self.matches += 1
        print("  OK    " + fr + " / " + en)

    def bad(self, where, fr, en):
        self.problems.append(where)
        print("  ÉCHEC " + where + " : " + fr)
        print("  FAIL  " + where + ": " + en)

    def note(self, fr, en):
        print("  NOTE  " + fr + " / " + en)


def sha256_file(path):
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                break
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _values(obj):
    """Every scalar value inside a JSON structure."""
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _values(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _values(v)
    else:
        yield obj


def event_hash(prev_hash, canonical):
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical).hexdigest()


def check_manifest_signature(root, manifest_bytes, report):
    print("1. Signature du manifeste / Manifest signature")
    try:
        key = public_key_from_pem(open(os.path.join(root, "public_key.pem"), encoding="ascii").read())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        report.bad("public_key.pem", "clé publique illisible (" + str(exc) + ")",
                   "public key unreadable (" + str(exc) + ")")
        return None
    fingerprint = hashlib.sha256(key).hexdigest()
    print("  Empreinte de la clé publique / public key fingerprint (SHA-256): " + fingerprint)
    print("  -> à comparer avec celle que publie le déploiement / compare with the one the deployment publishes")
    try:
        sig = base64.b64decode(open(os.path.join(root, "manifest.sig"), "rb").read().strip(), validate=True)
    except (OSError, ValueError) as exc:
        report.bad("manifest.sig", "signature illisible (" + str(exc) + ")", "signature unreadable (" + str(exc) + ")")
        return key
    if ed25519_verify(key, manifest_bytes, sig):
        report.ok("manifest.json signé par cette clé", "manifest.json signed by this key")
    else:
        report.bad("manifest.json / manifest.sig", "la signature Ed25519 du manifeste ne correspond pas (manifeste, "
                   "signature ou clé modifiés)", "the manifest's Ed25519 signature does not match (manifest, signature "
                   "or key altered)")
    return key


def check_files(root, manifest, report):
    print("2. Fichiers / Files (SHA-256)")
    for path, expected in sorted(manifest.get("files", {}).items()):
        full = os.path.join(root, *path.split("/"))
        if os.path.isabs(path) or ".." in path.split("/"):
            report.bad(path, "chemin refusé", "path refused")
            continue
        try:
            digest, size = sha256_file(full)
        except OSError:
            report.bad(path, "fichier absent ou illisible", "file missing or unreadable")
            continue
        if digest == expected.get("sha256") and size == expected.get("size"):
            report.ok(path + " concorde", path + " matches")
        else:
            report.bad(path, "SHA-256 " + digest + " (" + str(size) + " octets) au lieu de " + str(expected.get("sha256"))
                       + " (" + str(expected.get("size")) + " octets) : fichier modifié",
                       "SHA-256 " + digest + " (" + str(size) + " bytes) instead of " + str(expected.get("sha256"))
                       + " (" + str(expected.get("size")) + " bytes): file altered")
    listed = set(manifest.get("files", {})) | {"manifest.json", "manifest.sig"}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            if rel not in listed and not rel.startswith("__pycache__/"):
                report.note(rel + " : fichier non listé dans le manifeste (ignoré)",
                            rel + ": file not listed in the manifest (ignored)")


def check_checkpoints(manifest, key, report):
    print("3. Points de contrôle signés / Signed checkpoints")
    valid = {}
    key_id = hashlib.sha256(key).hexdigest() if key else None
    for cp in manifest.get("checkpoints", []):
        try:
            statement = json.loads(cp["payload"])
            seq = int(statement["seq"])
        except (KeyError, ValueError, TypeError):
            report.bad("checkpoint", "point de contrôle illisible", "unreadable checkpoint")
            continue
        where = "checkpoint #" + str(seq)
        if key is None:
            report.bad(where, "pas de clé publique pour le vérifier", "no public key to check it")
            continue
        if cp.get("key_id") != key_id:
            report.bad(where, "signé par une autre clé (" + str(cp.get("key_id")) + ")",
                       "signed by another key (" + str(cp.get("key_id")) + ")")
            continue
        try:
            sig = base64.b64decode(cp["signature"], validate=True)
        except (KeyError, ValueError):
            sig = b""
        if ed25519_verify(key, cp["payload"].encode(), sig):
            valid[seq] = statement
            report.ok(where + " : signature valide, tête " + statement.get("hash", "")[:16] + "…",
                      where + ": valid signature, head " + statement.get("hash", "")[:16] + "…")
        else:
            report.bad(where, "signature Ed25519 invalide", "invalid Ed25519 signature")
    return valid


def merkle_leaf(seq, digest):
    return hashlib.sha256(b"\x00" + (str(seq) + ":" + str(digest)).encode()).digest()


def merkle_root_from_path(index, size, leaf, path):
    """The root reached from leaf ``index`` of a tree of ``size`` leaves (RFC 9162 section 2.1.3.2), or None."""
    if not isinstance(index, int) or not isinstance(size, int) or not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    try:
        steps = [bytes.fromhex(p) for p in path]
    except (TypeError, ValueError):
        return None
    for p in steps:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            node = hashlib.sha256(b"\x01" + p + node).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            node = hashlib.sha256(b"\x01" + node + p).digest()
        fn >>= 1
        sn >>= 1
    return node if sn == 0 else None


def check_segments(manifest, checkpoints, report):
    """Each segment's Merkle tree must end on a signed checkpoint; returns {index: segment} of those that do."""
    print("4. Segments de la chaîne de traçabilité / Custody chain segments")
    good = {}
    for number, segment in enumerate(manifest.get("custody", {}).get("segments", [])):
        label = "segment #" + str(segment.get("from_seq")) + "–#" + str(segment.get("to_seq"))
        cp_seq = segment.get("checkpoint_seq")
        statement = checkpoints.get(cp_seq) if cp_seq is not None else None
        try:
            size = int(segment.get("to_seq")) - int(segment.get("from_seq")) + 1
        except (TypeError, ValueError):
            size = None
        if statement is None:
            report.bad(label, "ne se termine pas sur un point de contrôle signé valide",
                       "does not end on a valid signed checkpoint")
            continue
        if size is None or size != segment.get("size") or cp_seq != segment.get("to_seq"):
            report.bad(label, "bornes incohérentes", "inconsistent bounds")
            continue
        root = merkle_root_from_path(size - 1, size, merkle_leaf(statement.get("seq"), statement.get("hash")),
                                     segment.get("checkpoint_path", []))
        if root is None or root.hex() != segment.get("root"):
            report.bad(label, "l'arbre de Merkle ne se termine pas sur la tête du point de contrôle signé n° "
                       + str(cp_seq), "the Merkle tree does not match signed checkpoint #" + str(cp_seq))
            continue
        good[number] = segment
        report.ok(label + " : arbre de " + str(size) + " empreintes terminé par le point de contrôle signé n° "
                  + str(cp_seq), label + ": tree of " + str(size) + " hashes ending on signed checkpoint #"
                  + str(cp_seq))
    return good


def prove_event(event, segments, report):
    """Recompute the event's hash from its canonical bytes and its Merkle path; returns the canonical bytes."""
    seq = event.get("seq")
    where = "custody event #" + str(seq)
    try:
        canonical = base64.b64decode(event["canonical_b64"], validate=True)
        signed = json.loads(canonical.decode("utf-8"))
    except (KeyError, TypeError, ValueError):
        report.bad(where, "octets canoniques illisibles", "unreadable canonical bytes")
        return None
    if not isinstance(signed, dict) or signed.get("seq") != seq:
        report.bad(where, "numéro différent dans les octets canoniques", "sequence number differs inside the "
                   "canonical bytes")
        return None
    recomputed = event_hash(str(event.get("prev_hash", "")), canonical)
    if recomputed != event.get("hash"):
        report.bad(where, "empreinte recalculée " + recomputed[:16] + "… différente de l'empreinte "
                   "enregistrée " + str(event.get("hash"))[:16] + "… : événement modifié",
                   "recomputed hash " + recomputed[:16] + "… differs from the recorded hash "
                   + str(event.get("hash"))[:16] + "…: event altered")
        return None
    segment = segments.get(event.get("segment"))
    if segment is None:
        report.bad(where, "non prouvé par un segment vérifié de la chaîne", "not proven by a verified chain segment")
        return None
    index = seq - segment["from_seq"] if isinstance(seq, int) else -1
    root = merkle_root_from_path(index, segment["size"], merkle_leaf(seq, recomputed), event.get("path", []))
    if root is None or root.hex() != segment.get("root"):
        report.bad(where, "absent de l'arbre signé du segment n° " + str(segment["from_seq"]) + " (événement modifié "
                   "ou déplacé)", "not in the signed tree of segment #" + str(segment["from_seq"]) + " (event altered "
                   "or moved)")
        return None
    return signed


READABLE_FIELDS = ("seq", "occurred_at", "actor_label", "action", "subject_type", "subject_id", "recording",
                   "motif", "recipients", "details")


def check_events(manifest, segments, report):
    print("5. Événements des enregistrements exportés / Events of the exported recordings")
    by_seq = {}
    for event in manifest.get("custody", {}).get("events", []):
        seq = event.get("seq")
        where = "custody event #" + str(seq)
        signed = prove_event(event, segments, report)
        if signed is None:
            continue
        differing = [f for f in READABLE_FIELDS if event.get(f) != signed.get(f)]
        if differing:
            report.bad(where, "champ(s) " + ", ".join(differing) + " différent(s) des octets signés : événement modifié",
                       "field(s) " + ", ".join(differing) + " differ from the signed bytes: event altered")
        else:
            by_seq[seq] = event
            report.ok(where + " (" + str(event.get("action")) + ") intact", where + " (" + str(event.get("action"))
                      + ") intact")
    return by_seq


def check_recordings(root, manifest, events, report):
    print("6. Enregistrements / Recordings")
    for rec in manifest.get("recordings", []):
        where = "recording " + str(rec.get("id"))
        path = rec.get("file")
        expected = manifest.get("files", {}).get(path, {})
        own = [e for e in events.values() if e.get("recording") == rec.get("id")]
        original = rec.get("original", {})
        if rec.get("redacted"):
            red = rec["redacted"]
            if expected.get("sha256") != red.get("sha256"):
                report.bad(where, "la copie floutée ne correspond pas au manifeste", "the redacted copy does not match "
                           "the manifest")
            if red.get("original_sha256") != original.get("sha256"):
                report.bad(where, "copie floutée issue d'un autre original", "redacted copy made from another original")
            else:
                report.ok(where + " : copie floutée (" + str(red.get("mode")) + ") issue de l'original "
                          + str(original.get("sha256"))[:16] + "…", where + ": redacted copy (" + str(red.get("mode"))
                          + ") made from original " + str(original.get("sha256"))[:16] + "…")
            approved = [e for e in own if str(e.get("action", "")).startswith("redaction.")
                        and red.get("sha256") in set(_values(e.get("details")))]
            if approved:
                report.ok(where + " : SHA-256 de la copie floutée inscrit au journal (événement n° "
                          + str(approved[-1]["seq"]) + ")", where + ": redacted copy's SHA-256 written in the log "
                          "(event #" + str(approved[-1]["seq"]) + ")")
            else:
                report.bad(where, "aucun événement de floutage prouvé ne porte le SHA-256 de la copie floutée",
                           "no proven redaction event carries the redacted copy's SHA-256")
        elif expected.get("sha256") != original.get("sha256"):
            report.bad(where, "le fichier n'est pas l'original décrit", "the file is not the original described")
        stored = [e for e in own if e.get("action") == "recording.stored"
                  and original.get("sha256") in set(_values(e.get("details")))]
        if stored:
            report.ok(where + " : SHA-256 de l'original inscrit au journal (événement n° " + str(stored[0]["seq"])
                      + ")", where + ": original's SHA-256 written in the log (event #" + str(stored[0]["seq"]) + ")")
        else:
            report.bad(where, "aucun événement de stockage prouvé ne porte le SHA-256 de l'original",
                       "no proven storage event carries the original's SHA-256")


def check_training(manifest, report):
    """A training package carries no custody proof (its entries name people): its videos are
    described by the signed manifest only."""
    print("3. Copies de formation anonymisées / Anonymised training copies")
    for video in manifest.get("videos", []):
        where = str(video.get("file"))
        if video.get("file") not in manifest.get("files", {}):
            report.bad(where, "vidéo non listée dans le manifeste", "video not listed in the manifest")
        elif video.get("audio") != "removed" and not video.get("audio_reason"):
            report.bad(where, "son conservé sans raison indiquée", "sound kept without a stated reason")
        else:
            report.ok(where + " : son " + ("supprimé" if video.get("audio") == "removed" else "conservé (" +
                      str(video.get("audio_reason")) + ")"), where + ": sound " + str(video.get("audio")))


def main(argv):
    root = os.path.abspath(argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__)))
    report = Report()
    print("Vérification de l'export Témoin / Verifying the Témoin export in " + root)
    try:
        manifest_bytes = open(os.path.join(root, "manifest.json"), "rb").read()
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except (OSError, ValueError) as exc:
        print("ÉCHEC / FAIL manifest.json : illisible / unreadable (" + str(exc) + ")")
        return 1
    export = manifest.get("export", {})
    print("Export n° " + str(export.get("id")) + " — " + str(export.get("purpose")) + " — destinataire / recipient: "
          + str(export.get("recipient")))
    key = check_manifest_signature(root, manifest_bytes, report)
    check_files(root, manifest, report)
    if manifest.get("format") == "temoin-training/1":
        check_training(manifest, report)
        return conclude(report)
    checkpoints = check_checkpoints(manifest, key, report)
    segments = check_segments(manifest, checkpoints, report)
    events = check_events(manifest, segments, report)
    check_recordings(root, manifest, events, report)
    return conclude(report)


def conclude(report):
    print()
    if report.problems:
        print("RÉSULTAT : NE CONCORDE PAS — " + str(len(report.problems)) + " problème(s) : "
              + ", ".join(sorted(set(report.problems))))
        print("RESULT: DOES NOT MATCH — " + str(len(report.problems)) + " problem(s): "
              + ", ".join(sorted(set(report.problems))))
        return 1
    print("RÉSULTAT : tout concorde (" + str(report.matches) + " vérifications).")
    print("RESULT: everything matches (" + str(report.matches) + " checks).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
