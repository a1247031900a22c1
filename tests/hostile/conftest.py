"""Hostile-input suite: Hypothesis profiles and the reliability recorder.

Profiles: ``ci`` (default; modest example counts so that the suite stays within about 3 minutes
on 2 cores) and ``thorough`` (10× more, for a night run): ``HYPOTHESIS_PROFILE=thorough pytest tests/hostile``.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from ..faults import recorder

globals().update(recorder.install("hostile"))

_common = dict(deadline=None, database=None, print_blob=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=150, **_common)
settings.register_profile("thorough", max_examples=1500, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n_ci: int) -> int:
    """An example count scaled with the profile (``ci``: n_ci; ``thorough``: 10×)."""
    return n_ci * 10 if settings().max_examples >= 1500 else n_ci


# --- Two organisations, each role, real recordings -------------------------------------------------

import datetime as _dt  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import pytest  # noqa: E402

ROLES = ("officer", "supervisor", "legal", "dpo", "mayor", "admin")
# Strings that belong to the other organisation only: none may appear in a response to our users.
FOREIGN_MARKERS = ("annecy-secret", "ANNECY-CAM-77", "Police municipale d'Annecy", "M-ANNECY-9", "AFF-ANNECY-4242")


@dataclass
class World:
    users: dict = field(default_factory=dict)        # role → user of the caller's organisation
    recording: object = None                         # a ready recording of the caller's organisation
    hold: object = None
    foreign_user: object = None
    foreign_recording: object = None                 # a ready recording of the other organisation
    foreign_hold: object = None


def _offload(make_volume, serial: str, clip, sidecar: dict):
    from evidence.models import Recording
    from tests.evidence.helpers import run_offload

    volume = make_volume(serial, {"DCIM/a.mp4": clip}, {"DCIM/a.json": sidecar})
    code, out = run_offload(volume)
    assert code == 0, out
    rec = Recording.objects.filter(camera__serial=serial).get()
    assert rec.status == Recording.Status.READY, rec.status_message
    return rec


@pytest.fixture
def world(org, make_user, make_volume, clip_library, local_store) -> World:
    """Organisation A (the callers: one user per role) and organisation B (foreign data), each with a
    recording offloaded through the real pipeline (ffmpeg playback copy) and a hold."""
    from django.db import transaction
    from django.utils import timezone

    from accounts.services import organisation_create
    from devices.services import camera_assign, camera_register
    from evidence.retention.holds import hold_place

    w = World()
    for role in ROLES:
        w.users[role] = make_user(f"{role}.a", role=role, matricule="M042" if role == "officer" else "")
    with transaction.atomic():
        cam = camera_register(serial="BWC-0042", organisation=org, model="Demo")
        camera_assign(camera=cam, officer=w.users["officer"], starts_at=timezone.now() - _dt.timedelta(days=30))
        other = organisation_create(slug="annecy-secret", name="Police municipale d'Annecy")
        foreign_cam = camera_register(serial="ANNECY-CAM-77", organisation=other, model="Demo")
    w.foreign_user = make_user("agent.annecy", role="officer", matricule="M-ANNECY-9", organisation=other)
    foreign_supervisor = make_user("chef.annecy", role="supervisor", organisation=other)
    with transaction.atomic():
        camera_assign(camera=foreign_cam, officer=w.foreign_user, starts_at=timezone.now() - _dt.timedelta(days=30))
    now = timezone.now().isoformat()
    w.recording = _offload(make_volume, "BWC-0042", clip_library["h264"],
                           {"started_at": now, "intervention": "AFF-2026-1"})
    w.foreign_recording = _offload(make_volume, "ANNECY-CAM-77", clip_library["h264_noaudio"],
                                   {"started_at": now, "intervention": "AFF-ANNECY-4242", "officer": "M-ANNECY-9"})
    w.hold = hold_place(by=w.users["supervisor"], procedure="judicial", reference="PV 2026/001",
                                 recording=w.recording)
    w.foreign_hold = hold_place(by=foreign_supervisor, procedure="judicial", reference="PV annecy-secret",
                                         recording=w.foreign_recording)
    return w


def api_client(user=None):
    from rest_framework.test import APIClient

    client = APIClient()
    client.raise_request_exception = False  # a server error must show as a 500, not as an exception
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.api_token}")
    return client


def assert_no_foreign_data(response) -> None:
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    text = body.decode("utf-8", "replace")
    for marker in FOREIGN_MARKERS:
        assert marker not in text, f"{response.status_code}: the other organisation's {marker!r} leaked"
