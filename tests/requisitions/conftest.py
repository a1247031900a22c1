"""Requisitions: a partner's tus uploads against Témoin's real HTTP server (issue 22)."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess

import pytest
from django.utils import timezone

from ..evidence.test_api import api  # noqa: F401 (an API client with a user's token)

UTC = dt.timezone.utc
BIG_SIZE = 300 * 1024 * 1024


def requisition_body(**extra) -> dict:
    now = timezone.now()
    body = {
        "partner": "Réseau de bus STAC", "regime": "videoprotection", "reference": "PV 2026/1234",
        "motif": "Agression à l'arrêt Gare, réquisition des images du bus ligne 3",
        "period_start": (now - dt.timedelta(days=1)).isoformat(), "period_end": now.isoformat(),
        "expires_at": (now + dt.timedelta(days=7)).isoformat(),
    }
    body.update(extra)
    return body


@pytest.fixture(autouse=True)
def _own_data_dir(settings, tmp_path):
    """Each test's staging folder under its own TEMOIN_DATA_DIR: nothing left behind, nothing shared."""
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()


@pytest.fixture
def supervisor(make_user):
    return make_user("chef.durand", role="supervisor", matricule="S001")


@pytest.fixture
def legal(make_user):
    return make_user("juriste.petit", role="legal")


@pytest.fixture
def issue(supervisor):
    """Issue a requisition through the API as the supervisor: its 201 answer."""
    def make(**extra) -> dict:
        response = api(supervisor).post("/api/requisitions/", requisition_body(**extra), format="json")
        assert response.status_code == 201, response.content
        return response.json()

    return make


@pytest.fixture(scope="session")
def big_file(tmp_path_factory):
    """300 MB of random bytes, written once per session: (path, sha256)."""
    path = tmp_path_factory.mktemp("requisition") / "bus-ligne-3.mp4"
    sha = hashlib.sha256()
    with open(path, "wb") as fh:
        left = BIG_SIZE
        while left:
            data = os.urandom(min(left, 16 * 1024 * 1024))
            left -= len(data)
            sha.update(data)
            fh.write(data)
    return path, sha.hexdigest()


@pytest.fixture(scope="session")
def big_clip(tmp_path_factory):
    """A real H.264/AAC clip of about 300 MB (286 MiB: above the page's 256 MiB WebCrypto limit, so
    the server alone hashes it), made once per session by ffmpeg: 8 s encoded at a constant 40 Mbit/s,
    then looped without re-encoding (-stream_loop, -c copy) up to 300 000 000 bytes. About 3 s."""
    root = tmp_path_factory.mktemp("requisition-clip")
    base, path = root / "base.mp4", root / "parking-niveau-2-cam4.mp4"
    quiet = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    subprocess.run([*quiet, "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=8", "-f", "lavfi",
                    "-i", "sine=frequency=440:sample_rate=48000:duration=8", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-b:v", "40M", "-minrate", "40M", "-maxrate", "40M", "-bufsize", "40M",
                    "-x264-params", "nal-hrd=cbr", "-c:a", "aac", str(base)], check=True)
    subprocess.run([*quiet, "-stream_loop", "-1", "-i", str(base), "-c", "copy", "-fs", "300000000", str(path)],
                   check=True)
    base.unlink()
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(16 * 1024 * 1024):
            sha.update(data)
    return path, sha.hexdigest()
