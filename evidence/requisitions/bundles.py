"""Partner export bundles (issue 22, item 4): what an NVR/VMS export holds, read without trusting it.

A partner's video system exports a clip with a sidecar beside it (``clip.mp4`` + ``clip.xml`` /
``.txt`` / ``.json`` / ``.ini``, often with a player ``.exe`` and a manifest: the Milestone,
Hikvision and Dahua style), or a folder of clips with a manifest (CSV, XML or JSON listing the
file names and, optionally, hashes, times and camera names). Uploaded as one ZIP, the bundle is
planned here: which members are clips, what the manifest or the sidecar says of each, and what is
kept in the bundle only, flagged with the reason (as the offload lists what it leaves on a camera:
``devices.sources.mass_storage.volume_scan``). No database, no store, no file is written: a
member's name is metadata only and never becomes a path (``unpack.py`` streams members straight
into the store under keys made of the recording's uuid).

Limits (zip bombs, huge member counts): the member count, the declared unpacked total and each
member's compression ratio are checked before anything is unpacked; ``zipfile`` never gives more
than a member's declared size and checks its CRC.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
import zipfile
import zlib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.conf import settings

from devices.sources.mass_storage import CLIP_EXTENSIONS

SIDECAR_EXTENSIONS = {".txt", ".xml", ".json", ".ini"}
MANIFEST_EXTENSIONS = {".csv", ".xml", ".json"}
ARCHIVE_EXTENSIONS = {".zip", ".rar", ".7z", ".tar", ".gz"}
META_MAX_BYTES = 4 * 1024 * 1024  # a manifest or a sidecar larger than this is not read (kept in the bundle)
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# What a hostile manifest or sidecar may raise while read (RecursionError: JSON nested too deep).
PARSE_ERRORS = (ValueError, json.JSONDecodeError, ET.ParseError, csv.Error, RecursionError, UnicodeError)

NAME_KEYS = {"file", "filename", "name", "path", "filepath", "relativepath", "fichier", "nomfichier", "clip",
             "clipname", "video", "videofile"}
START_KEYS = {"start", "starttime", "startdate", "startedat", "begin", "begintime", "from", "debut",
              "datedebut", "heuredebut", "recordingstart", "starttimeutc"}
END_KEYS = {"end", "endtime", "enddate", "endedat", "stop", "stoptime", "to", "fin", "datefin", "heurefin",
            "recordingend", "endtimeutc"}
CAMERA_KEYS = {"camera", "cameraname", "cameraid", "channel", "channelname", "devicename", "device", "canal",
               "camera_name", "nomcamera"}
HASH_KEYS = {"sha256": "sha256", "sha256sum": "sha256", "md5": "md5", "md5sum": "md5", "sha1": "sha1",
             "hash": "", "checksum": "", "digest": "", "empreinte": ""}
HASH_LENGTHS = {64: "sha256", 40: "sha1", 32: "md5"}
CAMERA_TAGS = {"camera", "channel", "device", "canal"}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M",
                "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y%m%dT%H%M%S")


@dataclass
class ClipMeta:
    """What the manifest or the sidecar says of one clip (nothing: all empty)."""

    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    camera: str = ""
    hash_algorithm: str = ""
    hash_value: str = ""
    origin: str = ""  # "manifest <name>" or "sidecar <name>"
    flags: list[str] = field(default_factory=list)


@dataclass
class Member:
    """A clip of the bundle, to become its own recording."""

    index: int  # its place in the ZIP's central directory (names may repeat)
    name: str  # printable, as the partner named it: metadata only
    size: int
    meta: ClipMeta = field(default_factory=ClipMeta)
    sidecar_sha256: str = ""


@dataclass
class BundlePlan:
    clips: list[Member] = field(default_factory=list)
    ignored: list[dict] = field(default_factory=list)  # {"path", "reason"}: kept in the bundle, flagged
    manifests: list[str] = field(default_factory=list)
    refused: str = ""  # not unpacked at all (the bundle itself stays as evidence)


def printable(name: str) -> str:
    """A member's name for the report and the custody log: backslashes as slashes, no control characters."""
    name = name.replace("\\", "/")
    return "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in name)[:500]


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(key).split("}")[-1].lower())


def _suffix(name: str) -> str:
    return PurePosixPath(printable(name)).suffix.lower()


def _unsafe(name: str) -> bool:
    clean = name.replace("\\", "/")
    return clean.startswith("/") or re.match(r"[A-Za-z]:", clean) is not None or ".." in clean.split("/")


def looks_like_zip(head: bytes) -> bool:
    return head[:4] in ZIP_MAGIC


def upload_flags(filename: str, head: bytes) -> tuple[str, list[str]]:
    """What a single uploaded file is: ``bundle`` (a ZIP, by its bytes), ``clip`` (a video
    container's extension; the media step tells whether it plays), or ``other``: kept as
    evidence and flagged, as the offload flags what it cannot read (docs/requisitions.md)."""
    ext = _suffix(filename)
    if looks_like_zip(head):
        return "bundle", []
    if ext in CLIP_EXTENSIONS:
        return "clip", []
    if ext == ".zip":
        return "other", ["named .zip but not a ZIP archive: kept as evidence, not unpacked"]
    if ext in SIDECAR_EXTENSIONS | MANIFEST_EXTENSIONS:
        return "other", [f"metadata file ({ext}), not a video: kept as evidence; a clip of the same name "
                         "sent through this link gets its times, camera and hash"]
    return "other", [f"unknown file type ({ext or 'no extension'}): kept as evidence, not a video container"]


def parse_time(raw, tz_name: str) -> tuple[dt.datetime | None, str]:
    """A partner's time: ISO 8601 or a common NVR layout; without an offset it is read in ``tz_name``
    and flagged (the partner's clock is never attested: CSI R241-10 asks for the times, Témoin
    cannot vouch for another system's)."""
    text = str(raw or "").strip()
    if not text:
        return None, ""
    value = None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in TIME_FORMATS:
            try:
                value = dt.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if value is None:
        return None, f"time {text[:40]!r} not understood: ignored"
    if value.tzinfo is None:
        return value.replace(tzinfo=zoneinfo.ZoneInfo(tz_name)), f"time {text[:40]!r} without an offset, read in {tz_name}"
    return value, ""


def entry_filename(fields: dict) -> str:
    """The file a manifest entry names: the first name-like field whose value has an extension
    (``<Camera name="Bus 312">`` names a camera, not a file)."""
    for key in NAME_KEYS:
        value = fields.get(key)
        if isinstance(value, str) and _suffix(value):
            return value.strip()
    return ""


def meta_from_fields(fields: dict, *, origin: str, tz_name: str) -> ClipMeta:
    meta = ClipMeta(origin=origin)
    for key, value in fields.items():
        if value is None or isinstance(value, (dict, list)):
            continue
        value = str(value).strip()
        if not value:
            continue
        if key in START_KEYS and meta.started_at is None:
            meta.started_at, flag = parse_time(value, tz_name)
            meta.flags += [flag] if flag else []
        elif key in END_KEYS and meta.ended_at is None:
            meta.ended_at, flag = parse_time(value, tz_name)
            meta.flags += [flag] if flag else []
        elif key in CAMERA_KEYS and not meta.camera:
            meta.camera = printable(value)[:200]
        elif key in HASH_KEYS and meta.hash_algorithm != "sha256":  # SHA-256 first when several are given
            algo, _, digest = value.lower().rpartition(":")
            digest = digest.strip()
            algo = algo.replace("-", "") or HASH_KEYS[key] or HASH_LENGTHS.get(len(digest), "")
            if algo in ("sha256", "sha1", "md5") and re.fullmatch(r"[0-9a-f]+", digest) \
                    and HASH_LENGTHS.get(len(digest)) == algo:
                if not meta.hash_value or algo == "sha256":
                    meta.hash_algorithm, meta.hash_value = algo, digest
            else:
                meta.flags.append(f"{key} {value[:80]!r} is not a SHA-256, SHA-1 or MD5: ignored")
    if meta.started_at and meta.ended_at and meta.ended_at < meta.started_at:
        meta.flags.append("end before start: the end is ignored")
        meta.ended_at = None
    return meta


# --- Reading manifests and sidecars ------------------------------------------------------------

def _xml_root(data: bytes):
    # No DTD, no entities: a manifest never needs them, and they are how XML is made to explode.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValueError("XML with a DOCTYPE or entities: not read")
    return ET.fromstring(data)


def _element_fields(el) -> dict:
    fields = {_norm_key(k): v for k, v in el.attrib.items()}
    for child in el:
        if len(child) == 0 and (child.text or "").strip():
            fields.setdefault(_norm_key(child.tag), child.text.strip())
    return fields


def read_entries(name: str, data: bytes) -> list[dict]:
    """The file entries of a manifest (each a dict of normalised keys holding a file name)."""
    ext = _suffix(name)
    text = data.decode("utf-8-sig", errors="replace")
    if ext == ".csv":
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        rows = csv.DictReader(io.StringIO(text), dialect=dialect)
        return [{_norm_key(k): v for k, v in row.items() if k is not None} for row in rows]
    if ext == ".json":
        doc = json.loads(text)
        items = doc if isinstance(doc, list) else next(
            (v for v in doc.values() if isinstance(v, list)), []) if isinstance(doc, dict) else []
        return [{_norm_key(k): v for k, v in item.items()} for item in items if isinstance(item, dict)]
    if ext == ".xml":
        root = _xml_root(data)
        parents = {child: parent for parent in root.iter() for child in parent}
        entries = []
        for el in root.iter():
            fields = _element_fields(el)
            if not entry_filename(fields) or (el is root and len(root)):
                continue
            if not CAMERA_KEYS & fields.keys():  # <Camera name="…"><Clip file="…"/></Camera>
                up = parents.get(el)
                while up is not None:
                    if _norm_key(up.tag) in CAMERA_TAGS and (up.get("name") or up.get("Name")):
                        fields["camera"] = up.get("name") or up.get("Name")
                        break
                    up = parents.get(up)
            entries.append(fields)
        return entries
    return []


def read_sidecar(name: str, data: bytes) -> dict:
    """The fields of one clip's sidecar (JSON object, XML, or ``key = value`` / ``key: value`` text)."""
    ext = _suffix(name)
    text = data.decode("utf-8-sig", errors="replace")
    fields: dict = {}
    if ext == ".json":
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        for key, value in doc.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    fields.setdefault(_norm_key(k), v)
            else:
                fields.setdefault(_norm_key(key), value)
    elif ext == ".xml":
        for el in _xml_root(data).iter():
            for k, v in _element_fields(el).items():
                fields.setdefault(k, v)
    else:
        for line in text.splitlines():
            match = re.match(r"\s*([^=:#;\[]+?)\s*[=:]\s*(.+?)\s*$", line)
            if match:
                fields.setdefault(_norm_key(match.group(1)), match.group(2))
    return fields


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > META_MAX_BYTES:
        raise ValueError(f"larger than {META_MAX_BYTES} bytes: not read")
    with zf.open(info) as fh:
        return fh.read(META_MAX_BYTES + 1)[:META_MAX_BYTES]


# --- The plan ---------------------------------------------------------------------------------

def _limits_refusal(infos: list[zipfile.ZipInfo]) -> str:
    max_members = int(settings.TEMOIN_BUNDLE_MAX_MEMBERS)
    if len(infos) > max_members:
        return f"{len(infos)} members exceed the limit of {max_members} (TEMOIN_BUNDLE_MAX_MEMBERS): not unpacked"
    total = sum(i.file_size for i in infos)
    if total > int(settings.TEMOIN_BUNDLE_MAX_UNPACKED):
        return (f"{total} bytes once unpacked exceed the limit of {settings.TEMOIN_BUNDLE_MAX_UNPACKED} "
                "(TEMOIN_BUNDLE_MAX_UNPACKED): not unpacked")
    return ""


def _ratio_flag(info: zipfile.ZipInfo) -> str:
    ratio = int(settings.TEMOIN_BUNDLE_MAX_RATIO)
    if info.file_size > 1024 * 1024 and info.file_size > ratio * max(info.compress_size, 1):
        return (f"compressed {info.file_size // max(info.compress_size, 1)}:1 (more than {ratio}:1, "
                "a zip bomb is suspected): not unpacked, kept in the bundle")
    return ""


def bundle_plan(zf: zipfile.ZipFile, *, tz_name: str) -> BundlePlan:
    """Which members of ``zf`` become recordings, with what the manifest or their sidecar says."""
    plan = BundlePlan()
    plan.refused = _limits_refusal(zf.infolist())
    if plan.refused:
        return plan
    clips: list[Member] = []
    metas: list[tuple[zipfile.ZipInfo, str]] = []
    for index, info in enumerate(zf.infolist()):
        if info.is_dir():
            continue
        name, ext = printable(info.filename), _suffix(info.filename)
        reason = ("encrypted: not unpacked, kept in the bundle" if info.flag_bits & 0x1 else _ratio_flag(info))
        if not reason and ext in CLIP_EXTENSIONS:
            clip = Member(index=index, name=name, size=info.file_size)
            if _unsafe(info.filename):
                clip.meta.flags.append("name with path characters (../, absolute): metadata only")
            clips.append(clip)
            continue
        if not reason and ext in SIDECAR_EXTENSIONS | MANIFEST_EXTENSIONS:
            metas.append((info, name))
            continue
        if not reason:
            reason = ("archive inside the bundle: not opened, kept in the bundle" if ext in ARCHIVE_EXTENSIONS
                      else f"unknown file type ({ext or 'no extension'}): kept in the bundle, not a recording")
        plan.ignored.append({"path": name, "reason": reason})

    by_stem = {str(PurePosixPath(c.name).with_suffix("")).lower(): c for c in clips}
    by_base: dict[str, list[Member]] = {}
    for c in clips:
        by_base.setdefault(PurePosixPath(c.name).name.lower(), []).append(c)
    unmatched: list[tuple[zipfile.ZipInfo, str, bytes]] = []
    for info, name in metas:
        try:
            data = _read_small(zf, info)
        except (ValueError, zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError) as exc:
            plan.ignored.append({"path": name, "reason": f"metadata file {exc}; kept in the bundle"})
            continue
        stem = str(PurePosixPath(name).with_suffix("")).lower()
        if stem in by_stem and _suffix(name) in SIDECAR_EXTENSIONS and not by_stem[stem].sidecar_sha256:
            _attach_sidecar(by_stem[stem], name, data, plan, tz_name)
            continue
        used = False
        if _suffix(name) in MANIFEST_EXTENSIONS:
            try:
                entries = read_entries(name, data)
            except PARSE_ERRORS as exc:
                entries = []
                plan.ignored.append({"path": name, "reason": f"manifest not readable ({exc}); kept in the bundle"})
                continue
            used = _apply_manifest(name, entries, clips, by_base, plan, tz_name)
        if not used:
            unmatched.append((info, name, data))
    for info, name, data in unmatched:
        lone = [c for c in clips if not c.meta.origin]
        if len(clips) == 1 and lone and _suffix(name) in SIDECAR_EXTENSIONS:
            # One clip and a description under another name (export.xml beside the clip): its sidecar.
            _attach_sidecar(lone[0], name, data, plan, tz_name)
        else:
            plan.ignored.append({"path": name, "reason": "metadata file naming no clip of the bundle: kept in the bundle"})
    plan.clips = clips
    return plan


def _attach_sidecar(clip: Member, name: str, data: bytes, plan: BundlePlan, tz_name: str) -> None:
    import hashlib

    try:
        fields = read_sidecar(name, data)
    except PARSE_ERRORS as exc:
        clip.meta.flags.append(f"sidecar {name} not readable ({exc}): kept in the bundle")
        return
    clip.meta = _merged(clip.meta, meta_from_fields(fields, origin=f"sidecar {name}", tz_name=tz_name))
    clip.sidecar_sha256 = hashlib.sha256(data).hexdigest()


def _merged(first: ClipMeta, then: ClipMeta) -> ClipMeta:
    """What a clip's first metadata file said, completed (never overridden) by the next one."""
    if not first.origin:
        then.flags = first.flags + then.flags
        return then
    for attr in ("started_at", "ended_at", "camera"):
        if not getattr(first, attr) and getattr(then, attr):
            setattr(first, attr, getattr(then, attr))
    if not first.hash_value and then.hash_value:
        first.hash_algorithm, first.hash_value = then.hash_algorithm, then.hash_value
    first.flags += then.flags
    return first


def _apply_manifest(name: str, entries: list[dict], clips: list[Member], by_base: dict, plan: BundlePlan,
                    tz_name: str) -> bool:
    """Match the manifest's entries to the clips: by path in the bundle, else by file name when
    unique. Entries naming no member are flagged (listed, not received)."""
    by_path = {c.name.lower().lstrip("./"): c for c in clips}
    matched = 0
    missing = []
    for entry in entries:
        raw = entry_filename(entry)
        if not raw:
            continue
        path = printable(raw).lstrip("./").lower()
        clip = by_path.get(path)
        if clip is None:
            candidates = [c for c in by_path.values() if c.name.lower().endswith("/" + path)] \
                or by_base.get(PurePosixPath(path).name, [])
            clip = candidates[0] if len(candidates) == 1 else None
        if clip is None:
            if _suffix(raw) in CLIP_EXTENSIONS:
                missing.append(printable(raw)[:200])
            continue
        matched += 1
        clip.meta = _merged(clip.meta, meta_from_fields(entry, origin=f"manifest {name}", tz_name=tz_name))
    if matched:
        plan.manifests.append(name)
        for path in missing[:100]:
            plan.ignored.append({"path": path, "reason": f"listed in the manifest {name}, missing from the bundle"})
    return bool(matched)
