"""What the BWS sent besides the clips (comments, GNSS track, places) follows the recordings' fate."""
import datetime as dt

import pytest

from audit.models import CustodyEvent
from devices.axis.models import AxisBookmark, AxisObject, AxisRecording
from devices.axis.services import containers_purge
from evidence.models import Recording

from .bws import gnss_track, iso
from .conftest import TRIGGER_ON, open_recording, sha256, upload_clip

pytestmark = pytest.mark.django_db(transaction=True)


def _recording_with_comment_and_track(registered, clip_library):
    container = open_recording(registered)
    bws = registered.bws
    bws.put_object(f"{container}/bookmark_{TRIGGER_ON:%Y%m%dT%H%M%SZ}_1", "Témoin : M. X, 06 12 34 56 78".encode(),
                   {"StartTime": iso(TRIGGER_ON)})
    bws.put_object(f"{container}/20261120_213000_1_{registered.serial}_gpstrail.json",
                   gnss_track([(45.56, 5.91, TRIGGER_ON + dt.timedelta(seconds=1))], TRIGGER_ON), {"FileType": "json"})
    upload_clip(registered, container, clip_library["h264"].read_bytes(), TRIGGER_ON)
    bws.post_container(container, {"Status": "Complete"})
    return AxisRecording.objects.get(name=container)


def test_bookmarks_and_track_sent_before_the_clips_are_given_to_them(registered, clip_library, local_store):
    container = open_recording(registered)
    bws = registered.bws
    bws.put_object(f"{container}/bookmark_{TRIGGER_ON:%Y%m%dT%H%M%SZ}_1", b"",
                   {"CategoryID": "trigger_reason:incident", "StartTime": iso(TRIGGER_ON)})
    bws.put_object(f"{container}/20261120_213000_1_{registered.serial}_gpstrail.json",
                   gnss_track([(45.56, 5.91, TRIGGER_ON + dt.timedelta(seconds=1))], TRIGGER_ON), {"FileType": "json"})
    data = clip_library["h264"].read_bytes()

    _name, response = upload_clip(registered, container, data, TRIGGER_ON)

    assert response.status_code == 201
    rec = Recording.objects.get(sha256=sha256(data))
    assert rec.trigger_reason == "incident" and rec.track == [[45.56, 5.91, TRIGGER_ON.timestamp() + 1]]
    collected = CustodyEvent.objects.get(recording=rec, action="recording.collected")
    assert collected.details["bookmarks"][0]["category_id"] == "trigger_reason:incident"


def test_comments_and_track_are_erased_once_every_clip_of_their_recording_is(registered, clip_library, local_store,
                                                                             time_machine):
    container = _recording_with_comment_and_track(registered, clip_library)
    attachments = list(AxisObject.objects.filter(container=container))
    assert len(attachments) == 2 and all(local_store.exists(o.store_key) for o in attachments)
    after_retention = max(o.retain_until for o in attachments) + dt.timedelta(days=1)
    # A date given to the purge never moves the store's clock: it refuses anything still locked.
    Recording.objects.update(status=Recording.Status.ERASED)
    assert containers_purge(now=after_retention) == 0

    time_machine.move_to(after_retention)  # the clip's month has passed
    Recording.objects.update(status=Recording.Status.READY)
    assert containers_purge() == 0  # the clip is still kept

    Recording.objects.update(status=Recording.Status.ERASED)  # as the retention sweep leaves them
    assert containers_purge() == 1

    container.refresh_from_db()
    assert container.purged_at is not None and container.track is None and container.location is None
    assert AxisBookmark.objects.get().description == ""
    assert not any(local_store.exists(o.store_key) for o in attachments)
    actions = list(CustodyEvent.objects.filter(subject_type="axis.axisrecording", action__startswith="axis.container_purge")
                   .values_list("action", flat=True))
    assert actions == ["axis.container_purge_started", "axis.container_purged"]  # intent, then completion
    assert containers_purge() == 0
