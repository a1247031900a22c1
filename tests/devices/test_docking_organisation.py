"""Finding 4 of issue 17: a volume is offloaded into the dock's organisation, never into another's."""
from __future__ import annotations

import pytest
from django.db import transaction

from accounts.services import organisation_create
from devices.models import Dock
from devices.services import camera_register
from evidence.models import Recording

from ..evidence.helpers import run_offload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def commune_b(db):
    with transaction.atomic():
        return organisation_create(slug="aix", name="Police municipale d'Aix")


def test_a_dock_of_one_commune_refuses_a_camera_registered_only_by_another(org, commune_b, make_volume,
                                                                         clip_library, local_store):
    with transaction.atomic():
        camera_register(serial="BWC-0777", organisation=commune_b)
    Dock.objects.create(name="poste-chambery", organisation=org)
    volume = make_volume("BWC-0777", {"DCIM/a.mp4": clip_library["h264"]})

    code, out = run_offload(volume, "--dock", "poste-chambery")

    assert code != 0 and "not registered in the organisation of dock poste-chambery" in out
    assert not Recording.objects.exists()
    assert (volume / "DCIM" / "a.mp4").exists()  # nothing read, nothing removed


def test_the_same_serial_in_two_communes_goes_to_the_docks_commune(org, commune_b, make_volume, clip_library,
                                                                  local_store):
    with transaction.atomic():
        camera_register(serial="BWC-0777", organisation=commune_b)  # registered first by the other commune
        mine = camera_register(serial="BWC-0777", organisation=org)
    Dock.objects.create(name="poste-chambery", organisation=org)
    volume = make_volume("BWC-0777", {"DCIM/a.mp4": clip_library["h264"]})

    code, out = run_offload(volume, "--dock", "poste-chambery")

    assert code == 0, out
    assert list(Recording.objects.values_list("organisation_id", "camera_id")) == [(org.pk, mine.pk)]


def test_a_dock_without_organisation_refuses_a_serial_two_communes_registered(org, commune_b, make_volume,
                                                                             clip_library, local_store):
    with transaction.atomic():
        camera_register(serial="BWC-0777", organisation=commune_b)
        camera_register(serial="BWC-0777", organisation=org)
    volume = make_volume("BWC-0777", {"DCIM/a.mp4": clip_library["h264"]})

    code, out = run_offload(volume)

    assert code != 0 and "several organisations" in out
    assert not Recording.objects.exists()
