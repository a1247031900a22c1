"""The staging folder of tus uploads (issue 22): no upload is accepted without room for it (507),
and the partial files of abandoned uploads are removed, the custody log saying so."""
from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections import namedtuple

import pytest
from django.conf import settings as django_settings
from django.test import Client

from audit.models import CustodyEvent
from evidence.requisitions import tasks
from evidence.requisitions.models import RequisitionUpload
from evidence.requisitions.staging import staging_dir, staging_sweep

from .test_bad_input import TUS, create, patch, path_of

pytestmark = pytest.mark.django_db(transaction=True)

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def link(issue, local_store):
    return issue()


@pytest.fixture
def free(monkeypatch):
    """The staging volume's free space, as shutil.disk_usage reports it (what staging.free_space asks)."""
    state = {"free": 10 ** 12}
    real = shutil.disk_usage

    def fake(path):
        total, used, _ = real(path)
        return Usage(total, used, state["free"])

    monkeypatch.setattr("evidence.requisitions.staging.shutil.disk_usage", fake)
    return state


def test_an_upload_larger_than_the_free_space_is_refused_with_507_and_nothing_is_staged(link, free, settings,
                                                                                         clip_library):
    settings.TEMOIN_STAGING_FREE_MARGIN = 1000
    settings.STORE_BACKEND = "s3"  # the store elsewhere: staging alone counts
    data = clip_library["h264"].read_bytes()
    free["free"] = len(data) + 999
    response = Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH=str(len(data)), **TUS)
    assert response.status_code == 507
    body = response.content.decode()
    assert "not enough space" in body and "nothing was received" in body
    assert not RequisitionUpload.objects.exists() and not list(staging_dir().iterdir())
    assert not CustodyEvent.objects.filter(action="requisition.upload_started").exists()
    free["free"] = len(data) + 1000
    url = create(Client(), link["upload_url"], len(data), filename="clip.mp4")
    # The bytes this upload still owes are reserved: a second one of the same size no longer fits.
    response = Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH=str(len(data)), **TUS)
    assert response.status_code == 507 and f"{len(data)} still owed" in response.content.decode()
    settings.STORE_BACKEND = "local"
    assert patch(Client(), url, 0, data).status_code == 204
    assert RequisitionUpload.objects.get().status == "stored"


def test_the_local_store_on_the_same_volume_counts_the_copy_twice(link, free, settings):
    settings.TEMOIN_STAGING_FREE_MARGIN = 0
    settings.STORE_LOCAL_ROOT.mkdir(parents=True, exist_ok=True)
    settings.STORE_LOCAL_ROOT = settings.DATA_DIR  # same volume as staging, certainly
    free["free"] = 1500
    assert Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="1000", **TUS).status_code == 507
    assert Client().post(path_of(link["upload_url"]), HTTP_UPLOAD_LENGTH="750", **TUS).status_code == 201


def partial_upload(link, data: bytes, received: int) -> tuple[str, RequisitionUpload]:
    client = Client()
    url = create(client, link["upload_url"], len(data), filename="bus.mp4")
    assert patch(client, url, 0, data[:received]).status_code == 204
    return url, RequisitionUpload.objects.get(uid=url.rsplit("/", 1)[1])


def test_an_upload_untouched_for_seven_days_is_removed_from_staging_and_logged(link, clip_library):
    data = clip_library["h264"].read_bytes()
    url, upload = partial_upload(link, data, 5000)
    staged = staging_dir() / upload.uid
    assert staged.stat().st_size == 5000
    now = dt.datetime.now(dt.timezone.utc)
    assert staging_sweep(now=now + dt.timedelta(days=6, hours=23)) == []
    assert staged.exists()
    assert staging_sweep(now=now + dt.timedelta(days=7, minutes=1)) == [upload.uid]
    assert not staged.exists()
    upload.refresh_from_db()
    assert upload.status == "failed" and upload.message.startswith("abandoned: 5000 of")
    event = CustodyEvent.objects.get(action="requisition.upload_abandoned")
    assert event.details["upload"] == upload.uid and event.details["received"] == 5000
    assert event.details["partial_sha256"] == hashlib.sha256(data[:5000]).hexdigest()
    assert event.actor_label == "system:staging-sweep" and "untouched since" in event.details["reason"]
    # The partner is told, not left resuming into nothing.
    response = patch(Client(), url, 5000, data[5000:])
    assert response.status_code == 403 and "abandoned" in response.content.decode()
    assert staging_sweep(now=now + dt.timedelta(days=30)) == []  # once


def test_an_upload_whose_link_expired_a_day_ago_is_removed(issue, local_store, clip_library):
    now = dt.datetime.now(dt.timezone.utc)
    link = issue(expires_at=(now + dt.timedelta(hours=2)).isoformat())
    data = clip_library["h264"].read_bytes()
    _, upload = partial_upload(link, data, 1234)
    assert staging_sweep(now=now + dt.timedelta(hours=2, minutes=30)) == []
    assert staging_sweep(now=now + dt.timedelta(days=1, hours=2, minutes=1)) == [upload.uid]
    assert not (staging_dir() / upload.uid).exists()
    assert "expired" in CustodyEvent.objects.get(action="requisition.upload_abandoned").details["reason"]


def test_a_finished_upload_and_an_active_one_are_never_swept(link, clip_library):
    data = clip_library["h264"].read_bytes()
    _, active = partial_upload(link, data, 100)
    client = Client()
    done_url = create(client, link["upload_url"], len(data), filename="done.mp4")
    assert patch(client, done_url, 0, data).status_code == 204
    assert tasks.staging_sweep() == 0  # the beat task, now
    assert (staging_dir() / active.uid).exists()
    assert RequisitionUpload.objects.get(filename="done.mp4").status == "stored"
    assert django_settings.CELERY_BEAT_SCHEDULE["requisition-staging-sweep"]["task"] == "requisitions.staging_sweep"
