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

    client.post("/utilisateurs/", {"action": "deactivate", "user": officer.pk, "motif": "mutation", "confirm": "1"})
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
    assert api.get("/api/recordings/").status_code == 403  # approved, but the password is still the admin's
    user.set_password("lampadaire-verger-9341")
    user.must_change_password = False
    user.save()
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


# --- Account lifecycle (issue 20) -------------------------------------------------------------

def test_deactivation_asks_for_confirmation_first(admin_client, officer):
    admin, client = admin_client
    response = client.post("/utilisateurs/", {"action": "deactivate", "user": officer.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Désactiver le compte {officer.username}" in page and 'name="confirm" value="1"' in page
    officer.refresh_from_db()
    assert officer.is_active  # nothing happened yet
    assert not CustodyEvent.objects.filter(action="role.revoked").exists()


def test_a_deactivation_is_undone_by_reactivation_both_logged(admin_client, officer):
    from rest_framework.authtoken.models import Token

    admin, client = admin_client
    client.post("/utilisateurs/", {"action": "deactivate", "user": officer.pk, "confirm": "1", "motif": "départ"})
    officer.refresh_from_db()
    assert not officer.is_active and not Token.objects.filter(user=officer).exists()
    assert "Réactiver" in client.get("/utilisateurs/").content.decode()

    client.post("/utilisateurs/", {"action": "reactivate", "user": officer.pk, "motif": "retour de mutation"})
    officer.refresh_from_db()
    assert officer.is_active
    assert Token.objects.filter(user=officer).exists()  # a new API token
    event = CustodyEvent.objects.get(action="role.reinstated")
    assert (event.actor, event.motif, event.details["username"]) == (admin, "retour de mutation", officer.username)
    assert sign_in(Client(), officer).get("/").status_code == 200


def test_reactivation_does_not_open_an_account_waiting_for_the_mayor(admin_client):
    admin, client = admin_client
    client.post("/utilisateurs/", {"action": "create", "username": "juriste", "role": "legal",
                                   "password": "cheval-agrafe-2026-lune"})
    juriste = User.objects.get(username="juriste")
    assert not juriste.is_active and juriste.pending_role == "legal"
    client.post("/utilisateurs/", {"action": "reactivate", "user": juriste.pk})
    juriste.refresh_from_db()
    assert not juriste.is_active  # four eyes (CSI R241-12): only the mayor's approval opens it
    assert not CustodyEvent.objects.filter(action="role.reinstated").exists()


def test_the_account_has_an_email_address_checked_and_logged(admin_client, officer):
    admin, client = admin_client
    client.post("/utilisateurs/", {"action": "create", "username": "agent.mail", "role": "officer",
                                   "email": "agent.mail@mairie-chambery.fr", "password": "cheval-agrafe-2026-lune"})
    assert User.objects.get(username="agent.mail").email == "agent.mail@mairie-chambery.fr"

    client.post("/utilisateurs/", {"action": "email", "user": officer.pk, "email": "pas une adresse"})
    officer.refresh_from_db()
    assert officer.email == ""
    client.post("/utilisateurs/", {"action": "email", "user": officer.pk, "email": "m.martin@mairie-chambery.fr"})
    officer.refresh_from_db()
    assert officer.email == "m.martin@mairie-chambery.fr"
    event = CustodyEvent.objects.get(action="account.email_changed")
    assert event.details == {"username": officer.username, "from": None, "to": "m.martin@mairie-chambery.fr"}
    assert 'value="m.martin@mairie-chambery.fr"' in client.get("/utilisateurs/").content.decode()


def test_every_user_changes_their_own_password(officer):
    client = sign_in(Client(), officer)
    assert client.get("/mon-compte/mot-de-passe/").status_code == 200
    wrong = client.post("/mon-compte/mot-de-passe/", {"current": "pas le bon", "new": "lampadaire-verger-9341",
                                                      "confirm": "lampadaire-verger-9341"})
    assert wrong.status_code == 400 and "mot de passe actuel est incorrect" in wrong.content.decode()
    weak = client.post("/mon-compte/mot-de-passe/", {"current": "Témoin-demo-2026", "new": "azerty",
                                                     "confirm": "azerty"})
    assert weak.status_code == 400
    officer.refresh_from_db()
    assert officer.check_password("Témoin-demo-2026")

    done = client.post("/mon-compte/mot-de-passe/", {"current": "Témoin-demo-2026", "new": "lampadaire-verger-9341",
                                                     "confirm": "lampadaire-verger-9341"})
    assert done.status_code == 302
    officer.refresh_from_db()
    assert officer.check_password("lampadaire-verger-9341")
    assert client.get("/").status_code == 200  # this session stays signed in
    assert CustodyEvent.objects.get(action="access.password_changed").actor == officer


def test_a_temporary_password_must_be_changed_at_the_next_sign_in(admin_client, officer):
    admin, client = admin_client
    officer_session = sign_in(Client(), officer)
    client.post("/utilisateurs/", {"action": "reset_password", "user": officer.pk,
                                   "password": "provisoire-citadelle-77"})
    officer.refresh_from_db()
    assert officer.must_change_password and officer.check_password("provisoire-citadelle-77")
    assert CustodyEvent.objects.get(action="access.password_reset").actor == admin
    assert officer_session.get("/").status_code == 302  # the open session ended

    agent = Client()
    assert agent.post("/connexion/", {"username": officer.username, "password": "provisoire-citadelle-77"}
                      ).status_code == 302
    for page in ("/", "/revue/", "/utilisateurs/"):
        response = agent.get(page)
        assert response.status_code == 302 and response["Location"].startswith("/mon-compte/mot-de-passe/")
    assert agent.get("/api/recordings/").status_code == 403
    page = agent.get("/mon-compte/mot-de-passe/").content.decode()
    assert "Votre mot de passe est provisoire" in page

    agent.post("/mon-compte/mot-de-passe/", {"current": "provisoire-citadelle-77", "new": "lampadaire-verger-9341",
                                             "confirm": "lampadaire-verger-9341"})
    officer.refresh_from_db()
    assert not officer.must_change_password
    assert agent.get("/").status_code == 200
    assert CustodyEvent.objects.get(action="access.password_changed").details["temporary_replaced"] is True


def test_an_api_token_opens_nothing_while_the_password_is_temporary(admin_client, officer):
    from rest_framework.authtoken.models import Token

    admin, client = admin_client
    api = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=officer)[0].key}")
    assert api.get("/api/recordings/").status_code == 200
    client.post("/utilisateurs/", {"action": "reset_password", "user": officer.pk,
                                   "password": "provisoire-citadelle-77"})
    refused = api.get("/api/recordings/")
    assert refused.status_code == 403 and "Mot de passe provisoire" in refused.json()["detail"]
    assert api.post("/api/recordings/1/consultations/", {"motif": "x"}).status_code == 403

    agent = Client()
    agent.post("/connexion/", {"username": officer.username, "password": "provisoire-citadelle-77"})
    agent.post("/mon-compte/mot-de-passe/", {"current": "provisoire-citadelle-77", "new": "lampadaire-verger-9341",
                                             "confirm": "lampadaire-verger-9341"})
    assert api.get("/api/recordings/").status_code == 200  # the same token, once the password is the user's


def test_an_account_created_by_the_administrator_starts_with_a_temporary_password(admin_client):
    admin, client = admin_client
    client.post("/utilisateurs/", {"action": "create", "username": "agent.neuf", "role": "officer",
                                   "password": "cheval-agrafe-2026-lune"})
    agent = Client()
    agent.post("/connexion/", {"username": "agent.neuf", "password": "cheval-agrafe-2026-lune"})
    assert agent.get("/").headers["Location"].startswith("/mon-compte/mot-de-passe/")


def test_only_the_administrator_of_the_organisation_resets_a_password(make_user, officer):
    from accounts.services import organisation_create

    aix_admin = make_user("aix.root", role="admin", organisation=organisation_create(slug="aix", name="Aix"))
    response = sign_in(Client(), aix_admin).post("/utilisateurs/", {"action": "reset_password", "user": officer.pk,
                                                                    "password": "provisoire-citadelle-77"})
    assert response.status_code == 404
    officer.refresh_from_db()
    assert not officer.must_change_password and officer.check_password("Témoin-demo-2026")
