"""Disclosure tests: real clips offloaded through the pipeline (ffmpeg, write-once local store), a
signing key of their own, users of every role in two organisations."""
from __future__ import annotations

import datetime as dt
import pytest
from django.db import transaction
from django.utils import timezone

from accounts.services import organisation_create
from evidence.models import Recording

from tests.evidence.helpers import run_offload

from .helpers import PLACE, sidecar



@pytest.fixture(autouse=True)
def _disclosure_env(settings, tmp_path, local_store):
    settings.CUSTODY_SIGNING_KEY = tmp_path / "keys" / "custody-ed25519.pem"
    settings.CUSTODY_TSA_URL = ""
    settings.CUSTODY_TSA_CA_FILE = ""
    yield


@pytest.fixture
def users(make_user, officer):
    return {
        "officer": officer,
        "other_officer": make_user("agent.durand", matricule="M043"),
        "supervisor": make_user("chef.bernard", role="supervisor"),
        "legal": make_user("juriste.petit", role="legal"),
        "dpo": make_user("dpo.moreau", role="dpo"),
        "mayor": make_user("maire", role="mayor"),
        "admin": make_user("admin", role="admin"),
    }


@pytest.fixture
def other_org_users(make_user, db):
    with transaction.atomic():
        other = organisation_create(slug="aix", name="Police municipale d'Aix-les-Bains")
    return {role: make_user(f"{role}.aix", role=role, organisation=other)
            for role in ("supervisor", "legal", "dpo", "mayor")}


@pytest.fixture
def clip_start():
    return (timezone.now() - dt.timedelta(days=2)).replace(microsecond=0)


@pytest.fixture
def recordings(make_volume, clip_library, camera, local_store, clip_start):
    """Two real clips of officer M042, offloaded, hashed, stored write-once and made playable."""
    volume = make_volume("BWC-0042", {"DCIM/a.mp4": clip_library["h264"], "DCIM/b.mp4": clip_library["h264_noaudio"]},
                         {"DCIM/a.json": sidecar(clip_start, 3, PLACE, intervention="INT-2026-17"),
                          "DCIM/b.json": sidecar(clip_start + dt.timedelta(hours=3), 2, [45.60, 5.95],
                                                 intervention="INT-2026-17")})
    code, out = run_offload(volume)
    assert code == 0, out
    recs = list(Recording.objects.order_by("started_at"))
    assert [r.status for r in recs] == [Recording.Status.READY, Recording.Status.READY]
    return recs


