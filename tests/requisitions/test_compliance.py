"""A partner's files live under the same rules as every other recording: the compliance audit finds
nothing to say about them, and the retention sweep erases them, refused ones included, at their end."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from audit.models import CustodyEvent
from evidence.models import Recording
from evidence.retention.sweep import retention_sweep

from ..compliance.helpers import audit
from .test_bad_input import create, patch, send

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploaded(issue, local_store, settings):
    settings.TEMOIN_COMPLIANCE_GRACE = "PT0S"
    link = issue()
    client = Client()
    send(client, link["upload_url"], b"bus footage" * 1000, filename="bus.mp4")
    send(client, link["upload_url"], b"bus footage" * 1000, filename="bus-again.mp4")  # duplicate
    url = create(client, link["upload_url"], 9, filename="x.mp4", sha256="1" * 64)
    assert patch(client, url, 0, b"refused!!").status_code == 422
    return link


def test_a_deployment_with_a_partners_files_is_compliant(uploaded):
    code, out = audit()
    assert code == 0, out
    assert "0 violation(s)" in out


def test_the_sweep_erases_a_partners_files_at_their_retention_end(uploaded, local_store):
    recordings = list(Recording.objects.filter(source="requisition"))
    assert {r.status for r in recordings} == {"unplayable", "duplicate", "failed"}  # not video: unplayable
    end = max(r.retain_until for r in recordings)
    # The store refuses an erasure by a clock ahead of its own: the whole machine's clock moves.
    with time_machine.travel(end + dt.timedelta(minutes=1), tick=True):
        retention_sweep()
    assert {r.status for r in Recording.objects.filter(source="requisition")} == {"erased"}
    for recording in recordings:
        assert not local_store.exists(recording.store_key)
        assert CustodyEvent.objects.filter(recording=recording, action="recording.erased").exists()
