"""The technical administrator manages accounts; every change is in the custody log (CSI R241-12)."""
import pytest
from django.test import Client

from accounts.models import User
from audit.models import CustodyEvent
from tests.auth import sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user):
    admin = make_user("root", role="admin")
    return admin, sign_in(Client(), admin)


def test_the_administrator_creates_an_account_with_a_checked_password(admin_client, org):
    admin, client = admin_client
    client.post("/utilisateurs/", {"action": "create", "username": "agent.neuf", "role": "officer",
                                   "password": "azerty"})
    assert not User.objects.filter(username="agent.neuf").exists()  # too short, too common

    client.post("/utilisateurs/", {"action": "create", "username": "agent.neuf", "role": "officer",
                                   "matricule": "M100", "password": "cheval-agrafe-2026-lune"})
    user = User.objects.get(username="agent.neuf")
    assert user.organisation == org and user.role == "officer"
    event = CustodyEvent.objects.filter(action="role.granted").order_by("-seq").first()
    assert event.actor == admin and event.details["username"] == "agent.neuf"


def test_role_change_and_deactivation_are_logged_and_end_the_sessions(admin_client, officer):
    admin, client = admin_client
    officer_client = sign_in(Client(), officer)
    assert officer_client.get("/").status_code == 200

    client.post("/utilisateurs/", {"action": "role", "user": officer.pk, "role": "supervisor"})
    officer.refresh_from_db()
    assert officer.role == "supervisor"
    assert officer_client.get("/").status_code == 302  # signed out: logs in again, with a second factor
    assert CustodyEvent.objects.get(action="role.changed").details == {
        "username": officer.username, "from": "officer", "to": "supervisor"}

    client.post("/utilisateurs/", {"action": "deactivate", "user": officer.pk, "motif": "mutation"})
    officer.refresh_from_db()
    assert not officer.is_active
    assert CustodyEvent.objects.get(action="role.revoked").motif == "mutation"


def test_the_administrator_resets_a_lost_second_factor(admin_client, make_user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    admin, client = admin_client
    chef = make_user("chef", role="supervisor")
    sign_in(Client(), chef)
    assert TOTPDevice.objects.filter(user=chef).exists()
    client.post("/utilisateurs/", {"action": "reset_totp", "user": chef.pk})
    assert not TOTPDevice.objects.filter(user=chef).exists()
    assert CustodyEvent.objects.filter(action="access.second_factor_reset").exists()


def test_other_roles_and_other_organisations_cannot_manage_accounts(make_user, officer):
    from accounts.services import organisation_create

    chef = make_user("chef", role="supervisor")
    assert sign_in(Client(), chef).get("/utilisateurs/").status_code == 403
    aix_admin = make_user("aix.root", role="admin", organisation=organisation_create(slug="aix", name="Aix"))
    response = sign_in(Client(), aix_admin).post("/utilisateurs/", {"action": "deactivate", "user": officer.pk})
    assert response.status_code == 404
    officer.refresh_from_db()
    assert officer.is_active
