"""dockd: each camera docked into a slot is offloaded once per docking."""
import io
import os

import pytest
from django.core.management import call_command

from devices.models import OffloadSession
from evidence.models import Recording

pytestmark = pytest.mark.django_db(transaction=True)


def _dockd_once(root):
    out = io.StringIO()
    call_command("dockd", str(root), "--dock", "d1", "--once", stdout=out, stderr=out)
    return out.getvalue()


def test_dockd_offloads_a_docked_camera_once_even_when_restarted(tmp_path, make_volume, clip_library, camera, local_store):
    docks = tmp_path / "docks"
    docks.mkdir()
    make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}).rename(docks / "slot1")

    first = _dockd_once(docks)
    second = _dockd_once(docks)  # a restarted dockd finds the same camera still docked

    assert "camera BWC-0042 docked" in first and "camera BWC-0042 docked" not in second
    assert OffloadSession.objects.count() == 1
    assert OffloadSession.objects.get().status == OffloadSession.Status.COMPLETE
    assert Recording.objects.get().status == Recording.Status.READY
    assert not (docks / "slot1" / "a.mp4").exists()


def test_dockd_offloads_again_when_the_camera_is_docked_again(tmp_path, make_volume, clip_library, camera, local_store):
    docks = tmp_path / "docks"
    docks.mkdir()
    make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}).rename(docks / "slot1")
    _dockd_once(docks)
    # Undock, record a new clip, dock again: a camera rewrites its DEVICE.json when mounted.
    (docks / "slot1" / "b.mp4").write_bytes(clip_library["hevc"].read_bytes())
    device = docks / "slot1" / "DEVICE.json"
    data = device.read_bytes()
    device.unlink()
    device.write_bytes(data)
    os.utime(device, ns=(1, 1))

    _dockd_once(docks)

    assert OffloadSession.objects.count() == 2
    assert Recording.objects.count() == 2


def test_dockd_reports_an_unregistered_camera_and_touches_nothing(tmp_path, make_volume, clip_library, local_store, db):
    docks = tmp_path / "docks"
    docks.mkdir()
    make_volume("BWC-9999", {"a.mp4": clip_library["h264"]}).rename(docks / "slot1")

    output = _dockd_once(docks)

    assert "BWC-9999 is not registered" in output
    assert (docks / "slot1" / "a.mp4").exists() and not OffloadSession.objects.exists()
