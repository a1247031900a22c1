"""The generic mass-storage camera profile (ARCHITECTURE.md §5): read a docked camera's volume.

Nothing here trusts the volume: DEVICE.json and sidecars are size-limited and type-checked field by
field, symlinks are never followed, and files the profile does not know are listed and left alone.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

CLIP_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi"}
DEVICE_FILE = "DEVICE.json"
DEVICE_MAX_BYTES = 64 * 1024
SERIAL_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
SHA256_RE = re.compile(r"\A[0-9a-fA-F]{64}\Z")
TRIGGER_REASONS = {"incident", "risk_of_incident"}
PURPOSES = {"prevention", "offence", "evidence", "training"}
MAX_TRACK_POINTS = 200_000


class VolumeError(Exception):
    """The volume cannot be offloaded (no or bad DEVICE.json, unreadable): nothing is touched."""


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    model: str = ""
    firmware: str = ""
    # The camera's own time when it wrote DEVICE.json on docking ("clock", RFC 3339 with offset):
    # how far its clock is from the dock's decides which recording times can be trusted.
    clock: dt.datetime | None = None


@dataclass
class ClipFile:
    rel: str
    size: int
    mtime_ns: int
    sidecar_rel: str = ""


@dataclass
class VolumeScan:
    root: Path
    device: DeviceInfo
    clips: list[ClipFile] = field(default_factory=list)
    # Files left on the camera and reported: (relative path, reason).
    ignored: list[tuple[str, str]] = field(default_factory=list)


def _read_limited(path: Path, limit: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path.name} is larger than {limit} bytes")
    return data


def device_read(root: str | os.PathLike) -> DeviceInfo:
    root = Path(root)
    if not root.is_dir():
        raise VolumeError(f"{root}: not a directory (is the camera mounted?)")
    try:
        raw = _read_limited(root / DEVICE_FILE, DEVICE_MAX_BYTES)
    except FileNotFoundError as exc:
        raise VolumeError(f"{root}: no {DEVICE_FILE}; this is not a camera volume") from exc
    except (OSError, ValueError) as exc:
        raise VolumeError(f"{root}/{DEVICE_FILE}: unreadable ({exc})") from exc
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd nesting or numbers
        raise VolumeError(f"{root}/{DEVICE_FILE}: not valid JSON ({str(exc)[:200]})") from exc
    if not isinstance(data, dict):
        raise VolumeError(f"{root}/{DEVICE_FILE}: expected a JSON object")
    serial = data.get("serial")
    if not isinstance(serial, str) or not SERIAL_RE.match(serial):
        raise VolumeError(f"{root}/{DEVICE_FILE}: missing or invalid \"serial\"")
    text = lambda k: data.get(k)[:100] if isinstance(data.get(k), str) else ""  # noqa: E731
    clock = None
    try:
        parsed = _parse_time(data["clock"]) if "clock" in data else None
        clock = parsed.value if parsed is not None and parsed.attested else None
    except ValueError:
        clock = None  # an unreadable clock is no evidence either way; the clips still are offloaded
    return DeviceInfo(serial=serial, model=text("model"), firmware=text("firmware"), clock=clock)


BAD_NAME = ("file name is not valid UTF-8 (old firmware?) or contains control characters: left on the "
            "camera, rename it there to offload it")


def _storable_name(name: str) -> bool:
    """A name the database, the custody log and the store keys can hold exactly (UTF-8, no NUL)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (surrogateescape)
        return False
    return "\x00" not in name


def _printable(rel: str) -> str:
    """The undecodable bytes of a name shown as \\xNN, so that the report can name the file."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def volume_scan(root: str | os.PathLike) -> VolumeScan:
    """List clips and their sidecars; never follow a symlink nor leave the volume."""
    root = Path(root).resolve()
    scan = VolumeScan(root=root, device=device_read(root))
    clips: dict[str, ClipFile] = {}
    jsons: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink():
                dirnames.remove(d)
                scan.ignored.append((_printable((base / d).relative_to(root).as_posix()),
                                     "symbolic link not followed"))
            elif not _storable_name(d):
                dirnames.remove(d)
                scan.ignored.append((_printable((base / d).relative_to(root).as_posix()), BAD_NAME))
        for name in filenames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            if rel == DEVICE_FILE:
                continue
            if not _storable_name(name):
                scan.ignored.append((_printable(rel), BAD_NAME))
                continue
            try:
                st = os.lstat(path)
            except OSError as exc:
                scan.ignored.append((rel, f"unreadable: {exc.strerror}"))
                continue
            if stat.S_ISLNK(st.st_mode):
                scan.ignored.append((rel, "symbolic link not followed"))
                continue
            if not stat.S_ISREG(st.st_mode):
                scan.ignored.append((rel, "not a regular file"))
                continue
            ext = path.suffix.lower()
            if ext in CLIP_EXTENSIONS:
                clips[rel] = ClipFile(rel=rel, size=st.st_size, mtime_ns=st.st_mtime_ns)
            elif ext == ".json":
                jsons.add(rel)
            else:
                scan.ignored.append((rel, "unknown file type, left on the camera"))
    for rel, clip in clips.items():
        sidecar = rel.rsplit(".", 1)[0] + ".json"
        if sidecar in jsons:
            clip.sidecar_rel = sidecar
            jsons.discard(sidecar)
    for rel in sorted(jsons):
        scan.ignored.append((rel, "JSON file without a clip of the same name, left on the camera"))
    scan.clips = sorted(clips.values(), key=lambda c: c.rel)
    return scan


def volume_open(root: Path, rel: str):
    """Open a file of the volume for reading, refusing symlinks and paths that leave the volume."""
    root = Path(root).resolve()
    parts = Path(rel).parts
    if not parts or ".." in parts or Path(rel).is_absolute():
        raise PermissionError(f"{rel}: path leaves the volume")
    current = root
    for part in parts[:-1]:  # O_NOFOLLOW only guards the last component: check the directories
        current = current / part
        if stat.S_ISLNK(os.lstat(current).st_mode):
            raise PermissionError(f"{rel}: symbolic link not followed")
    path = root / rel
    if not os.path.realpath(path).startswith(str(root) + os.sep):
        raise PermissionError(f"{rel}: path leaves the volume")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(fd, "rb", buffering=0)


# --- Sidecar ---------------------------------------------------------------------------------

@dataclass
class SidecarTime:
    value: dt.datetime
    attested: bool  # False when the camera gave no UTC offset


def _parse_time(value) -> SidecarTime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("expected an RFC 3339 date-time string")
    parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.year < 2000 or parsed.year > 2100:
        raise ValueError("date out of range")
    return SidecarTime(parsed, attested=parsed.tzinfo is not None)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_point(p) -> list[float]:
    if not isinstance(p, list) or len(p) != 2 or not all(_finite(x) for x in p):
        raise ValueError("expected [lat, lon]")
    lat, lon = float(p[0]), float(p[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("coordinates out of range")
    return [lat, lon]


def _parse_track(t) -> list[list[float]]:
    if not isinstance(t, list) or len(t) > MAX_TRACK_POINTS:
        raise ValueError(f"expected a list of at most {MAX_TRACK_POINTS} [lat, lon, epoch] points")
    out = []
    for p in t:
        if not isinstance(p, list) or len(p) != 3 or not _finite(p[2]):
            raise ValueError("expected [lat, lon, epoch] points")
        out.append(_parse_point(p[:2]) + [float(p[2])])
    return out


def _text(limit: int):
    def check(v):
        if not isinstance(v, str):
            raise ValueError("expected text")
        if len(v) > limit:
            raise ValueError(f"longer than {limit} characters")
        return v.strip()
    return check


def _choice(options: set[str]):
    def check(v):
        if v not in options:
            raise ValueError(f"expected one of {', '.join(sorted(options))}")
        return v
    return check


def _boolean(v):
    if not isinstance(v, bool):
        raise ValueError("expected true or false")
    return v


def _sha(v):
    if not isinstance(v, str) or not SHA256_RE.match(v):
        raise ValueError("expected 64 hexadecimal characters")
    return v.lower()


SIDECAR_FIELDS = {
    "started_at": _parse_time,
    "ended_at": _parse_time,
    "officer": _text(32),
    "trigger_reason": _choice(TRIGGER_REASONS),
    "trigger_source": _text(200),
    "purpose": _choice(PURPOSES),
    "subject_notified": _boolean,
    "notice_omitted_reason": _text(2000),
    "location": _parse_point,
    "track": _parse_track,
    "sha256": _sha,
    "intervention": _text(100),
}


def sidecar_parse(raw: bytes, *, max_bytes: int) -> tuple[dict, list[str]]:
    """Parse a sidecar. Returns the valid fields and one message per problem; never raises."""
    if len(raw) > max_bytes:
        return {}, [f"sidecar of {len(raw)} bytes exceeds {max_bytes} bytes: ignored (kept in the store)"]
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON, absurd nesting or numbers
        return {}, [f"sidecar is not valid JSON: {str(exc)[:200]}"]
    if not isinstance(data, dict):
        return {}, ["sidecar is not a JSON object: ignored"]
    fields, errors = {}, []
    for key, parse in SIDECAR_FIELDS.items():
        if key not in data or data[key] is None:
            continue
        try:
            fields[key] = parse(data[key])
        except (ValueError, TypeError, OverflowError) as exc:
            errors.append(f"{key}: {exc}")
    if "started_at" in fields and "ended_at" in fields:
        start, end = fields["started_at"], fields["ended_at"]
        if start.attested != end.attested or end.value < start.value:
            errors.append("ended_at: inconsistent with started_at, ignored")
            del fields["ended_at"]
    unknown = sorted(k for k in data if k not in SIDECAR_FIELDS)[:20]
    if unknown:
        errors.append(f"unknown fields ignored: {', '.join(str(k)[:40] for k in unknown)}")
    return fields, errors
