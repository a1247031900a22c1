"""Factories for the dashboard and fleet tests: recordings with known times, durations and tags.

The figures are aggregated by the database, so the rows are made directly (the ingest pipeline,
with real clips, is tested in tests/evidence; one browser test here still offloads a real clip).
"""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import transaction

from accounts.services import organisation_create
from devices.models import Dock, DockSlot, OffloadItem, OffloadSession
from devices.services import camera_assign, camera_register
from evidence.models import Recording

_seq = itertools.count(1)


@pytest.fixture
def other_org(db):
    with transaction.atomic():
        return organisation_create(slug="annecy", name="Police municipale d'Annecy")


@pytest.fixture
def make_camera(db, org):
    def make(serial, *, organisation=None, officer=None, since=None, model="Caméra-piéton démo", firmware="2.4.1"):
        with transaction.atomic():
            cam = camera_register(serial=serial, organisation=organisation or org, model=model)
            cam.firmware = firmware
            cam.save(update_fields=["firmware"])
            if officer is not None:
                camera_assign(camera=cam, officer=officer, starts_at=since or dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        return cam

    return make


@pytest.fixture
def make_recording(db):
    """make_recording(camera, started_at, duration=60, wearer=..., tagged=True, **fields)."""

    def make(camera, started_at, duration=60.0, *, wearer=None, tagged=True, status=Recording.Status.READY,
             retain_until=None, **fields):
        n = next(_seq)
        values = dict(
            organisation=camera.organisation, camera=camera, wearer=wearer, source_path=f"DCIM/{n:06d}.MP4",
            source_size=1000 + n, source_mtime_ns=n, started_at=started_at,
            ended_at=started_at + dt.timedelta(seconds=duration) if started_at else None, duration=duration,
            time_attested=True, sha256=f"{n:064x}", size=1000 + n, store_key=f"originals/test/{n:012d}",
            status=status, ingested_at=started_at or dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
            retain_until=retain_until or (started_at + dt.timedelta(days=31) if started_at else None),
        )
        if tagged:
            values.update(trigger_reason="incident", subject_notified=True, purpose="evidence")
        values.update(fields)
        return Recording.objects.create(**values)

    return make


@pytest.fixture
def make_session(db):
    """make_session(camera, started_at, dock="poste-1", slot="slot-1", items=[status, …], bytes=(done, total))."""

    def make(camera, started_at, *, dock="poste-1", slot="slot-1", status=OffloadSession.Status.RUNNING,
             items=(), bytes_done=0, bytes_total=0, finished_at=None, dock_organisation=None):
        d, _ = Dock.objects.get_or_create(name=dock, defaults={"organisation": dock_organisation})
        s, _ = DockSlot.objects.get_or_create(dock=d, name=slot)
        session = OffloadSession.objects.create(
            organisation=camera.organisation, camera=camera, dock=d, slot=s, volume=f"/srv/dock/{slot}",
            status=status, started_at=started_at, finished_at=finished_at,
            bytes_done=bytes_done, bytes_total=bytes_total)
        for i, item_status in enumerate(items):
            OffloadItem.objects.create(session=session, path=f"DCIM/{i:04d}.MP4", size=100, mtime_ns=i,
                                       status=item_status)
        camera.last_docked_at = started_at
        camera.save(update_fields=["last_docked_at"])
        return session

    return make
