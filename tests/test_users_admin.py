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


def test_role_change_and_deactivation_are_logged_and_end_the_sessions(admin_client, officer, make_user):
    admin, client = admin_client
    officer_client = sign_in(Client(), officer)
    assert officer_client.get("/").status_code == 200

    client.post("/utilisateurs/", {"action": "role", "user": officer.pk, "role": "supervisor"})
    officer.refresh_from_db()
    assert (officer.role, officer.pending_role) == ("officer", "supervisor")  # waits for the mayor
    mayor = make_user("maire", role="mayor")
    sign_in(Client(), mayor).post("/utilisateurs/habilitations/", {"user": officer.pk, "decision": "approve"})
    officer.refresh_from_db()
    assert (officer.role, officer.pending_role) == ("supervisor", "")
    assert officer_client.get("/").status_code == 302  # signed out: logs in again, with a second factor
    assert CustodyEvent.objects.get(action="role.approved").details == {
        "username": officer.username, "from": "officer", "to": "supervisor", "requested_by": admin.username}
    client.post("/utilisateurs/", {"action": "role", "user": officer.pk, "role": "officer"})
    officer.refresh_from_db()
    assert officer.role == "officer"  # a role that gives less needs no approval
    assert CustodyEvent.objects.get(action="role.changed").details == {
        "username": officer.username, "from": "supervisor", "to": "officer"}

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


# --- Four eyes on privileged roles (issue 15, CSI R241-12) ---------------------------------------

@pytest.mark.parametrize("role", ["supervisor", "legal", "dpo", "mayor"])
def test_a_privileged_account_the_administrator_creates_alone_sees_nothing_until_the_mayor_approves(
        admin_client, make_user, officer, role):
    from rest_framework.authtoken.models import Token

    from evidence.models import Recording  # noqa: F401 - the list below is the evidence API

    admin, client = admin_client
    mayor = make_user("maire", role="mayor") if role != "mayor" else make_user("maire.actuel", role="mayor")
    client.post("/utilisateurs/", {"action": "create", "username": "nouveau.compte", "role": role,
                                   "password": "cheval-agrafe-2026-lune"})
    user = User.objects.get(username="nouveau.compte")
    assert "en attente de l'approbation du maire" in client.get("/utilisateurs/").content.decode()
    assert (user.is_active, user.pending_role, user.pending_role_by) == (False, role, admin)
    token = Token.objects.get(user=user).key
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/recordings/").status_code == 401  # the pending account sees nothing
    requested = CustodyEvent.objects.get(action="role.requested")
    assert requested.actor == admin and requested.details["pending_approval"] is True
    assert not CustodyEvent.objects.filter(action="role.granted", subject_id=str(user.pk)).exists()

    mayor_client = sign_in(Client(), mayor)
    page = mayor_client.get("/utilisateurs/habilitations/")
    assert page.status_code == 200 and "nouveau.compte" in page.content.decode()
    mayor_client.post("/utilisateurs/habilitations/", {"user": user.pk, "decision": "approve", "motif": "arrêté 12"})

    user.refresh_from_db()
    assert (user.is_active, user.role, user.pending_role) == (True, role, "")
    assert api.get("/api/recordings/").status_code == 200
    approved = CustodyEvent.objects.get(action="role.approved")
    assert approved.actor == mayor and approved.motif == "arrêté 12" and approved.details["to"] == role


def test_the_administrator_cannot_approve_and_the_mayor_cannot_approve_their_own_request(admin_client, make_user,
                                                                                         officer):
    from accounts import services

    admin, client = admin_client
    mayor = make_user("maire", role="mayor")
    client.post("/utilisateurs/", {"action": "role", "user": officer.pk, "role": "legal"})
    officer.refresh_from_db()

    with pytest.raises(services.RoleApprovalRefused, match="seul le maire"):
        services.user_role_decide(user=officer, by=admin, approve=True)
    assert client.get("/utilisateurs/habilitations/").status_code == 403
    with pytest.raises(services.RoleApprovalRefused, match="soi-même"):
        services.user_role_decide(user=mayor, by=mayor, approve=True)  # nothing pending for the mayor: refused too
    refused = CustodyEvent.objects.filter(action="role.approval_refused").order_by("seq")
    assert [e.actor for e in refused] == [admin, mayor]
    officer.refresh_from_db()
    assert (officer.role, officer.pending_role) == ("officer", "legal")

    sign_in(Client(), mayor).post("/utilisateurs/habilitations/", {"user": officer.pk, "decision": "refuse",
                                                                   "motif": "pas de besoin"})
    officer.refresh_from_db()
    assert (officer.role, officer.pending_role, officer.is_active) == ("officer", "", True)
    assert CustodyEvent.objects.get(action="role.refused").motif == "pas de besoin"


def test_a_mayor_of_another_organisation_sees_no_request(admin_client, make_user, officer):
    from accounts.services import organisation_create

    admin, client = admin_client
    client.post("/utilisateurs/", {"action": "role", "user": officer.pk, "role": "dpo"})
    other = organisation_create(slug="aix", name="Police municipale d'Aix-les-Bains")
    aix_mayor = sign_in(Client(), make_user("maire.aix", role="mayor", organisation=other))
    assert "agent.martin" not in aix_mayor.get("/utilisateurs/habilitations/").content.decode()
    assert aix_mayor.post("/utilisateurs/habilitations/", {"user": officer.pk, "decision": "approve"}).status_code == 404
    officer.refresh_from_db()
    assert officer.pending_role == "dpo"
