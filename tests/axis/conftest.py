"""A body worn system talking to Témoin's real HTTP server (pytest-django's live_server)."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
from dataclasses import dataclass

import pytest
from django.core.management import call_command

from .bws import BodyWornSystem, clip_name, epoch, iso, recording_container_name

SERIAL = "B8A44F3A0042"


def connection_file(org, live_server, *args) -> dict:
    out, err = io.StringIO(), io.StringIO()
    call_command("axis_connection_file", "--org", org.slug, "--url", live_server.url, *args, stdout=out, stderr=err)
    return json.loads(out.getvalue())


@pytest.fixture
def connection(org, live_server):
    return connection_file(org, live_server)


@pytest.fixture
def bws(connection):
    system = BodyWornSystem(connection)
    assert system.authenticate().status_code == 200
    return system


@dataclass
class Registered:
    bws: BodyWornSystem
    user_uuid: str
    serial: str


@pytest.fixture
def registered(bws, officer):
    """The administrator registered the officer (UserID = matricule) and the camera in the manager."""
    user_uuid = str(uuid.uuid4())
    assert bws.put_object(f"Users/{user_uuid}", metadata={
        "Name": "Jeanne Martin", "Active": "True", "UserID": officer.matricule}).status_code == 201
    assert bws.put_object(f"Devices/{SERIAL}", metadata={
        "Name": "Caméra 42", "Model": "W110", "Active": "True"}).status_code == 201
    return Registered(bws=bws, user_uuid=user_uuid, serial=SERIAL)


TRIGGER_ON = dt.datetime(2026, 11, 20, 21, 30, 0, tzinfo=dt.timezone.utc)


def open_recording(reg: Registered, *, trigger_on: dt.datetime = TRIGGER_ON, **extra) -> str:
    name = recording_container_name(reg.user_uuid, reg.serial, trigger_on)
    metadata = {
        "ContainerName": name, "BWCSerialNumber": reg.serial, "SCUSerialNumber": "ACCC8E000001",
        "FirmwareVersion": "11.2.5", "UserID": reg.user_uuid, "TriggerOn": "Button",
        "TriggerOnTime": epoch(trigger_on), "TriggerOnTimeISO": iso(trigger_on),
        "TriggerOnLocation": "+45.564600+005.917800+5+" + epoch(trigger_on),
        "StartTime": epoch(trigger_on - dt.timedelta(seconds=30)),
        "StartTimeISO": iso(trigger_on - dt.timedelta(seconds=30)),
        "TimeZone": "Europe/Paris", "BWCModel": "W110", "Status": "Transferring", **extra,
    }
    response = reg.bws.put_container(name, metadata)
    assert response.status_code == 201, response.text
    return name


def clip_metadata(start: dt.datetime, seconds: float) -> dict:
    stop = start + dt.timedelta(seconds=seconds)
    return {"StartTime": epoch(start), "StartTimeISO": iso(start), "StopTime": epoch(stop),
            "StopTimeISO": iso(stop), "ContainerType": "mp4"}


def upload_clip(reg: Registered, container: str, data: bytes, start: dt.datetime, seconds: float = 3,
                recording_id: str = "4711"):
    name = clip_name(start, recording_id)
    return name, reg.bws.put_object(f"{container}/{name}", data, clip_metadata(start, seconds))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
