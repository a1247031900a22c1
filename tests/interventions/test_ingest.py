"""A recording whose sidecar or Axis metadata names an intervention is linked to it at collection,
the intervention created if new; both logged (issue #21)."""
import datetime as dt
import json

import pytest

from audit.models import CustodyEvent
from evidence.models import Intervention, InterventionLink, Recording
from tests.axis.conftest import TRIGGER_ON, bws, clip_metadata, connection, open_recording, registered, sha256  # noqa: F401
from tests.evidence.helpers import run_offload, sha256_file


@pytest.mark.django_db
def test_a_sidecar_naming_an_intervention_links_the_recording_to_it_created_if_new(
        make_volume, clip_library, camera, officer, local_store):
    sidecars = {
        "DCIM/100/CLIP0001.json": {"started_at": "2026-11-20T22:30:00+01:00", "officer": "M042",
                                   "intervention": "PM-2026-1142", "trigger_reason": "incident"},
        "DCIM/100/CLIP0002.json": {"started_at": "2026-11-20T22:31:00+01:00", "officer": "M042",
                                   "intervention": "PM-2026-1142", "trigger_reason": "incident"},
    }
    volume = make_volume("BWC-0042", {"DCIM/100/CLIP0001.MP4": clip_library["h264"],
                                      "DCIM/100/CLIP0002.MP4": clip_library["h264_noaudio"]}, sidecars)

    code, output = run_offload(volume)

    assert code == 0, output
    intervention = Intervention.objects.get()
    assert intervention.reference == "PM-2026-1142" and intervention.created_label.startswith("system:offload")
    links = InterventionLink.objects.filter(intervention=intervention)
    assert {link.source for link in links} == {"sidecar"} and links.count() == 2
    assert set(links.values_list("recording__sha256", flat=True)) == {
        sha256_file(clip_library["h264"]), sha256_file(clip_library["h264_noaudio"])}
    assert CustodyEvent.objects.filter(action="intervention.created").count() == 1
    assert CustodyEvent.objects.filter(action="intervention.linked").count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_axis_clip_naming_an_intervention_is_linked_to_it(registered, clip_library, local_store):
    reg, bws = registered, registered.bws
    container = open_recording(reg)
    data = clip_library["h264"].read_bytes()

    response = bws.put_object(f"{container}/20261120T213000Z_1.mp4", data,
                              {**clip_metadata(TRIGGER_ON, 3), "Intervention": "PM-2026-2001"})

    assert response.status_code == 201, response.text
    recording = Recording.objects.get(sha256=sha256(data))
    link = InterventionLink.objects.get(recording=recording)
    assert (link.intervention.reference, link.source) == ("PM-2026-2001", "axis")
    assert CustodyEvent.objects.filter(action="intervention.linked", recording=recording).exists()
