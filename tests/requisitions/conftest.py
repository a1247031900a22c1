"""Requisitions: a partner's tus uploads against Témoin's real HTTP server (issue 22)."""
from __future__ import annotations

import datetime as dt
import hashlib
import os

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
