"""What the Axis body worn integration API (v1.6) puts on the wire, parsed; and what we publish.

Pure functions, no database: metadata headers, times, locations, GNSS tracks, bookmark tags,
container names, and the ``System/Capabilities.json`` and ``System/Categories.json`` documents.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from typing import Mapping
from urllib.parse import unquote

# Keys the specification names, so that a header's case ("X-Object-Meta-Starttime": every letter
# lowercase except the first and those after a hyphen) maps back to the documented key.
KNOWN_KEYS = (
    "ContainerName", "BWCSerialNumber", "SCUSerialNumber", "FirmwareVersion", "UserID", "TriggerOn",
    "TriggerOff", "TriggerOnTime", "TriggerOnTimeISO", "TriggerOnLocation", "TriggerOffTime",
    "TriggerOffTimeISO", "TriggerOffLocation", "StartTime", "StartTimeISO", "StopTime", "StopTimeISO",
    "TimeZone", "BWCModel", "Status", "ContainerType", "StartLocation", "StopLocation", "FileType",
    "CategoryID", "CategoryName", "Tags", "EndTime", "Active", "Name", "Model", "ConnectionId",
    "SystemName", "RejectedContentOriginalContainer", "RejectedContentTime", "RejectedContentReason",
)
_CANONICAL = {k.lower(): k for k in KNOWN_KEYS}
# Swift's own limits on metadata: we keep what fits, evidence is not refused for a long tag.
MAX_META_KEYS = 90
MAX_META_VALUE = 1024

SYSTEM, USERS, DEVICES = "System", "Users", "Devices"
REJECTED_PREFIX = "RejectedContent_"
CLIP_TYPES = {"mkv": "video/x-matroska", "mp4": "video/mp4"}


def metadata_from_headers(meta: Mapping[str, str], kind: str) -> dict[str, str]:
    """``X-<Kind>-Meta-*`` request headers → {documented key: decoded value}.

    Values are URL-encoded UTF-8 (specification, "Clip metadata details"). WSGI hands header
    values over as latin-1 text; a client that sent raw UTF-8 is decoded as UTF-8 too.
    """
    prefix = f"HTTP_X_{kind.upper()}_META_"
    out: dict[str, str] = {}
    for name, value in meta.items():
        if not name.startswith(prefix) or len(name) == len(prefix):
            continue
        raw = name[len(prefix):]
        key = _CANONICAL.get(raw.replace("_", "").lower()) or "-".join(p.capitalize() for p in raw.split("_"))
        try:
            value = value.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
        # NUL cannot be stored (PostgreSQL text and jsonb refuse it): shown as U+FFFD, never dropped silently.
        out[key] = unquote(value, errors="replace").replace("\x00", "\ufffd")[:MAX_META_VALUE]
        if len(out) >= MAX_META_KEYS:
            break
    return out


def metadata_headers(metadata: Mapping[str, str], kind: str) -> dict[str, str]:
    """The reverse, for HEAD/GET responses (values URL-encoded as the specification sends them)."""
    from urllib.parse import quote

    return {f"X-{kind}-Meta-{k}": quote(str(v), safe="") for k, v in metadata.items()}


# --- Times --------------------------------------------------------------------------------------

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


def parse_epoch(value: str | None) -> dt.datetime | None:
    """Epoch seconds UTC ("1661255290" or with decimals); milliseconds are recognised by size."""
    if not value:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if number > 1e11:  # milliseconds
        number /= 1000.0
    try:
        return dt.datetime.fromtimestamp(number, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def parse_iso(value: str | None) -> dt.datetime | None:
    """RFC 3339; the specification sends UTC, so a value without offset is read as UTC."""
    if not value:
        return None
    text = value.strip()
    compact = re.fullmatch(r"(\d{8})T(\d{6})Z", text)  # YYYYMMDDTHHMMSSZ (container names)
    try:
        if compact:
            parsed = dt.datetime.strptime(compact.group(1) + compact.group(2), "%Y%m%d%H%M%S")
        else:
            parsed = dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    try:
        return parsed.astimezone(dt.timezone.utc)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        return None


def meta_time(metadata: Mapping[str, str], key: str) -> dt.datetime | None:
    """``<key>ISO`` when given, else ``<key>`` (epoch); for bookmarks ``<key>`` itself is RFC 3339."""
    return parse_iso(metadata.get(f"{key}ISO")) or parse_epoch(metadata.get(key)) or parse_iso(metadata.get(key))


# --- Places ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def parse_location(value: str | None) -> list[float] | None:
    """``<lat><long><accuracy><epoch>`` → [lat, lon].

    The specification shows no separator, which reads as ISO 6709 signed numbers
    ("+55.718409+013.221184+5+1661255290"); separated forms (commas, spaces) are accepted too.
    """
    if not value:
        return None
    numbers = _NUMBER.findall(value)
    if len(numbers) < 2:
        return None
    lat, lon = float(numbers[0]), float(numbers[1])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return [lat, lon]


_WKT_POINT = re.compile(r"^\s*POINT\s*\(\s*([-+]?[\d.eE+-]+)\s+([-+]?[\d.eE+-]+)\s*\)\s*$", re.IGNORECASE)


def parse_track(raw: bytes, *, started_at: dt.datetime | None) -> tuple[list[list[float]], list[str]]:
    """The GNSS location object → ([[lat, lon, epoch], ...], errors).

    ``LocationWKT`` is ``POINT(x y)`` with x the longitude and y the latitude. The point's time is
    its ``Timestamp``, else the recording's ``StartTime`` + ``SecondsFromStart``.
    """
    errors: list[str] = []
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
        entries = doc["CoordinateEntries"]
        if not isinstance(entries, list):
            raise TypeError("CoordinateEntries is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return [], [f"GNSS track unreadable: {exc}"]
    track: list[list[float]] = []
    for i, entry in enumerate(entries):
        try:
            m = _WKT_POINT.match(str(entry.get("LocationWKT", "")))
            if not m:
                raise ValueError(f"LocationWKT {entry.get('LocationWKT')!r}")
            lon, lat = float(m.group(1)), float(m.group(2))
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError(f"point out of range ({lat}, {lon})")
            when = parse_iso(entry.get("Timestamp"))
            if when is None and started_at is not None and entry.get("SecondsFromStart") is not None:
                when = started_at + dt.timedelta(seconds=float(entry["SecondsFromStart"]))
            if when is None:
                raise ValueError("no Timestamp and no recording start")
            track.append([lat, lon, when.timestamp()])
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # OverflowError: ±1e308 seconds
            if len(errors) < 20:
                errors.append(f"GNSS point {i}: {exc}")
    track.sort(key=lambda p: p[2])
    return track, errors


def track_window(track: list | None, start: dt.datetime | None, stop: dt.datetime | None) -> list | None:
    """The points of a recording's track that fall within one clip (all of them if times unknown)."""
    if not track:
        return None
    if start is None or stop is None:
        return list(track)
    lo, hi = start.timestamp(), stop.timestamp()
    points = [p for p in track if lo <= p[2] <= hi]
    return points or None


# --- Names ------------------------------------------------------------------------------------------

def name_problem(name: str) -> str | None:
    """Why a container or object name cannot be kept as given (None when it can).

    Names are stored as text: PostgreSQL refuses NUL, and control characters would corrupt the
    custody log's readability. Everything else (``..``, slashes, any script) is only a name here:
    store keys never derive from it.
    """
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "names may not contain control characters (NUL, line breaks…)"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "names must be valid UTF-8"
    return None


def container_name_parts(name: str) -> tuple[str, str, str] | None:
    """``<UserID>_<BWCSerialNumber>_<TriggerOnTime>`` → (user uuid, serial, time text)."""
    head, sep, when = name.rpartition("_")
    user, sep2, serial = head.partition("_")
    if not (sep and sep2 and user and serial and when):
        return None
    return user, serial, when


def object_kind(name: str) -> str:
    """clip | key | bookmark | track | other, from the object names of the specification."""
    base = name.rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if base.startswith("bookmark_"):
        return "bookmark"
    if base.endswith("_gpstrail.json"):
        return "track"
    if ext == "key":
        return "key"
    if ext in CLIP_TYPES:
        return "clip"
    return "other"


def parse_tags(value: str | None) -> list[list[str]]:
    """``"TriggerOn:Button;SomeTag:SomeValue"`` → [["TriggerOn", "Button"], ["SomeTag", "SomeValue"]].

    The specification warns of unknown keys and values: everything is kept as given.
    """
    pairs = []
    for item in (value or "").split(";"):
        item = item.strip()
        if item:
            key, _, val = item.partition(":")
            pairs.append([key.strip(), val.strip()])
    return pairs


def parse_bool(value: str | None, default: bool = True) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")


# --- Published documents ----------------------------------------------------------------------------

# What Témoin supports (specification, "Current capabilities"). Signed video is not declared: we
# do not verify the signatures nor promise exports that keep them.
CAPABILITIES = {
    "ReadCategories": True,
    "StoreReadSystemID": True,
    "StoreUserIDKey": True,
    "StoreBookmarks": True,
    "StoreGNSSTrackRecording": True,
    "StoreRejectedContent": True,
    "StoreSignedVideo": False,
}


def capabilities_document() -> bytes:
    """``System/Capabilities.json``: each capability in the group of its prefix.

    The specification's file has three groups (Read, Store, StoreAndRead) and names capabilities
    with their prefix; Axis's example server lists all of its capabilities under StoreAndRead, so
    they are listed there too. A capability missing or false anywhere is simply unsupported.
    """
    groups: dict[str, dict[str, bool]] = {"Read": {}, "Store": {}, "StoreAndRead": {}}
    for name, on in CAPABILITIES.items():
        if name.startswith("StoreRead"):
            groups["StoreAndRead"][name] = on
        elif name.startswith("Read"):
            groups["Read"][name] = on
        else:
            groups["Store"][name] = on
    groups["StoreAndRead"].update(CAPABILITIES)
    return json.dumps(groups, indent=2).encode()


CATEGORY_FIELDS = ("purpose", "trigger_reason")


def categories() -> list[dict[str, str]]:
    """Our purposes and trigger reasons as BWS categories: ``{"Name", "Id"}`` with ``Id = field:value``.

    Names are the French labels of the choices, at most 32 bytes (the specification's limit for
    strings) since officers pick them on the camera side.
    """
    from django.utils import translation

    from evidence.models import Purpose, TriggerReason

    out = []
    with translation.override("fr"):
        for field, choices in (("purpose", Purpose), ("trigger_reason", TriggerReason)):
            for value, label in choices.choices:
                text = str(label)
                out.append({"Name": (text[:1].upper() + text[1:])[:32], "Id": f"{field}:{value}"})
    return out


def categories_document() -> bytes:
    return json.dumps(categories(), ensure_ascii=False).encode("utf-8")


def category_tag(category_id: str) -> tuple[str, str] | None:
    """A category id of ours → (Recording field, value); None for an unknown (old) category."""
    from evidence.models import Purpose, TriggerReason

    field, _, value = (category_id or "").partition(":")
    allowed = {"purpose": Purpose.values, "trigger_reason": TriggerReason.values}.get(field)
    if allowed and value in allowed:
        return field, value
    return None


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
