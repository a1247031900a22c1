"""Two transactions creating the same new intervention at once (the live probe's 500 on POST
/api/interventions/; two clips pulled at once that name the same new intervention): the unique
constraint decides, and the loser gets the ordinary answer instead of an IntegrityError."""
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from evidence.interventions.models import Intervention, InterventionLink
from evidence.interventions.services import InterventionError, intervention_create, recording_link_named_intervention
from tests.evidence.test_api import make_recording


def _created_elsewhere(org, reference: str, started: threading.Event, release: threading.Event) -> threading.Thread:
    """Another transaction inserts ``reference`` and holds it uncommitted until ``release``."""
    def run():
        try:
            with transaction.atomic():
                Intervention.objects.create(organisation=org, reference=reference, created_label="other request",
                                            created_at=timezone.now())
                started.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    started.wait(10)
    return thread


def _release_soon(release: threading.Event) -> threading.Timer:
    timer = threading.Timer(0.5, release.set)  # while this transaction waits on the unique index
    timer.start()
    return timer


@pytest.mark.django_db(transaction=True)
def test_creating_an_intervention_another_request_is_creating_says_it_exists(org, make_user):
    chef = make_user("chef", role="supervisor")
    started, release = threading.Event(), threading.Event()
    other = _created_elsewhere(org, "PM-2026-0777", started, release)
    _release_soon(release)

    with pytest.raises(InterventionError, match="already exists"):
        intervention_create(by=chef, reference="PM-2026-0777")
    other.join()
    assert Intervention.objects.filter(reference="PM-2026-0777").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_clip_naming_an_intervention_another_pull_is_creating_is_linked_to_that_one(org, camera, officer):
    recording = make_recording(camera=camera, wearer=officer, intervention="PM-2026-0778")
    started, release = threading.Event(), threading.Event()
    other = _created_elsewhere(org, "PM-2026-0778", started, release)
    _release_soon(release)

    with transaction.atomic():
        linked = recording_link_named_intervention(recording=recording, source="sidecar",
                                                   actor_label="system:offload@test")
    other.join()
    intervention = Intervention.objects.get(reference="PM-2026-0778")
    assert linked == intervention and intervention.created_label == "other request"
    assert InterventionLink.objects.filter(intervention=intervention, recording=recording).exists()
