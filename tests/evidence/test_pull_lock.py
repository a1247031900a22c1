"""Two messages for one clip (the broker restored one, a starting dock worker queued it again): the
clip is pulled once (evidence/ingest/tasks.py, _pull_lock and dock_worker_ready)."""
import pytest
from celery.exceptions import Retry

from devices.models import OffloadItem
from evidence.ingest import tasks
from evidence.ingest.services import offload_session_start
from evidence.models import Recording

pytestmark = pytest.mark.django_db


def test_a_second_message_for_a_clip_being_pulled_waits_then_finds_it_pulled(make_volume, clip_library, camera,
                                                                             local_store, settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    session = offload_session_start(volume=make_volume("BWC-0042", {"DCIM/0001.mp4": clip_library["h264"]}))
    item = session.items.get()
    with tasks._pull_lock(item.pk) as mine:  # a worker is pulling this clip right now
        assert mine["held"]
        with tasks._pull_lock(item.pk) as again:
            assert again["held"] is False
        with pytest.raises(Retry):  # it will look again later; it did not pull
            tasks.pull_clip.apply(args=[item.pk])
        item.refresh_from_db()
        assert item.status == OffloadItem.Status.PENDING and not Recording.objects.exists()
    assert tasks.pull_clip.apply(args=[item.pk]).get() == OffloadItem.Status.VERIFIED
    assert list((tmp_path / "data" / "locks").iterdir()) == []  # the settled clip's lock file is gone
    assert tasks.pull_clip.apply(args=[item.pk]).get() == OffloadItem.Status.VERIFIED  # and once only
    assert Recording.objects.count() == 1


def test_a_starting_dock_worker_queues_its_docks_pending_pulls_and_no_other(make_volume, clip_library, camera,
                                                                         local_store, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    from devices.models import Dock
    from devices.services import camera_register

    camera_register(serial="BWC-0043", organisation=camera.organisation, model="Demo")
    mine = offload_session_start(volume=make_volume("BWC-0042", {"DCIM/0001.mp4": clip_library["h264"]}),
                                 dock_name="salle-1")
    offload_session_start(volume=make_volume("BWC-0043", {"DCIM/0001.mp4": clip_library["h264"]}),
                          dock_name="salle-2")
    assert Dock.objects.count() == 2
    queued = []
    monkeypatch.setattr("evidence.dispatch.task_enqueue", lambda name, args, queue: queued.append((name, args, queue)))

    class Consumer:  # what Celery passes to worker_ready: the queues this worker consumes
        class task_consumer:
            queues = [type("Q", (), {"name": "dock.salle-1"})(), type("Q", (), {"name": "media"})()]

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.dock_worker_ready(sender=Consumer()) == 1
    assert queued == [("evidence.pull_clip", [mine.items.get().pk], "dock.salle-1")]
