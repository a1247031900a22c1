"""Property-based fuzzing (Hypothesis) of what a camera or a body worn system hands us.

The mass-storage profile's parsers (DEVICE.json, sidecars, the volume tree, volume paths) and the
Axis metadata headers and documents. Properties: never a crash (only the documented errors),
never a value outside its documented range, never a path outside the volume, and everything
kept is storable (valid UTF-8 text, no NUL, within the size limits).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import string
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from devices.axis import formats
from devices.sources import mass_storage
from devices.sources.mass_storage import VolumeError

from .conftest import examples

SIDECAR_MAX = 1024 * 1024
CAMERA_INVARIANT = "no crash; only documented errors; parsed values within their documented ranges"

# --- Strategies ---------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=80))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=5)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=5), max_leaves=20)

time_texts = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31),
                 timezones=st.one_of(st.none(), st.timezones())).map(lambda d: d.isoformat()),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
                  r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)?\Z"),
    st.text(max_size=70),
)
numbers = st.one_of(st.integers(min_value=-10 ** 6, max_value=10 ** 6), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=5), st.none(), st.booleans())
points = st.lists(numbers, min_size=0, max_size=4)
sidecar_fields = st.fixed_dictionaries({}, optional={
    "started_at": st.one_of(time_texts, json_values),
    "ended_at": st.one_of(time_texts, json_values),
    "officer": st.one_of(st.text(max_size=40), json_values),
    "trigger_reason": st.one_of(st.sampled_from(sorted(mass_storage.TRIGGER_REASONS)), json_values),
    "trigger_source": st.one_of(st.text(max_size=250), json_values),
    "purpose": st.one_of(st.sampled_from(sorted(mass_storage.PURPOSES)), json_values),
    "subject_notified": json_values,
    "notice_omitted_reason": st.one_of(st.text(max_size=50), json_values),
    "location": st.one_of(points, json_values),
    "track": st.one_of(st.lists(points, max_size=6), json_values),
    "sha256": st.one_of(st.from_regex(r"\A[0-9a-fA-F]{64}\Z"), st.text(max_size=70), json_values),
    "intervention": st.one_of(st.text(max_size=120), json_values),
    "extra": json_values,
})


def _check_sidecar_result(fields: dict, errors: list) -> None:
    assert set(fields) <= set(mass_storage.SIDECAR_FIELDS)
    assert all(isinstance(e, str) and len(e) < 2000 for e in errors)
    for key in ("started_at", "ended_at"):
        if key in fields:
            t = fields[key]
            assert 2000 <= t.value.year <= 2100 and t.attested == (t.value.tzinfo is not None)
    if "started_at" in fields and "ended_at" in fields:
        assert fields["ended_at"].value >= fields["started_at"].value
    for key, limit in (("officer", 32), ("trigger_source", 200), ("notice_omitted_reason", 2000),
                       ("intervention", 100)):
        if key in fields:
            assert isinstance(fields[key], str) and len(fields[key]) <= limit
    if "location" in fields:
        lat, lon = fields["location"]
        assert -90 <= lat <= 90 and -180 <= lon <= 180
    for lat, lon, epoch in fields.get("track", []):
        assert -90 <= lat <= 90 and -180 <= lon <= 180 and epoch == epoch and abs(epoch) != float("inf")
    if "sha256" in fields:
        assert len(fields["sha256"]) == 64 and fields["sha256"] == fields["sha256"].lower()
    json.dumps({k: (v.value.isoformat() if hasattr(v, "value") else v) for k, v in fields.items()},
               allow_nan=False)  # storable in the custody log's JSON


# --- Sidecars -------------------------------------------------------------------------------------

@settings(max_examples=examples(200))
@given(raw=st.one_of(st.binary(max_size=2048), st.text(max_size=512).map(str.encode)))
def test_sidecar_parse_never_crashes_on_arbitrary_bytes(raw, reliability):
    reliability.describe(category="Hostile input", title="Sidecar: arbitrary bytes",
                         how="Hypothesis: random bytes and text as a clip's .json sidecar", unit="example",
                         invariants=[CAMERA_INVARIANT])
    reliability.tally()
    fields, errors = mass_storage.sidecar_parse(raw, max_bytes=SIDECAR_MAX)
    _check_sidecar_result(fields, errors)


@settings(max_examples=examples(300))
@given(doc=st.one_of(sidecar_fields, json_values))
def test_sidecar_parse_keeps_only_valid_fields_of_hostile_json(doc, reliability):
    reliability.describe(category="Hostile input", title="Sidecar: hostile JSON documents",
                         how="Hypothesis: every sidecar field with valid, wrong-typed, out-of-range, NaN/∞, "
                             "oversized and nested values; unknown fields", unit="example",
                         invariants=[CAMERA_INVARIANT, "valid fields kept, each problem reported"])
    reliability.tally()
    raw = json.dumps(doc, allow_nan=True).encode()
    fields, errors = mass_storage.sidecar_parse(raw, max_bytes=SIDECAR_MAX)
    _check_sidecar_result(fields, errors)
    if isinstance(doc, dict):
        for key in set(doc) & set(mass_storage.SIDECAR_FIELDS):
            if doc[key] is not None:
                assert key in fields or any(e.startswith(f"{key}:") or key in e for e in errors), key


def test_sidecar_parse_survives_absurd_nesting_and_numbers(reliability):
    reliability.describe(category="Hostile input", title="Sidecar: nesting bomb and huge numbers",
                         how="100 000 nested arrays; a 100 000-digit number; 2 MiB sidecar over the 1 MiB limit",
                         invariants=[CAMERA_INVARIANT], count=3, unit="case")
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"started_at": ' + b"9" * 100_000 + b"}",
                b'{"officer": "' + b"x" * (2 * 1024 * 1024) + b'"}'):
        fields, errors = mass_storage.sidecar_parse(raw, max_bytes=SIDECAR_MAX)
        assert fields == {} and len(errors) == 1


# --- DEVICE.json and the volume tree ------------------------------------------------------------------

@settings(max_examples=examples(150))
@given(content=st.one_of(st.binary(max_size=512),
                         st.dictionaries(st.sampled_from(["serial", "model", "firmware", "x"]), json_values,
                                         max_size=4).map(lambda d: json.dumps(d).encode())))
def test_device_read_accepts_a_valid_serial_or_refuses_the_volume(tmp_path_factory, content, reliability):
    reliability.describe(category="Hostile input", title="Volume: hostile DEVICE.json",
                         how="Hypothesis: random bytes and JSON objects as DEVICE.json", unit="example",
                         invariants=[CAMERA_INVARIANT, "an invalid DEVICE.json refuses the volume (nothing read)"])
    reliability.tally()
    vol = tmp_path_factory.mktemp("dev")
    (vol / "DEVICE.json").write_bytes(content)
    try:
        info = mass_storage.device_read(vol)
    except VolumeError as exc:
        assert str(exc)
        return
    assert mass_storage.SERIAL_RE.match(info.serial)
    assert len(info.model) <= 100 and len(info.firmware) <= 100


name_chars = st.sampled_from(list(string.ascii_letters + string.digits + "._- ") + ["é", "\u202e", "..", "\\"])
names = st.one_of(st.lists(name_chars, min_size=1, max_size=12).map("".join),
                  st.sampled_from(["..", ".", "DEVICE.json", "a.mp4", "a.json", "A.MP4", "x.mkv", ".hidden.mp4"]))
entries = st.lists(st.tuples(st.lists(names, min_size=1, max_size=3),
                             st.sampled_from(["file", "clip", "json", "dir", "link-out", "link-in", "link-dir-out",
                                              "fifo", "badname"])),
                   max_size=10)


def _build_tree(vol: Path, outside: Path, tree) -> None:
    for parts, kind in tree:
        parts = [p for p in parts if p not in (".", "..") and "/" not in p] or ["x"]
        if parts == ["DEVICE.json"]:
            continue  # the volume's identity file is fuzzed by test_device_read_…
        target = vol.joinpath(*parts)
        final = target if kind in ("dir", "file", "link-dir-out", "badname") else \
            target.with_suffix(".json" if kind == "json" else ".mp4")
        if os.path.lexists(final):
            continue  # never write into what an earlier entry made (a FIFO would block the writer)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == "dir":
                target.mkdir(exist_ok=True)
            elif kind == "clip":
                target.with_suffix(".mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
            elif kind == "json":
                target.with_suffix(".json").write_text('{"officer": "M1"}')
            elif kind == "file":
                target.write_bytes(b"data")
            elif kind == "link-out":
                target.with_suffix(".mp4").symlink_to(outside / "secret.mp4")
            elif kind == "link-in":
                target.with_suffix(".mp4").symlink_to(vol / "DEVICE.json")
            elif kind == "link-dir-out":
                target.symlink_to(outside, target_is_directory=True)
            elif kind == "fifo":
                os.mkfifo(target.with_suffix(".mp4"))
            elif kind == "badname":  # a name in Latin-1 written by old firmware: not valid UTF-8
                os.close(os.open(os.fsencode(target.parent) + b"/clip-\xe9t\xe9.mp4", os.O_CREAT | os.O_WRONLY))
        except (FileExistsError, NotADirectoryError, IsADirectoryError, OSError):
            continue


@settings(max_examples=examples(120))
@given(tree=entries)
def test_volume_scan_never_leaves_the_volume_and_lists_only_storable_names(tmp_path_factory, tree, reliability):
    reliability.describe(category="Hostile input", title="Volume: hostile directory trees",
                         how="Hypothesis: trees of clips, sidecars, unknown files, symlinks out of and into the "
                             "volume, symlinked directories, FIFOs, '..'-like and right-to-left names, names "
                             "that are not valid UTF-8", unit="example",
                         invariants=[CAMERA_INVARIANT, "no symlink followed, no path outside the volume",
                                     "every name listed is valid UTF-8 (storable in the database and custody log)"])
    reliability.tally()
    base = tmp_path_factory.mktemp("scan")
    vol, outside = base / "vol", base / "outside"
    vol.mkdir()
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"SECRET")
    (vol / "DEVICE.json").write_text('{"serial": "BWC-0042"}')
    _build_tree(vol, outside, tree)
    scan = mass_storage.volume_scan(vol)
    root = vol.resolve()
    for clip in scan.clips:
        clip.rel.encode("utf-8")  # storable
        json.dumps(clip.rel).encode("utf-8")
        path = root / clip.rel
        assert not path.is_symlink() and path.resolve().is_relative_to(root)
        with mass_storage.volume_open(root, clip.rel) as fh:
            assert fh.read() != b"SECRET"
        if clip.sidecar_rel:
            clip.sidecar_rel.encode("utf-8")
    for rel, reason in scan.ignored:
        rel.encode("utf-8")
        reason.encode("utf-8")


@settings(max_examples=examples(150))
@given(rel=st.one_of(
    st.lists(st.sampled_from(["..", ".", "DCIM", "a.mp4", "link", "/", "//", "/etc/passwd", "é", "\x00"]),
             min_size=1, max_size=5).map("/".join),
    st.text(max_size=30)))
def test_volume_open_refuses_every_path_that_leaves_the_volume(tmp_path_factory, rel, reliability):
    reliability.describe(category="Hostile input", title="Volume paths: traversal",
                         how="Hypothesis: '..', absolute paths, NUL bytes, symlinked directories and random text "
                             "as clip paths given to volume_open", unit="example",
                         invariants=["never opens a file outside the volume nor through a symlink; refusals "
                                     "are PermissionError/OSError/ValueError with a message"])
    reliability.tally()
    base = tmp_path_factory.mktemp("open")
    vol, outside = base / "vol", base / "outside"
    (vol / "DCIM").mkdir(parents=True)
    outside.mkdir()
    (outside / "a.mp4").write_bytes(b"SECRET")
    (vol / "DCIM" / "a.mp4").write_bytes(b"clip")
    (vol / "link").symlink_to(outside, target_is_directory=True)
    try:
        with mass_storage.volume_open(vol, rel) as fh:
            data = fh.read()
    except (PermissionError, FileNotFoundError, NotADirectoryError, IsADirectoryError, OSError, ValueError) as exc:
        assert str(exc)
        return
    assert data != b"SECRET"


# --- Axis metadata headers and documents ---------------------------------------------------------------

header_names = st.one_of(
    st.sampled_from([f"HTTP_X_OBJECT_META_{k.upper()}" for k in formats.KNOWN_KEYS]),
    st.text(alphabet=string.ascii_uppercase + "_", min_size=1, max_size=30).map(lambda s: "HTTP_X_OBJECT_META_" + s),
    st.text(max_size=20))
header_values = st.one_of(
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass").decode("latin-1")),
    st.text(alphabet=st.characters(codec="latin-1"), max_size=200),
    st.from_regex(r"\A(%[0-9A-Fa-f]{2}|%|[a-z0-9:;+.,-])*\Z"),
    time_texts, st.sampled_from(["%00", "%FF%FE", "%C0%AE%C0%AE/", "nan", "inf", "-1e309", "1e400", "0001-01-01T00:00:00+01:00",
                                 "9999-12-31T23:59:59-01:00", "+91.0+181.0+5+1661255290"]))


def _storable(value: str) -> None:
    assert "\x00" not in value, "NUL is refused by PostgreSQL text and jsonb columns"
    value.encode("utf-8")


@settings(max_examples=examples(300))
@given(meta=st.dictionaries(header_names, header_values, max_size=120))
def test_axis_metadata_headers_parse_to_bounded_storable_values(meta, reliability):
    reliability.describe(category="Hostile input", title="Axis: metadata headers",
                         how="Hypothesis: X-Object-Meta-* headers with known and unknown keys, latin-1, raw "
                             "UTF-8, broken percent-encoding, %00, overlong UTF-8, 120 keys", unit="example",
                         invariants=[CAMERA_INVARIANT, "at most 90 keys of at most 1024 characters, storable "
                                                       "(UTF-8, no NUL)"])
    reliability.tally()
    out = formats.metadata_from_headers(meta, "Object")
    assert len(out) <= formats.MAX_META_KEYS
    for key, value in out.items():
        assert len(value) <= formats.MAX_META_VALUE
        _storable(key)
        _storable(value)
    json.dumps(out)
    for key in out:
        for parsed in (formats.meta_time(out, key), formats.parse_iso(out[key]), formats.parse_epoch(out[key])):
            assert parsed is None or (parsed.tzinfo is not None and parsed.utcoffset() == dt.timedelta(0))
        loc = formats.parse_location(out[key])
        assert loc is None or (-90 <= loc[0] <= 90 and -180 <= loc[1] <= 180)
        formats.parse_tags(out[key])
        formats.parse_bool(out[key])
        formats.container_name_parts(out[key])
        assert formats.object_kind(out[key]) in {"clip", "key", "bookmark", "track", "other"}


@settings(max_examples=examples(200))
@given(value=header_values)
def test_axis_times_are_utc_or_none(value, reliability):
    reliability.describe(category="Hostile input", title="Axis: times (epoch, RFC 3339, compact)",
                         how="Hypothesis: arbitrary text, years 1–9999 with any offset, NaN/∞, huge exponents",
                         unit="example", invariants=[CAMERA_INVARIANT, "a time is aware UTC or None"])
    reliability.tally()
    for parsed in (formats.parse_iso(value), formats.parse_epoch(value),
                   formats.meta_time({"StartTime": value, "StartTimeISO": value}, "StartTime")):
        assert parsed is None or parsed.utcoffset() == dt.timedelta(0)


track_entries = st.lists(st.fixed_dictionaries({}, optional={
    "LocationWKT": st.one_of(st.builds(lambda x, y: f"POINT({x} {y})", numbers, numbers), st.text(max_size=40),
                             json_values),
    "Timestamp": st.one_of(time_texts, json_values),
    "SecondsFromStart": st.one_of(numbers, st.sampled_from([1e308, -1e308, 1e20, "1e400"]), json_values),
}), max_size=8)


@settings(max_examples=examples(200))
@given(doc=st.one_of(st.fixed_dictionaries({"CoordinateEntries": st.one_of(track_entries, json_values)}), json_values),
       raw=st.one_of(st.none(), st.binary(max_size=300)),
       started=st.one_of(st.none(), st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1),
                                                   timezones=st.just(dt.timezone.utc))))
def test_axis_gnss_track_parses_points_in_range_or_reports_errors(doc, raw, started, reliability):
    reliability.describe(category="Hostile input", title="Axis: GNSS track documents",
                         how="Hypothesis: CoordinateEntries with hostile WKT, timestamps, SecondsFromStart "
                             "(NaN, ±1e308), random JSON and random bytes", unit="example",
                         invariants=[CAMERA_INVARIANT, "points in range, sorted by time; problems listed (≤ 20)"])
    reliability.tally()
    data = raw if raw is not None else json.dumps(doc, allow_nan=True).encode()
    track, errors = formats.parse_track(data, started_at=started)
    assert len(errors) <= 20 and all(isinstance(e, str) for e in errors)
    times = [p[2] for p in track]
    assert times == sorted(times)
    for lat, lon, when in track:
        assert -90 <= lat <= 90 and -180 <= lon <= 180
    json.dumps(track, allow_nan=False)
