"""A pull that runs out of time is queued again instead of being acknowledged as failed."""
from __future__ import annotations

import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded

from devices.models import OffloadItem
from evidence.ingest import services, tasks
from evidence.models import Recording


def test_the_soft_limit_comes_before_the_hard_one(settings):
    assert tasks.pull_clip.soft_time_limit == tasks.soft_time_limit(settings.TEMOIN_TASK_TIME_LIMIT)
    assert tasks.soft_time_limit(3 * 3600) == 3 * 3600 - 60
    assert tasks.soft_time_limit(25) == 20  # the fault rig's short limit keeps a margin too


@pytest.mark.django_db
def test_a_pull_stopped_by_its_soft_time_limit_is_retried_and_the_retry_offloads_the_clip(
        make_volume, clip_library, camera, local_store, monkeypatch):
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})
    session = services.offload_session_start(volume=volume)
    item = OffloadItem.objects.get(session=session)
    real_pull = services.offload_item_pull
    calls = []

    def pull(**kwargs):
        calls.append(kwargs["item"].pk)
        if len(calls) == 1:
            raise SoftTimeLimitExceeded()
        return real_pull(**kwargs)

    monkeypatch.setattr(services, "offload_item_pull", pull)

    with pytest.raises(Retry) as retry:  # queued again, not acknowledged as failed
        tasks.pull_clip.apply(args=[item.pk], throw=True)

    assert isinstance(retry.value.exc, SoftTimeLimitExceeded) and retry.value.when == 5
    item.refresh_from_db()
    assert item.status == OffloadItem.Status.PENDING and not Recording.objects.exists()

    second = tasks.pull_clip.apply(args=[item.pk])

    assert second.state == "SUCCESS" and calls == [item.pk, item.pk]
    item.refresh_from_db()
    assert item.status == OffloadItem.Status.VERIFIED
    assert Recording.objects.get().sha256
