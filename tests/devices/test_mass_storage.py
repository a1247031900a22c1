"""The generic mass-storage camera profile (ARCHITECTURE.md §5): nothing on the volume is trusted.

Pure unit tests on real directories: no database, no store.
"""
from __future__ import annotations

import json
import os

import pytest

from devices.sources.mass_storage import (
    VolumeError,
    device_read,
    sidecar_parse,
    volume_open,
    volume_scan,
)

SIDECAR_MAX = 1024 * 1024  # settings.TEMOIN_SIDECAR_MAX_BYTES by default
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _ignored(scan) -> dict[str, str]:
    return dict(scan.ignored)


def _parse(obj) -> tuple[dict, list[str]]:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return sidecar_parse(raw, max_bytes=SIDECAR_MAX)


def _device_volume(tmp_path, content: bytes | str):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "DEVICE.json").write_bytes(content.encode() if isinstance(content, str) else content)
    return vol


# --- Scanning the volume ---------------------------------------------------------------------

def test_scan_lists_clips_of_every_known_extension_with_size_and_mtime(make_volume):
    vol = make_volume("BWC-0042", {
        "DCIM/100/A.MP4": b"a" * 10, "DCIM/100/B.mov": b"b" * 20,
        "DCIM/101/C.mkv": b"c" * 30, "D.avi": b"d" * 40,
    })

    scan = volume_scan(vol)

    assert scan.device.serial == "BWC-0042"
    assert [(c.rel, c.size) for c in scan.clips] == [
        ("D.avi", 40), ("DCIM/100/A.MP4", 10), ("DCIM/100/B.mov", 20), ("DCIM/101/C.mkv", 30),
    ]
    assert scan.clips[0].mtime_ns == os.stat(vol / "D.avi").st_mtime_ns
    assert scan.ignored == []


def test_device_file_is_neither_a_clip_nor_an_ignored_file(make_volume):
    scan = volume_scan(make_volume("BWC-0042", {}))

    assert scan.clips == [] and scan.ignored == []


def test_symlinked_clip_is_not_followed_and_is_listed_as_ignored(make_volume, tmp_path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"not from this camera")
    vol = make_volume("BWC-0042", {"DCIM/real.mp4": b"real"})
    (vol / "DCIM" / "outside.mp4").symlink_to(outside)
    (vol / "DCIM" / "alias.mp4").symlink_to(vol / "DCIM" / "real.mp4")

    scan = volume_scan(vol)

    assert [c.rel for c in scan.clips] == ["DCIM/real.mp4"]
    assert _ignored(scan)["DCIM/outside.mp4"] == "symbolic link not followed"
    assert _ignored(scan)["DCIM/alias.mp4"] == "symbolic link not followed"


def test_symlinked_directory_is_not_descended_into_and_is_listed_as_ignored(make_volume, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "planted.mp4").write_bytes(b"planted")
    vol = make_volume("BWC-0042", {"DCIM/real.mp4": b"real"})
    (vol / "DCIM" / "linked").symlink_to(elsewhere, target_is_directory=True)

    scan = volume_scan(vol)

    assert [c.rel for c in scan.clips] == ["DCIM/real.mp4"]
    assert _ignored(scan) == {"DCIM/linked": "symbolic link not followed"}


def test_broken_symlink_is_listed_as_ignored(make_volume, tmp_path):
    vol = make_volume("BWC-0042", {})
    (vol / "gone.mp4").symlink_to(tmp_path / "does-not-exist.mp4")

    scan = volume_scan(vol)

    assert scan.clips == []
    assert _ignored(scan) == {"gone.mp4": "symbolic link not followed"}


def test_unknown_files_are_listed_and_left_on_the_camera(make_volume):
    vol = make_volume("BWC-0042", {"DCIM/A.mp4": b"a", "README.TXT": b"hi", "DCIM/A.THM": b"thumb"})

    scan = volume_scan(vol)

    assert [c.rel for c in scan.clips] == ["DCIM/A.mp4"]
    ignored = _ignored(scan)
    assert set(ignored) == {"README.TXT", "DCIM/A.THM"}
    assert all("unknown file type" in reason for reason in ignored.values())
    assert (vol / "README.TXT").read_bytes() == b"hi"


def test_sidecar_is_paired_with_the_clip_of_the_same_stem(make_volume):
    vol = make_volume(
        "BWC-0042",
        {"DCIM/100/CLIP0001.MP4": b"1", "DCIM/100/CLIP0002.MP4": b"2", "DCIM/101/CLIP0001.MP4": b"3"},
        {"DCIM/100/CLIP0001.json": {"trigger_reason": "incident"}},
    )

    scan = volume_scan(vol)

    pairs = {c.rel: c.sidecar_rel for c in scan.clips}
    assert pairs == {
        "DCIM/100/CLIP0001.MP4": "DCIM/100/CLIP0001.json",
        "DCIM/100/CLIP0002.MP4": "",
        "DCIM/101/CLIP0001.MP4": "",  # same stem, other directory: not its sidecar
    }
    assert scan.ignored == []


def test_json_without_a_clip_of_the_same_stem_is_listed_as_orphan(make_volume):
    vol = make_volume("BWC-0042", {"DCIM/A.mp4": b"a"}, {"DCIM/B.json": {"officer": "M042"}})

    scan = volume_scan(vol)

    assert scan.clips[0].sidecar_rel == ""
    assert "without a clip" in _ignored(scan)["DCIM/B.json"]


def test_scan_of_a_volume_without_device_file_raises_volume_error(tmp_path):
    vol = tmp_path / "vol"
    (vol / "DCIM").mkdir(parents=True)
    (vol / "DCIM" / "A.mp4").write_bytes(b"a")

    with pytest.raises(VolumeError):
        volume_scan(vol)


# --- Opening a file of the volume ------------------------------------------------------------

def test_volume_open_reads_a_regular_clip(make_volume):
    vol = make_volume("BWC-0042", {"DCIM/A.mp4": b"clip bytes"})

    with volume_open(vol, "DCIM/A.mp4") as fh:
        assert fh.read() == b"clip bytes"


def test_symlink_pointing_outside_the_volume_is_never_opened(make_volume, tmp_path):
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"outside the volume")
    vol = make_volume("BWC-0042", {})
    (vol / "DCIM").mkdir()
    (vol / "DCIM" / "evil.mp4").symlink_to(secret)

    with pytest.raises(PermissionError):
        volume_open(vol, "DCIM/evil.mp4")


def test_symlinked_directory_pointing_outside_the_volume_is_never_opened(make_volume, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "planted.mp4").write_bytes(b"planted")
    vol = make_volume("BWC-0042", {})
    (vol / "DCIM").symlink_to(elsewhere, target_is_directory=True)

    with pytest.raises(PermissionError):
        volume_open(vol, "DCIM/planted.mp4")


def test_symlink_pointing_inside_the_volume_is_not_followed_either(make_volume):
    vol = make_volume("BWC-0042", {"DCIM/real.mp4": b"real"})
    (vol / "DCIM" / "alias.mp4").symlink_to(vol / "DCIM" / "real.mp4")

    with pytest.raises(OSError):
        volume_open(vol, "DCIM/alias.mp4")


def test_path_through_a_symlinked_directory_inside_the_volume_is_refused(make_volume):
    vol = make_volume("BWC-0042", {"DCIM/real.mp4": b"real"})
    (vol / "LINKED").symlink_to(vol / "DCIM", target_is_directory=True)

    with pytest.raises(OSError):
        volume_open(vol, "LINKED/real.mp4")


@pytest.mark.parametrize("rel", ["../outside.mp4", "DCIM/../../outside.mp4", "DCIM/../A.mp4"])
def test_paths_with_dot_dot_are_refused(make_volume, tmp_path, rel):
    (tmp_path / "outside.mp4").write_bytes(b"outside")
    vol = make_volume("BWC-0042", {"A.mp4": b"a", "DCIM/B.mp4": b"b"})

    with pytest.raises(PermissionError):
        volume_open(vol, rel)


def test_absolute_paths_are_refused(make_volume, tmp_path):
    target = tmp_path / "outside.mp4"
    target.write_bytes(b"outside")
    vol = make_volume("BWC-0042", {})

    with pytest.raises(PermissionError):
        volume_open(vol, str(target))


# --- DEVICE.json -----------------------------------------------------------------------------

def test_device_file_gives_serial_model_and_firmware(tmp_path):
    vol = _device_volume(tmp_path, json.dumps({"serial": "BWC-0042", "model": "X1", "firmware": "2.3"}))

    info = device_read(vol)

    assert (info.serial, info.model, info.firmware) == ("BWC-0042", "X1", "2.3")


def test_missing_device_file_is_a_volume_error_saying_so(tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()

    with pytest.raises(VolumeError, match="DEVICE.json"):
        device_read(vol)


def test_a_volume_that_is_not_a_directory_is_a_volume_error(tmp_path):
    with pytest.raises(VolumeError, match="not a directory"):
        device_read(tmp_path / "not-mounted")


@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe\x00garbage", b"", b'{"serial": "BWC-1"'])
def test_device_file_that_is_not_json_is_a_volume_error(tmp_path, content):
    with pytest.raises(VolumeError):
        device_read(_device_volume(tmp_path, content))


@pytest.mark.parametrize("device", [
    {"model": "X1"},
    {"serial": ""},
    {"serial": None},
    {"serial": 42},
    {"serial": ["BWC-1"]},
    {"serial": "BWC/0042"},
    {"serial": "../BWC-0042"},
    {"serial": "-BWC"},
    {"serial": "BWC 0042"},
    {"serial": "B" * 65},
], ids=["missing", "empty", "null", "number", "list", "slash", "dotdot", "leading-dash", "space", "too-long"])
def test_device_file_without_a_valid_serial_is_a_volume_error(tmp_path, device):
    with pytest.raises(VolumeError, match="serial"):
        device_read(_device_volume(tmp_path, json.dumps(device)))


def test_device_file_that_is_a_json_array_is_a_volume_error(tmp_path):
    with pytest.raises(VolumeError):
        device_read(_device_volume(tmp_path, json.dumps([{"serial": "BWC-0042"}])))


def test_device_file_larger_than_its_limit_is_a_volume_error(tmp_path):
    padding = "x" * (128 * 1024)
    with pytest.raises(VolumeError):
        device_read(_device_volume(tmp_path, json.dumps({"serial": "BWC-0042", "model": padding})))


def test_device_file_that_is_a_symlink_is_a_volume_error(tmp_path):
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps({"serial": "BWC-0042"}))
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "DEVICE.json").symlink_to(real)

    with pytest.raises(VolumeError):
        device_read(vol)


def test_deeply_nested_device_file_is_a_volume_error(tmp_path):
    with pytest.raises(VolumeError):
        device_read(_device_volume(tmp_path, "[" * 60_000))


def test_device_file_with_a_huge_integer_is_a_volume_error(tmp_path):
    with pytest.raises(VolumeError):
        device_read(_device_volume(tmp_path, '{"serial": "BWC-0042", "model": ' + "9" * 5000 + "}"))


def test_serial_with_a_trailing_newline_is_a_volume_error(tmp_path):
    with pytest.raises(VolumeError):
        device_read(_device_volume(tmp_path, json.dumps({"serial": "BWC-0042\n"})))


# --- Sidecars --------------------------------------------------------------------------------

def test_complete_sidecar_gives_every_field_without_errors():
    fields, errors = _parse({
        "started_at": "2026-11-20T22:30:00+01:00", "ended_at": "2026-11-20T22:31:00+01:00",
        "officer": "M042", "trigger_reason": "incident", "trigger_source": "button",
        "purpose": "evidence", "subject_notified": False, "notice_omitted_reason": "fuite",
        "location": [45.5646, 5.9178], "track": [[45.5646, 5.9178, 1795469400]],
        "sha256": SHA.upper(), "intervention": "PM-2026-1142",
    })

    assert errors == []
    assert fields["started_at"].attested and fields["started_at"].value.utcoffset().total_seconds() == 3600
    assert fields["officer"] == "M042"
    assert fields["subject_notified"] is False
    assert fields["location"] == [45.5646, 5.9178]
    assert fields["track"] == [[45.5646, 5.9178, 1795469400.0]]
    assert fields["sha256"] == SHA


def test_sidecar_with_wrong_types_reports_each_field_and_keeps_the_valid_ones():
    fields, errors = _parse({
        "trigger_reason": 5, "subject_notified": "yes", "officer": 42, "purpose": ["evidence"],
        "started_at": 1700000000,
        "intervention": "PM-1", "trigger_source": "holster",
    })

    assert set(fields) == {"intervention", "trigger_source"}
    assert fields["intervention"] == "PM-1"
    reported = {e.split(":", 1)[0] for e in errors}
    assert reported == {"trigger_reason", "subject_notified", "officer", "purpose", "started_at"}


def test_sidecar_with_values_outside_the_vocabulary_reports_them():
    fields, errors = _parse({"trigger_reason": "boredom", "purpose": "fun", "subject_notified": True})

    assert fields == {"subject_notified": True}
    assert {e.split(":", 1)[0] for e in errors} == {"trigger_reason", "purpose"}


def test_sidecar_unknown_fields_are_reported_and_ignored():
    fields, errors = _parse({"officer": "M042", "colour": "blue"})

    assert fields == {"officer": "M042"}
    assert any("colour" in e for e in errors)


def test_time_without_an_offset_parses_as_not_attested():
    fields, errors = _parse({"started_at": "2026-11-20T22:30:00", "ended_at": "2026-11-20T22:31:00"})

    assert errors == []
    assert fields["started_at"].attested is False
    assert fields["started_at"].value.tzinfo is None
    assert fields["ended_at"].attested is False


@pytest.mark.parametrize("value", ["2026-11-20T21:30:00Z", "2026-11-20T21:30:00z", "2026-11-20T22:30:00+01:00"])
def test_time_with_an_offset_parses_as_attested(value):
    fields, errors = _parse({"started_at": value})

    assert errors == []
    assert fields["started_at"].attested is True
    assert fields["started_at"].value.utcoffset() is not None


@pytest.mark.parametrize("value", ["yesterday", "2026-13-45T10:00:00+01:00", "1899-01-01T00:00:00Z", "9" * 100])
def test_unparseable_or_implausible_time_is_reported(value):
    fields, errors = _parse({"started_at": value})

    assert "started_at" not in fields
    assert errors and errors[0].startswith("started_at:")


def test_end_before_start_is_reported_and_the_end_dropped():
    fields, errors = _parse({"started_at": "2026-11-20T22:30:00+01:00", "ended_at": "2026-11-20T22:00:00+01:00"})

    assert "started_at" in fields and "ended_at" not in fields
    assert any(e.startswith("ended_at:") for e in errors)


def test_ten_megabytes_of_junk_returns_an_error_without_raising():
    junk = os.urandom(10 * 1024 * 1024)

    fields, errors = sidecar_parse(junk, max_bytes=SIDECAR_MAX)

    assert fields == {} and len(errors) == 1


def test_ten_megabytes_of_junk_under_a_generous_limit_returns_an_error_without_raising():
    junk = (b"\x00garbage{[" * (1024 * 1024))[: 10 * 1024 * 1024]

    fields, errors = sidecar_parse(junk, max_bytes=64 * 1024 * 1024)

    assert fields == {} and len(errors) == 1


def test_non_utf8_sidecar_returns_an_error_without_raising():
    fields, errors = sidecar_parse(b'{"officer": "\xe9\xff"}', max_bytes=SIDECAR_MAX)

    assert fields == {} and "not valid JSON" in errors[0]


@pytest.mark.parametrize("raw", [b"[]", b'[{"officer": "M042"}]', b'"officer"', b"42", b"null", b"true"])
def test_sidecar_that_is_not_a_json_object_returns_an_error(raw):
    fields, errors = sidecar_parse(raw, max_bytes=SIDECAR_MAX)

    assert fields == {} and len(errors) == 1


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000])
def test_deeply_nested_sidecar_returns_an_error_without_raising(raw):
    fields, errors = sidecar_parse(raw, max_bytes=SIDECAR_MAX)

    assert fields == {} and len(errors) == 1


def test_sidecar_with_a_huge_integer_returns_an_error_without_raising():
    fields, errors = sidecar_parse(b'{"officer": "M042", "location": [' + b"1" * 5000 + b", 5]}",
                                   max_bytes=SIDECAR_MAX)

    assert "location" not in fields and errors


@pytest.mark.parametrize("location", [
    b"[NaN, 5.9]", b"[45.5, Infinity]", b"[-Infinity, 5.9]", b"[1e400, 5.9]",
    b"[90.0001, 5.9]", b"[-91, 5.9]", b"[45.5, 180.5]", b"[45.5, -181]",
    b'["45.5", "5.9"]', b"[true, false]", b"[45.5]", b"[45.5, 5.9, 3]", b'{"lat": 45.5, "lon": 5.9}',
])
def test_invalid_location_is_rejected(location):
    fields, errors = sidecar_parse(b'{"officer": "M042", "location": ' + location + b"}", max_bytes=SIDECAR_MAX)

    assert "location" not in fields and fields["officer"] == "M042"
    assert [e for e in errors if e.startswith("location:")]


@pytest.mark.parametrize("track", [
    b"[[NaN, 5.9, 1700000000]]", b"[[45.5, Infinity, 1700000000]]", b"[[45.5, 5.9, NaN]]",
    b"[[95, 5.9, 1700000000]]", b"[[45.5, 5.9]]", b"[45.5, 5.9, 1700000000]", b'"track"',
])
def test_invalid_track_is_rejected(track):
    fields, errors = sidecar_parse(b'{"track": ' + track + b"}", max_bytes=SIDECAR_MAX)

    assert "track" not in fields
    assert [e for e in errors if e.startswith("track:")]


@pytest.mark.parametrize("sha", [SHA[:63], SHA + "0", "g" * 64, "", 12345, [SHA], " " + SHA[1:]])
def test_camera_sha256_must_be_64_hexadecimal_characters(sha):
    fields, errors = _parse({"sha256": sha})

    assert "sha256" not in fields
    assert [e for e in errors if e.startswith("sha256:")]


def test_camera_sha256_with_a_trailing_newline_is_rejected():
    fields, errors = _parse({"sha256": SHA + "\n"})

    assert "sha256" not in fields
    assert [e for e in errors if e.startswith("sha256:")]


def test_oversized_sidecar_is_reported_without_parsing():
    raw = json.dumps({"officer": "M042", "notice_omitted_reason": "x" * 2000}).encode()

    fields, errors = sidecar_parse(raw, max_bytes=100)

    assert fields == {} and "exceeds" in errors[0]
