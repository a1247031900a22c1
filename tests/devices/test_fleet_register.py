"""The fleet register from the interface (issue 20): cameras and docks registered, edited, retired and
brought back by the administrator or the head of service, each change in the custody log."""
import html

import pytest
from django.urls import reverse

from audit.models import CustodyEvent
from devices import registry, selectors
from devices.models import Camera, Dock, DockSlot
from evidence.ingest.services import OffloadRefused, offload_session_start

from ..auth import sign_in
from ..dashboard.fixtures import make_camera, other_org  # noqa: F401  (fixtures)


@pytest.fixture
def admin(make_user):
    return make_user("admin.tech", role="admin")


def test_the_administrator_registers_a_camera_and_the_custody_log_says_who(client, admin):
    sign_in(client, admin)

    response = client.post(reverse("camera-create"), {"serial": "BWC-0900", "model": "Axis W110", "firmware": "11.2"},
                           follow=True)

    page = response.content.decode()
    assert "Caméra BWC-0900 enregistrée." in page and "Axis W110" in page
    camera = Camera.objects.get(serial="BWC-0900")
    assert (camera.organisation, camera.model, camera.firmware, camera.active) == (admin.organisation, "Axis W110",
                                                                                     "11.2", True)
    event = CustodyEvent.objects.get(action="camera.registered", subject_id=str(camera.pk))
    assert event.actor == admin and event.organisation == admin.organisation
    assert event.details == {"serial": "BWC-0900", "model": "Axis W110", "firmware": "11.2"}


def test_a_refused_serial_keeps_what_was_typed_and_writes_nothing(client, admin, make_camera):  # noqa: F811
    make_camera("BWC-0901")
    sign_in(client, admin)
    events = CustodyEvent.objects.count()

    bad = client.post(reverse("camera-create"), {"serial": "BWC 0902/x", "model": "Modèle tapé", "firmware": "7.7"})
    dup = client.post(reverse("camera-create"), {"serial": "BWC-0901", "model": "Autre modèle", "firmware": ""})

    assert bad.status_code == 400 and dup.status_code == 400
    bad_page, dup_page = html.unescape(bad.content.decode()), html.unescape(dup.content.decode())
    assert "Numéro de série : lettres, chiffres" in bad_page
    assert 'value="BWC 0902/x"' in bad_page and 'value="Modèle tapé"' in bad_page and 'value="7.7"' in bad_page
    assert "La caméra BWC-0901 est déjà enregistrée dans votre organisation." in dup_page
    assert 'value="Autre modèle"' in dup_page
    assert Camera.objects.count() == 1 and CustodyEvent.objects.count() == events


def test_the_same_serial_may_be_registered_by_another_commune_without_learning_of_it(client, make_user, make_camera,  # noqa: F811
                                                                                     other_org):  # noqa: F811
    make_camera("BWC-0903", organisation=other_org)
    sign_in(client, make_user("chef", role="supervisor"))

    response = client.post(reverse("camera-create"), {"serial": "BWC-0903", "model": ""}, follow=True)

    assert "Caméra BWC-0903 enregistrée." in response.content.decode()
    assert Camera.objects.filter(serial="BWC-0903").count() == 2


def test_editing_a_camera_changes_model_and_firmware_but_never_the_serial(client, admin, make_camera):  # noqa: F811
    cam = make_camera("BWC-0904", model="Ancien", firmware="1.0")
    sign_in(client, admin)

    client.post(reverse("camera-edit", args=[cam.pk]), {"serial": "HACKED", "model": "Nouveau", "firmware": "2.0"})

    cam.refresh_from_db()
    assert (cam.serial, cam.model, cam.firmware) == ("BWC-0904", "Nouveau", "2.0")
    event = CustodyEvent.objects.get(action="camera.updated")
    assert event.details["before"] == {"model": "Ancien", "firmware": "1.0"}
    assert event.details["after"] == {"model": "Nouveau", "firmware": "2.0"}


def test_retiring_a_camera_asks_for_confirmation_and_a_reason(client, admin, make_camera):  # noqa: F811
    cam = make_camera("BWC-0905")
    sign_in(client, admin)

    confirm = client.get(reverse("camera-retire", args=[cam.pk]))
    assert confirm.status_code == 200 and "Retirer du service la caméra BWC-0905 ?" in confirm.content.decode()
    cam.refresh_from_db()
    assert cam.active  # a GET changes nothing

    no_reason = client.post(reverse("camera-retire", args=[cam.pk]), {"reason": "   "})
    assert no_reason.status_code == 400
    cam.refresh_from_db()
    assert cam.active and not CustodyEvent.objects.filter(action="camera.retired").exists()

    done = client.post(reverse("camera-retire", args=[cam.pk]), {"reason": "Écran cassé"}, follow=True)
    assert "Caméra BWC-0905 retirée du service." in done.content.decode()
    cam.refresh_from_db()
    assert not cam.active
    assert CustodyEvent.objects.get(action="camera.retired").details == {"serial": "BWC-0905", "reason": "Écran cassé"}

    client.post(reverse("camera-reinstate", args=[cam.pk]))
    cam.refresh_from_db()
    assert cam.active and CustodyEvent.objects.filter(action="camera.reinstated", actor=admin).count() == 1


def test_a_camera_issued_to_an_agent_is_checked_in_before_it_is_retired(make_user, make_camera):  # noqa: F811
    agent = make_user("agent.a", matricule="A1")
    cam = make_camera("BWC-0906", officer=agent)

    with pytest.raises(registry.FleetError, match="enregistrez d'abord son retour"):
        registry.camera_retire(camera=cam, by=make_user("chef", role="supervisor"), reason="Perdue")
    cam.refresh_from_db()
    assert cam.active


def test_a_retired_camera_can_neither_be_issued_nor_offloaded(client, make_user, make_camera, make_volume):  # noqa: F811
    chef = make_user("chef", role="supervisor")
    agent = make_user("agent.a", matricule="A1")
    cam = make_camera("BWC-0907")
    registry.camera_retire(camera=cam, by=chef, reason="Volée")
    sign_in(client, chef)

    response = client.post(reverse("camera-check-out", args=[cam.pk]), {"officer": agent.pk}, follow=True)

    assert "La caméra BWC-0907 est désactivée." in response.content.decode()
    with pytest.raises(OffloadRefused, match="deactivated"):
        offload_session_start(volume=make_volume("BWC-0907", {}))


def test_an_administrator_of_one_commune_never_sees_nor_changes_another_communes_devices(
        client, make_user, make_camera, other_org):  # noqa: F811
    theirs = make_camera("BWC-ANNECY-1", organisation=other_org, model="Modèle d'Annecy")
    their_admin = make_user("admin.annecy", role="admin", organisation=other_org)
    their_dock = registry.dock_create(by=their_admin, name="poste-annecy", label="Poste d'Annecy", slots="a1")
    sign_in(client, make_user("admin.chambery", role="admin"))
    events = CustodyEvent.objects.count()

    page = html.unescape(client.get(reverse("fleet")).content.decode())
    assert "BWC-ANNECY-1" not in page and "Poste d'Annecy" not in page and "poste-annecy" not in page

    for url, data in ((reverse("camera-edit", args=[theirs.pk]), {"model": "x"}),
                      (reverse("camera-retire", args=[theirs.pk]), {"reason": "x"}),
                      (reverse("camera-reinstate", args=[theirs.pk]), {}),
                      (reverse("dock-edit", args=[their_dock.pk]), {"label": "x"}),
                      (reverse("dock-retire", args=[their_dock.pk]), {"reason": "x"}),
                      (reverse("dock-reinstate", args=[their_dock.pk]), {})):
        assert client.get(url).status_code in (404, 405), url
        assert client.post(url, data).status_code == 404, url
    theirs.refresh_from_db()
    their_dock.refresh_from_db()
    assert (theirs.model, theirs.active, their_dock.label, their_dock.active) == ("Modèle d'Annecy", True,
                                                                                  "Poste d'Annecy", True)
    assert CustodyEvent.objects.count() == events


def test_the_services_refuse_an_actor_of_another_organisation(make_user, make_camera, other_org):  # noqa: F811
    theirs = make_camera("BWC-ANNECY-2", organisation=other_org)
    with pytest.raises(registry.FleetError):
        registry.camera_update(camera=theirs, by=make_user("admin", role="admin"), model="x", firmware="")


@pytest.mark.parametrize("role", ["officer", "legal", "dpo", "mayor"])
def test_other_roles_can_neither_open_the_register_forms_nor_change_a_device(client, make_user, make_camera,  # noqa: F811
                                                                             role):
    admin = make_user("admin.tech", role="admin")
    cam = make_camera("BWC-0930")
    dock = registry.dock_create(by=admin, name="poste-x", label="Poste X")
    retired_cam = registry.camera_retire(camera=make_camera("BWC-0931"), by=admin, reason="Panne")
    retired_dock = registry.dock_retire(dock=registry.dock_create(by=admin, name="poste-y"), by=admin, reason="Fermé")
    sign_in(client, make_user(f"u.{role}", role=role, matricule="X1" if role == "officer" else ""))
    events = CustodyEvent.objects.count()

    for url, data in ((reverse("camera-create"), {"serial": "BWC-0932"}),
                      (reverse("dock-create"), {"name": "poste-z"}),
                      (reverse("camera-edit", args=[cam.pk]), {"model": "x"}),
                      (reverse("camera-retire", args=[cam.pk]), {"reason": "x"}),
                      (reverse("camera-reinstate", args=[retired_cam.pk]), {}),
                      (reverse("dock-edit", args=[dock.pk]), {"label": "x"}),
                      (reverse("dock-retire", args=[dock.pk]), {"reason": "x"}),
                      (reverse("dock-reinstate", args=[retired_dock.pk]), {})):
        assert client.post(url, data).status_code == 403, url
    assert CustodyEvent.objects.count() == events
    assert Camera.objects.filter(active=True).count() == 1 and Dock.objects.filter(active=True).count() == 1
    assert Camera.objects.count() == 2 and Dock.objects.count() == 2


def test_a_dock_is_registered_with_its_slots_renamed_and_given_more_slots(client, admin):
    sign_in(client, admin)

    client.post(reverse("dock-create"), {"name": "poste-central", "label": "Poste central", "slots": "slot-1, slot-2"})
    dock = Dock.objects.get(name="poste-central")
    assert (dock.organisation, dock.label, dock.active) == (admin.organisation, "Poste central", True)
    assert sorted(dock.slots.values_list("name", flat=True)) == ["slot-1", "slot-2"]
    registered = CustodyEvent.objects.get(action="dock.registered")
    assert registered.details == {"name": "poste-central", "label": "Poste central", "slots": ["slot-1", "slot-2"]}

    client.post(reverse("dock-edit", args=[dock.pk]), {"label": "Poste central, RDC", "slots": "slot-2\nslot-3"})
    dock.refresh_from_db()
    assert dock.name == "poste-central" and dock.label == "Poste central, RDC"
    assert sorted(dock.slots.values_list("name", flat=True)) == ["slot-1", "slot-2", "slot-3"]
    updated = CustodyEvent.objects.get(action="dock.updated")
    assert updated.details == {"name": "poste-central", "label_before": "Poste central", "label": "Poste central, RDC",
                               "slots_added": ["slot-3"]}
    page = client.get(reverse("fleet")).content.decode()
    assert "Poste central, RDC" in page and "slot-3" in page


def test_a_taken_dock_identifier_keeps_the_form_as_typed(client, admin, make_user, other_org):  # noqa: F811
    registry.dock_create(by=make_user("admin.annecy", role="admin", organisation=other_org), name="poste-1")
    sign_in(client, admin)

    response = client.post(reverse("dock-create"), {"name": "poste-1", "label": "Mon poste", "slots": "a, b"})

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "L'identifiant « poste-1 » est déjà pris" in page and 'value="Mon poste"' in page and "a, b" in page
    assert Dock.objects.count() == 1 and DockSlot.objects.count() == 0


def test_a_retired_dock_offloads_nothing_until_it_is_brought_back(client, admin, make_camera, make_volume):  # noqa: F811
    make_camera("BWC-0908")
    dock = registry.dock_create(by=admin, name="poste-retire", slots="slot-1")
    sign_in(client, admin)

    assert client.post(reverse("dock-retire", args=[dock.pk]), {"reason": ""}).status_code == 400
    client.post(reverse("dock-retire", args=[dock.pk]), {"reason": "Déménagement du poste"})
    dock.refresh_from_db()
    assert not dock.active
    assert CustodyEvent.objects.get(action="dock.retired").details["reason"] == "Déménagement du poste"
    with pytest.raises(selectors.DockingRefused, match="retired"):
        selectors.camera_for_docking(serial="BWC-0908", dock=dock)
    with pytest.raises(OffloadRefused, match="retired"):
        offload_session_start(volume=make_volume("BWC-0908", {}), dock_name="poste-retire", slot_name="slot-1")

    client.post(reverse("dock-reinstate", args=[dock.pk]))
    dock.refresh_from_db()
    assert dock.active
    session = offload_session_start(volume=make_volume("BWC-0908", {}), dock_name="poste-retire", slot_name="slot-1")
    assert session.dock == dock and session.camera.serial == "BWC-0908"


def test_a_shared_dock_without_organisation_is_shown_but_cannot_be_changed(client, admin, make_camera):  # noqa: F811
    cam = make_camera("BWC-0909")
    offload_dock = Dock.objects.create(name="poste-partage")
    from devices.models import OffloadSession
    from django.utils import timezone
    OffloadSession.objects.create(organisation=cam.organisation, camera=cam, dock=offload_dock, volume="/v",
                                  started_at=timezone.now())
    sign_in(client, admin)

    page = client.get(reverse("fleet")).content.decode()

    assert "poste-partage" in page and reverse("dock-edit", args=[offload_dock.pk]) not in page
    assert client.post(reverse("dock-retire", args=[offload_dock.pk]), {"reason": "x"}).status_code == 404


def test_the_command_line_and_the_page_write_the_same_registration(client, admin, org):
    from django.core.management import call_command

    call_command("addcamera", "BWC-0910", "--org", org.slug, "--model", "Axis W110", "--firmware", "11.2")
    sign_in(client, admin)
    client.post(reverse("camera-create"), {"serial": "BWC-0911", "model": "Axis W110", "firmware": "11.2"})

    cli, page = (CustodyEvent.objects.get(action="camera.registered", subject_id=str(c.pk))
                 for c in Camera.objects.filter(serial__in=["BWC-0910", "BWC-0911"]).order_by("serial"))
    assert Camera.objects.get(serial="BWC-0910").firmware == "11.2"
    assert (cli.actor_label, cli.actor) == ("system:cli", None) and page.actor == admin
    assert cli.details == {"serial": "BWC-0910", "model": "Axis W110", "firmware": "11.2"}
    assert page.details == {"serial": "BWC-0911", "model": "Axis W110", "firmware": "11.2"}


def _dock_used_by(camera, name):
    from django.utils import timezone

    from devices.models import OffloadSession

    dock, _ = Dock.objects.get_or_create(name=name)  # as dockd creates it on the fly
    OffloadSession.objects.create(organisation=camera.organisation, camera=camera, dock=dock, volume="/v",
                                  started_at=timezone.now())
    return dock


def test_a_dock_dockd_created_is_bound_by_the_only_commune_that_used_it(client, admin, make_camera, other_org,  # noqa: F811
                                                                         make_volume):
    dock = _dock_used_by(make_camera("BWC-0920"), "poste-ancien")
    make_camera("BWC-0921", organisation=other_org)
    sign_in(client, admin)
    assert f"{reverse('dock-create')}?nom=poste-ancien" in client.get(reverse("fleet")).content.decode()

    client.post(reverse("dock-create"), {"name": "poste-ancien", "label": "Poste ancien", "slots": "slot-1"})

    dock.refresh_from_db()
    assert (dock.organisation, dock.label) == (admin.organisation, "Poste ancien")
    assert CustodyEvent.objects.get(action="dock.registered").details["claimed"] is True
    # Bound: another commune's camera docked there is refused (issue 17).
    with pytest.raises(OffloadRefused, match="not registered in the organisation of dock"):
        offload_session_start(volume=make_volume("BWC-0921", {}), dock_name="poste-ancien")


def test_a_dock_another_commune_used_cannot_be_bound(client, admin, make_camera, other_org):  # noqa: F811
    dock = _dock_used_by(make_camera("BWC-0922"), "poste-commun")
    _dock_used_by(make_camera("BWC-0923", organisation=other_org), "poste-commun")
    sign_in(client, admin)

    response = client.post(reverse("dock-create"), {"name": "poste-commun", "label": "x"})

    assert response.status_code == 400 and "est déjà pris" in html.unescape(response.content.decode())
    dock.refresh_from_db()
    assert dock.organisation is None and not CustodyEvent.objects.filter(action="dock.registered").exists()
