"""Every ffmpeg and ffprobe run has a deadline: a program stuck on a damaged or hostile file is
killed and reported, instead of holding a worker (and its dock's queue) forever.

A stand-in ``ffprobe`` / ``ffmpeg`` that never answers is put first on PATH; the deadlines are
shortened to a second for the test.
"""
from __future__ import annotations

import os
import time

import pytest

from evidence.integrations import ffmpeg, rawvideo
from evidence.integrations.ffmpeg import MediaError


@pytest.fixture
def stuck_programs(tmp_path, monkeypatch):
    """ffprobe and ffmpeg that hang; their pids are written to <name>.pid."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("ffprobe", "ffmpeg"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / name}.pid\nexec sleep 600\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(ffmpeg, "PROBE_TIMEOUT", 1, raising=False)
    return tmp_path


def _gone(pid_file) -> bool:
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone too
            if fh.read().split(") ", 1)[1].startswith("Z"):
                return True
        time.sleep(0.05)
    return False


def test_a_probe_that_never_answers_is_killed_and_reported(stuck_programs, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 1024)

    with pytest.raises(MediaError, match="ffprobe cannot read this file .*longer than 1 s"):
        ffmpeg.probe(clip)

    assert _gone(stuck_programs / "ffprobe.pid")


def test_the_frame_rate_probe_of_redaction_is_killed_too(stuck_programs, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 1024)

    with pytest.raises(MediaError, match="longer than 1 s"):
        rawvideo.video_rate(clip)


def test_a_decoder_whose_pipe_stays_silent_is_killed_at_its_deadline(stuck_programs):
    reader = rawvideo.RawVideoReader(["ffmpeg"], width=2, height=2, channels=1, every=1, timeout=1)

    with pytest.raises(MediaError, match="ffmpeg took longer than 1 s"):
        with reader:
            assert list(reader) == []

    assert _gone(stuck_programs / "ffmpeg.pid")


def test_an_encoder_that_stops_reading_is_killed_at_its_deadline(stuck_programs):
    writer = rawvideo.RawVideoWriter(["ffmpeg"], timeout=1)

    with pytest.raises(MediaError, match="ffmpeg took longer than 1 s"):
        writer.close()
