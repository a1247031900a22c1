"""The command line (ARCHITECTURE.md §6), through call_command as an operator would run it.

One test runs real `manage.py` processes on their own SQLite database, to check what a script
reading the output of `adduser` gets.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Organisation, User
from audit.models import CustodyEvent
from devices.models import Camera, CameraAssignment, OffloadItem, OffloadSession
from evidence.models import Recording

REPO = Path(__file__).resolve().parent.parent


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` with the SHA-256 of its bytes (or its link target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "dir"
    return found


# --- addorg ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_addorg_creates_the_organisation_with_its_retention():
    output = run("addorg", "annecy", "Police municipale d'Annecy", "--retention", "P31D")

    org = Organisation.objects.get(slug="annecy")
    assert org.name == "Police municipale d'Annecy"
    assert org.retention == "P31D"
    assert "annecy" in output


@pytest.mark.django_db
def test_addorg_defaults_to_one_month_of_retention():
    run("addorg", "annecy", "Police municipale d'Annecy")

    assert Organisation.objects.get(slug="annecy").retention == "P1M"


@pytest.mark.django_db
def test_addorg_logs_the_creation_in_the_custody_log():
    run("addorg", "annecy", "Police municipale d'Annecy")

    org = Organisation.objects.get(slug="annecy")
    event = CustodyEvent.objects.get(action="organisation.created")
    assert event.organisation == org and event.actor_label == "system:cli"


@pytest.mark.django_db
@pytest.mark.parametrize("retention", ["one month", "P1X", "30", "P0D", "PT0S", ""])
def test_addorg_refuses_an_invalid_retention_with_a_clear_message(retention):
    with pytest.raises(CommandError, match="retention period"):
        run("addorg", "annecy", "Police municipale d'Annecy", "--retention", retention)

    assert not Organisation.objects.filter(slug="annecy").exists()


@pytest.mark.django_db
def test_addorg_refuses_a_negative_retention():
    with pytest.raises(CommandError, match="retention"):
        run("addorg", "annecy", "Police municipale d'Annecy", "--retention=-P1M")


@pytest.mark.django_db
def test_addorg_refuses_a_duplicate_slug_with_a_clear_message(org):
    with pytest.raises(CommandError, match="'chambery' already exists"):
        run("addorg", "chambery", "Une autre police")

    assert Organisation.objects.get(slug="chambery").name == "Police municipale de Chambéry"


# --- adduser ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_adduser_refuses_an_unknown_organisation_and_says_how_to_create_it():
    with pytest.raises(CommandError, match="no organisation 'nowhere'.*addorg"):
        run("adduser", "agent.x", "--org", "nowhere", "--role", "officer")

    assert not User.objects.filter(username="agent.x").exists()


@pytest.mark.django_db
def test_adduser_refuses_an_unknown_role(org):
    with pytest.raises(CommandError, match="role"):
        run("adduser", "agent.x", "--org", "chambery", "--role", "sheriff")


@pytest.mark.django_db
def test_adduser_prints_the_users_api_token_on_its_last_line(org):
    output = run("adduser", "agent.petit", "--org", "chambery", "--role", "officer", "--matricule", "M077")

    user = User.objects.get(username="agent.petit")
    assert output.splitlines()[-1] == Token.objects.get(user=user).key
    assert (user.organisation, user.role, user.matricule) == (org, "officer", "M077")


@pytest.mark.django_db
def test_the_token_printed_by_adduser_authenticates_against_the_api(org):
    token = run("adduser", "chef.roux", "--org", "chambery", "--role", "supervisor").splitlines()[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    assert client.get("/api/recordings/").status_code == 200


@pytest.mark.django_db
def test_adduser_logs_the_role_grant_in_the_custody_log(org):
    run("adduser", "agent.petit", "--org", "chambery", "--role", "supervisor", "--matricule", "S077")

    user = User.objects.get(username="agent.petit")
    event = CustodyEvent.objects.get(action="role.granted", subject_id=str(user.pk))
    assert event.organisation == org
    assert event.actor_label == "system:cli"
    assert event.details["role"] == "supervisor"
    assert event.details["username"] == "agent.petit"


@pytest.mark.django_db
def test_adduser_with_a_password_lets_the_user_log_in(org, client):
    run("adduser", "agent.petit", "--org", "chambery", "--role", "officer", "--password", "motdepasse-long-2026")

    from django.http import HttpRequest

    # django-axes needs the request that carries the login (test client logins have none).
    assert client.login(request=HttpRequest(), username="agent.petit", password="motdepasse-long-2026")


@pytest.mark.django_db
def test_adduser_without_a_password_creates_a_user_who_cannot_log_in_with_one(org):
    run("adduser", "agent.petit", "--org", "chambery", "--role", "officer")

    assert not User.objects.get(username="agent.petit").has_usable_password()


@pytest.mark.django_db
def test_adduser_refuses_a_duplicate_username_with_a_clear_message(officer):
    with pytest.raises(CommandError, match="already exists"):
        run("adduser", "agent.martin", "--org", "chambery", "--role", "officer")

    assert CustodyEvent.objects.filter(action="role.granted").count() == 1


@pytest.mark.django_db
def test_adduser_refuses_a_matricule_already_used_in_the_organisation(officer):
    with pytest.raises(CommandError, match="M042"):
        run("adduser", "agent.autre", "--org", "chambery", "--role", "officer", "--matricule", "M042")

    assert not User.objects.filter(username="agent.autre").exists()


def test_adduser_in_a_real_process_prints_a_token_that_is_stored_in_its_database(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "S3_", "TEMOIN_"))}
    env["TEMOIN_DATA_DIR"] = str(tmp_path / "data")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"

    def manage(*args) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "manage.py", *args], check=False, cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    manage("migrate", "--noinput")
    manage("addorg", "annecy", "Police municipale d'Annecy")
    out = manage("adduser", "agent.petit", "--org", "annecy", "--role", "officer", "--matricule", "M077").stdout

    token = out.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{40}", token), out
    check = manage("shell", "-c", (
        "from rest_framework.authtoken.models import Token; import json; "
        f"t = Token.objects.select_related('user').get(key={token!r}); "
        "print(json.dumps([t.user.username, t.user.role, t.user.organisation.slug]))"
    ))
    assert json.loads(check.stdout.strip().splitlines()[-1]) == ["agent.petit", "officer", "annecy"]
    assert (tmp_path / "data" / "temoin.sqlite3").exists()


# --- addcamera -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_addcamera_registers_the_camera_in_the_organisation(org):
    run("addcamera", "BWC-0100", "--org", "chambery", "--model", "Demo X")

    camera = Camera.objects.get(serial="BWC-0100")
    assert (camera.organisation, camera.model) == (org, "Demo X")
    assert not camera.assignments.exists()
    assert CustodyEvent.objects.filter(action="camera.registered", subject_id=str(camera.pk)).exists()


@pytest.mark.django_db
def test_addcamera_with_an_officer_issues_the_camera_to_that_officer(officer):
    run("addcamera", "BWC-0100", "--org", "chambery", "--officer", "M042")

    assignment = CameraAssignment.objects.get(camera__serial="BWC-0100")
    assert assignment.officer == officer
    assert assignment.ends_at is None
    assert CustodyEvent.objects.filter(action="camera.assigned").count() == 1


@pytest.mark.django_db
def test_addcamera_refuses_an_unknown_officer_and_registers_nothing(org):
    with pytest.raises(CommandError, match="no officer with matricule 'M999'"):
        run("addcamera", "BWC-0100", "--org", "chambery", "--officer", "M999")

    assert not Camera.objects.filter(serial="BWC-0100").exists()


@pytest.mark.django_db
def test_addcamera_refuses_an_officer_of_another_organisation(officer, db):
    run("addorg", "annecy", "Police municipale d'Annecy")

    with pytest.raises(CommandError, match="M042"):
        run("addcamera", "BWC-0100", "--org", "annecy", "--officer", "M042")

    assert not Camera.objects.filter(serial="BWC-0100").exists()


@pytest.mark.django_db
def test_addcamera_refuses_an_unknown_organisation(db):
    with pytest.raises(CommandError, match="no organisation 'nowhere'"):
        run("addcamera", "BWC-0100", "--org", "nowhere")


@pytest.mark.django_db
def test_addcamera_refuses_a_serial_already_registered(camera):
    with pytest.raises(CommandError, match="'BWC-0042' is already registered"):
        run("addcamera", "BWC-0042", "--org", "chambery")

    assert Camera.objects.filter(serial="BWC-0042").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("serial", ["BWC/0042", "../BWC", ".BWC", "_BWC", "BWC 0042", "", "B" * 65, "BWC\x000042"])
def test_addcamera_refuses_an_invalid_serial_with_a_clear_message(org, serial):
    with pytest.raises(CommandError, match="invalid serial"):
        run("addcamera", serial, "--org", "chambery")

    assert not Camera.objects.exists()


@pytest.mark.django_db
def test_addcamera_refuses_a_serial_with_a_trailing_newline(org):
    with pytest.raises(CommandError, match="invalid serial"):
        run("addcamera", "BWC-0100\n", "--org", "chambery")


# --- offload ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_offload_of_an_unregistered_camera_names_the_serial_and_touches_nothing(org, local_store, make_volume):
    volume = make_volume(
        "BWC-7777",
        {"DCIM/100/CLIP0001.MP4": b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096), "README.TXT": b"hello"},
        {"DCIM/100/CLIP0001.json": {"trigger_reason": "incident"}},
    )
    before = snapshot(volume)

    with pytest.raises(CommandError, match="BWC-7777") as refused:
        run("offload", str(volume), "--no-progress", "--dock", "dock1")

    assert "not registered" in str(refused.value)
    assert snapshot(volume) == before
    assert not Recording.objects.exists()
    assert not OffloadSession.objects.exists()
    assert not OffloadItem.objects.exists()
    assert not CustodyEvent.objects.filter(action__startswith="offload.").exists()
    assert not any(local_store.objects.rglob("*"))


@pytest.mark.django_db
def test_offload_of_a_directory_without_device_file_says_it_is_not_a_camera_volume(local_store, tmp_path):
    volume = tmp_path / "usb-stick"
    (volume / "DCIM").mkdir(parents=True)
    (volume / "DCIM" / "CLIP0001.MP4").write_bytes(b"clip")
    before = snapshot(volume)

    with pytest.raises(CommandError, match="no DEVICE.json; this is not a camera volume"):
        run("offload", str(volume), "--no-progress")

    assert snapshot(volume) == before
    assert not OffloadSession.objects.exists()


@pytest.mark.django_db
def test_offload_of_a_path_that_is_not_a_directory_says_so(local_store, tmp_path):
    with pytest.raises(CommandError, match="not a directory"):
        run("offload", str(tmp_path / "not-mounted"), "--no-progress")


@pytest.mark.django_db
def test_offload_of_a_deactivated_camera_touches_nothing(camera, local_store, make_volume):
    Camera.objects.filter(pk=camera.pk).update(active=False)
    volume = make_volume("BWC-0042", {"DCIM/100/CLIP0001.MP4": os.urandom(2048)})
    before = snapshot(volume)

    with pytest.raises(CommandError, match="deactivated"):
        run("offload", str(volume), "--no-progress")

    assert snapshot(volume) == before
    assert not OffloadSession.objects.exists()


@pytest.mark.django_db
def test_offload_of_a_volume_with_a_deeply_nested_device_file_is_refused_with_a_clear_error(local_store, tmp_path):
    volume = tmp_path / "vol"
    volume.mkdir()
    (volume / "DEVICE.json").write_text("[" * 60_000)

    with pytest.raises(CommandError, match="DEVICE.json"):
        run("offload", str(volume), "--no-progress")
