"""Every recording says where it came from and under which legal regime (issue 22)."""
from __future__ import annotations

import pytest
from django.utils import timezone

from devices.axis.models import AxisClip, AxisRecording
from evidence.models import Recording

# The Axis fixtures (a body worn system talking to the live server), imported to be used here.
from ..axis.conftest import bws, connection, registered  # noqa: F401
from ..axis.conftest import TRIGGER_ON, open_recording, upload_clip
from ..evidence.helpers import run_offload
from ..conftest import migrate_to
from ..evidence.test_api import make_recording

BEFORE, AFTER = ("evidence", "0007_recording_grant"), ("evidence", "0008_recording_source_requisitions")




@pytest.mark.django_db
def test_an_offloaded_recording_is_a_body_worn_cameras(make_volume, clip_library, camera, local_store):
    volume = make_volume("BWC-0042", {"DCIM/100/CLIP0001.MP4": clip_library["h264"]})
    code, out = run_offload(volume)
    assert code == 0, out
    recording = Recording.objects.get()
    assert (recording.source, recording.regime) == ("camera", "body_worn")


@pytest.mark.django_db(transaction=True)
def test_a_clip_from_the_axis_system_is_a_body_worn_recording_from_axis(registered, clip_library,  # noqa: F811
                                                                        local_store):
    container = open_recording(registered)
    _, response = upload_clip(registered, container, clip_library["h264"].read_bytes(), TRIGGER_ON)
    assert response.status_code == 201, response.text
    recording = Recording.objects.get()
    assert (recording.source, recording.regime) == ("axis", "body_worn")


@pytest.mark.django_db(transaction=True)
def test_the_migration_marks_existing_axis_recordings_and_leaves_offloaded_ones_camera(camera, officer):
    offloaded = make_recording(camera=camera, wearer=officer)
    from_axis = make_recording(camera=camera, wearer=officer)
    container = AxisRecording.objects.create(organisation=camera.organisation, name="20261120_213000_ABCD",
                                             created_at=timezone.now())
    AxisClip.objects.create(container=container, name="20261120T213000Z_1.mkv", recording=from_axis,
                            upload_started_at=timezone.now())

    try:
        migrate_to(BEFORE)  # the recordings as a deployment before issue 22 had them: no source column
        migrate_to(AFTER)

        # Only the columns 0008 knows (the model has more since: bundle, source_camera in 0011).
        sources = dict(Recording.objects.values_list("pk", "source"))
        assert (sources[offloaded.pk], sources[from_axis.pk]) == ("camera", "axis")
        assert set(Recording.objects.values_list("regime", flat=True)) == {"body_worn"}
    finally:
        migrate_to()  # back to the latest schema (0009's declarants…), for the next tests


@pytest.mark.django_db(transaction=True)
def test_a_partners_placeholder_device_is_not_one_of_our_cameras(issue, make_user, camera, local_store):
    """The device a partner's files are recorded with stands for the partner's own system: the fleet
    page, its camera filter and actions, the dashboard's figures and the metrics leave it out; the
    recording still names it as its source."""
    from django.test import Client
    from django.urls import reverse

    from devices.models import Camera
    from devices.selectors import camera_for_fleet, cameras_visible_to
    from evidence.dashboard.selectors import fleet_health_for
    from evidence.requisitions.models import Requisition

    from ..auth import sign_in
    from ..ops.test_metrics import _text, samples
    from .conftest import api
    from .test_bad_input import send

    link = issue()
    send(Client(), link["upload_url"], b"bus footage " * 2000, filename="bus-ligne-3.mp4")
    placeholder = Requisition.objects.get().camera
    assert placeholder.serial == "PARTNER-RESEAU-DE-BUS-STAC"
    assert set(Camera.objects.values_list("serial", flat=True)) == {"BWC-0042", placeholder.serial}
    admin = make_user("admin.tech", role="admin")
    supervisor = make_user("chef.martin", role="supervisor")

    page = Client()
    sign_in(page, admin)
    fleet = page.get(reverse("fleet")).content.decode()
    assert "BWC-0042" in fleet and "PARTNER-" not in fleet
    assert list(cameras_visible_to(user=supervisor)) == [camera]
    with pytest.raises(Camera.DoesNotExist):
        camera_for_fleet(user=admin, pk=placeholder.pk)
    page.post(reverse("camera-retire", args=[placeholder.pk]), {"reason": "test"})
    assert Camera.objects.get(pk=placeholder.pk).active  # no fleet action reaches it
    health = fleet_health_for(user=supervisor, now=timezone.now())
    assert (health.cameras_active, health.cameras_not_docked) == (1, 1)  # BWC-0042 only, issued 30 days ago
    assert samples(_text())[("temoin_cameras_active", ())] == 1

    # Where a recording's source must be shown, it is.
    recording = Recording.objects.get(source="requisition")
    assert recording.camera_id == placeholder.pk
    assert api(supervisor).get(f"/api/recordings/{recording.pk}/").json()["camera"] == placeholder.serial
    listed = api(supervisor).get("/api/recordings/", {"camera": "PARTNER"}).json()["results"]
    assert [r["id"] for r in listed] == [recording.pk]
    sign_in(page, supervisor)
    assert placeholder.serial in page.get(reverse("recording-list"), {"source": "requisition"}).content.decode()
