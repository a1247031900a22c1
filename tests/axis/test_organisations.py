"""Finding 4 of issue 17: an Axis credential of one commune can neither detect, claim nor receive
the cameras of another, and a dock of one commune offloads none of another's."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts.services import organisation_create
from audit.models import CustodyEvent
from devices.axis.models import AxisDevice
from devices.models import Camera
from devices.services import camera_register

from .bws import BodyWornSystem
from .conftest import connection_file

pytestmark = pytest.mark.django_db(transaction=True)
SERIAL_OF_A = "B8A44F3A0042"
UNUSED = "B8A44F3A0777"


@pytest.fixture
def commune_b(live_server):
    with transaction.atomic():
        other = organisation_create(slug="aix", name="Police municipale d'Aix")
    system = BodyWornSystem(connection_file(other, live_server))
    assert system.authenticate().status_code == 200
    return other, system


def test_another_communes_serial_answers_as_any_new_serial_and_stays_the_first_communes(org, commune_b):
    with transaction.atomic():
        camera_of_a = camera_register(serial=SERIAL_OF_A, organisation=org)
    other, system_b = commune_b

    taken = system_b.put_object(f"Devices/{SERIAL_OF_A}", metadata={"Name": "x", "Model": "W110"})
    free = system_b.put_object(f"Devices/{UNUSED}", metadata={"Name": "y", "Model": "W110"})

    # The same answer for a serial commune A holds and for a free one: nothing to detect.
    assert (taken.status_code, free.status_code) == (201, 201)
    assert "organisation" not in taken.text
    camera_of_a.refresh_from_db()
    assert camera_of_a.organisation == org
    assert not AxisDevice.objects.filter(camera=camera_of_a).exists()
    # Commune B's registration is its own camera, in its own log.
    device_b = AxisDevice.objects.get(organisation=other, serial=SERIAL_OF_A)
    assert device_b.camera.organisation == other and device_b.camera != camera_of_a
    assert not CustodyEvent.objects.filter(organisation=org, action__startswith="axis.").exists()


def test_a_serial_registered_by_another_commune_can_still_be_added_by_its_owner(org, commune_b):
    other, system_b = commune_b
    assert system_b.put_object(f"Devices/{UNUSED}", metadata={"Model": "W110"}).status_code == 201

    out = io.StringIO()
    call_command("addcamera", UNUSED, "--org", org.slug, stdout=out)

    assert "registered in chambery" in out.getvalue()
    assert set(Camera.objects.filter(serial=UNUSED).values_list("organisation__slug", flat=True)) == {"chambery",
                                                                                                      "aix"}


def test_axis_authentication_is_rate_limited_per_address(client, settings, org, live_server):
    settings.TEMOIN_RATE_AXIS_AUTH = 3
    connection = connection_file(org, live_server)
    wrong = {"HTTP_X_AUTH_USER": connection["BlobAPIUserName"], "HTTP_X_AUTH_KEY": "not-the-key"}

    answers = [client.get("/axis/auth/v1.0", REMOTE_ADDR="198.51.100.7", **wrong).status_code for _ in range(4)]
    right = client.get("/axis/auth/v1.0", REMOTE_ADDR="198.51.100.7", HTTP_X_AUTH_USER=connection["BlobAPIUserName"],
                       HTTP_X_AUTH_KEY=connection["BlobAPIKey"])
    elsewhere = client.get("/axis/auth/v1.0", REMOTE_ADDR="198.51.100.8", HTTP_X_AUTH_USER=connection["BlobAPIUserName"],
                           HTTP_X_AUTH_KEY=connection["BlobAPIKey"])

    assert answers == [401, 401, 401, 429]
    assert right.status_code == 429 and int(right["Retry-After"]) >= 1
    assert elsewhere.status_code == 200
