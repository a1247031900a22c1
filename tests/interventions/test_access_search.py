"""The access-request candidate search takes an intervention (issue #21): its linked recordings only."""
import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.interventions.services import intervention_create
from tests.evidence.test_api import api, make_recording

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 11, 20, 22, 14, tzinfo=dt.timezone.utc)


def test_the_candidates_of_an_access_request_can_be_the_recordings_of_one_intervention(
        camera, officer, make_user, local_store):
    dpo, chef = make_user("dpo", role="dpo"), make_user("chef", role="supervisor")
    linked = make_recording(camera=camera, wearer=officer, started_at=T0)
    same_time = make_recording(camera=camera, wearer=officer, started_at=T0 + dt.timedelta(minutes=2))
    with transaction.atomic():
        intervention_create(by=chef, reference="PM-2026-0042", recordings=[linked])
    request_id = api(dpo).post("/api/access-requests/", {
        "requester_name": "Jean Martin", "requester_contact": "jean.martin@example.org", "identity_checked": True,
        "identity_check_method": "carte d'identité", "received_on": timezone.localdate().isoformat(),
        "description": "Contrôle place Saint-Léger"}, format="json").json()["id"]
    url = f"/api/access-requests/{request_id}/candidates/"
    window = {"start": (T0 - dt.timedelta(minutes=5)).isoformat(), "end": (T0 + dt.timedelta(hours=1)).isoformat()}

    everything = api(dpo).get(url, window).json()
    of_intervention = api(dpo).get(url, {**window, "intervention": "PM-2026-0042"}).json()
    unknown = api(dpo).get(url, {**window, "intervention": "PM-0000"})

    assert {c["id"] for c in everything["results"]} == {linked.pk, same_time.pk}
    assert [c["id"] for c in of_intervention["results"]] == [linked.pk]
    assert of_intervention["criteria"]["intervention"] == "PM-2026-0042"
    assert unknown.status_code == 400 and "intervention" in unknown.json()
    searched = CustodyEvent.objects.filter(action="access_request.searched").order_by("seq").last()
    assert searched.details["criteria"]["intervention"] == "PM-2026-0042" and searched.details["found"] == [linked.pk]
