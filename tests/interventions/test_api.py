"""Interventions through the API contract (issue #21, README "Interventions"): creation, links,
the detail's offsets, visibility following the recordings, holds and exports on an intervention."""
import datetime as dt

import pytest
from django.db import transaction

from audit.models import CustodyEvent
from devices.services import camera_register
from evidence.models import Hold, Intervention, InterventionLink
from tests.evidence.test_api import api, make_recording

pytestmark = pytest.mark.django_db


def at(value: str) -> dt.datetime:
    from django.utils.dateparse import parse_datetime

    return parse_datetime(value)
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 11, 20, 22, 14, tzinfo=UTC)


@pytest.fixture
def chef(make_user):
    return make_user("chef", role="supervisor", matricule="S001")


@pytest.fixture
def durand(make_user):
    return make_user("agent.durand", matricule="M043")


@pytest.fixture
def cameras(org):
    with transaction.atomic():
        return [camera_register(serial=f"BWC-00{n}", organisation=org, model="Demo") for n in (51, 52, 53)]


@pytest.fixture
def scene(cameras, officer, durand, local_store):
    """Three recordings of one scene: two officers, three cameras, starts a few seconds apart."""
    track = [[45.5646, 5.9178, T0.timestamp()], [45.5650, 5.9182, T0.timestamp() + 60]]
    a = make_recording(camera=cameras[0], wearer=officer, started_at=T0, track=track)
    b = make_recording(camera=cameras[1], wearer=durand, started_at=T0 + dt.timedelta(seconds=4),
                       track=[[45.5647, 5.9179, T0.timestamp() + 4]])
    c = make_recording(camera=cameras[2], wearer=officer, started_at=T0 + dt.timedelta(seconds=30))
    return a, b, c


def test_a_supervisor_creates_an_intervention_and_gets_the_detail_with_offsets(chef, scene):
    a, b, c = scene

    response = api(chef).post("/api/interventions/", {"reference": "PM-2026-0042", "recordings": [c.pk, a.pk, b.pk],
                                                      "notes": "rixe place Saint-Léger"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["reference"] == "PM-2026-0042"
    assert at(body["started_at"]) == T0
    assert at(body["ended_at"]) == T0 + dt.timedelta(seconds=120)  # c starts at +30 s, lasts 90 s
    assert body["officers"] == ["M042", "M043"]
    rows = {r["id"]: r for r in body["recordings"]}
    assert [r["id"] for r in body["recordings"]] == [a.pk, b.pk, c.pk]
    assert {k: rows[b.pk][k] for k in ("camera", "officer", "duration", "offset_seconds")} == {
        "camera": "BWC-0052", "officer": "M043", "duration": 90.0, "offset_seconds": 4.0}
    assert at(rows[b.pk]["started_at"]) == T0 + dt.timedelta(seconds=4)
    assert rows[c.pk]["offset_seconds"] == 30.0
    assert rows[a.pk]["track"] == a.track and rows[c.pk]["track"] is None
    # Creation and every link are in the custody log.
    assert CustodyEvent.objects.filter(action="intervention.created", subject_id=str(Intervention.objects.get().pk)).count() == 1
    assert set(CustodyEvent.objects.filter(action="intervention.linked").values_list("recording_id", flat=True)) == {
        a.pk, b.pk, c.pk}


def test_more_recordings_are_linked_and_one_is_unlinked_by_a_supervisor(chef, scene):
    a, b, c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-7", "recordings": [a.pk]}, format="json")

    linked = api(chef).post("/api/interventions/PM-7/recordings/", {"recordings": [b.pk, c.pk, a.pk]}, format="json")
    unlinked = api(chef).delete(f"/api/interventions/PM-7/recordings/{b.pk}/")

    assert linked.status_code == 200 and [r["id"] for r in linked.json()["recordings"]] == [a.pk, b.pk, c.pk]
    assert unlinked.status_code == 204
    assert [r["id"] for r in api(chef).get("/api/interventions/PM-7/").json()["recordings"]] == [a.pk, c.pk]
    assert CustodyEvent.objects.filter(action="intervention.unlinked", recording=b).exists()
    assert CustodyEvent.objects.filter(action="intervention.linked", recording=a).count() == 1  # linked once


def test_an_officer_may_not_unlink(chef, officer, scene):
    a, _b, _c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-8", "recordings": [a.pk]}, format="json")

    response = api(officer).delete(f"/api/interventions/PM-8/recordings/{a.pk}/")

    assert response.status_code == 403
    assert InterventionLink.objects.filter(recording=a).exists()


def test_an_officer_sees_only_the_recordings_they_may_see(chef, officer, durand, scene):
    a, b, c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-9", "recordings": [a.pk, b.pk, c.pk]}, format="json")

    mine = api(officer).get("/api/interventions/PM-9/").json()
    theirs = api(durand).get("/api/interventions/PM-9/").json()

    assert [r["id"] for r in mine["recordings"]] == [a.pk, c.pk] and mine["officers"] == ["M042"]
    assert [r["id"] for r in theirs["recordings"]] == [b.pk]
    # The officer's view of the intervention starts with what they may see.
    assert at(theirs["started_at"]) == T0 + dt.timedelta(seconds=4) and theirs["recordings"][0]["offset_seconds"] == 0.0


def test_an_intervention_without_a_visible_recording_is_a_404(chef, make_user, scene):
    a, _b, _c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-10", "recordings": [a.pk]}, format="json")
    stranger = make_user("agent.petit", matricule="M099")

    assert api(stranger).get("/api/interventions/PM-10/").status_code == 404
    assert api(stranger).get("/api/interventions/").json()["count"] == 0
    assert api(make_user("tech", role="admin")).get("/api/interventions/PM-10/").status_code == 404


def test_another_organisations_intervention_is_a_404(chef, scene, make_user):
    from accounts.services import organisation_create

    with transaction.atomic():
        other = organisation_create(slug="aix", name="Aix")
    their_chef = make_user("chef.aix", role="supervisor", organisation=other)
    api(chef).post("/api/interventions/", {"reference": "PM-11", "recordings": [scene[0].pk]}, format="json")

    assert api(their_chef).get("/api/interventions/PM-11/").status_code == 404
    linked = api(their_chef).post("/api/interventions/", {"reference": "X", "recordings": [scene[0].pk]}, format="json")
    assert linked.status_code == 400  # an unseen recording is unknown


def test_an_officer_cannot_link_someone_elses_recording(officer, scene):
    _a, b, _c = scene

    response = api(officer).post("/api/interventions/", {"reference": "PM-12", "recordings": [b.pk]}, format="json")

    assert response.status_code == 400 and not Intervention.objects.exists()


def test_a_reference_is_unique_per_organisation(chef, scene):
    api(chef).post("/api/interventions/", {"reference": "PM-13"}, format="json")

    again = api(chef).post("/api/interventions/", {"reference": "PM-13"}, format="json")

    assert again.status_code == 400 and "reference" in again.json()


def test_the_list_filters_by_text_and_start(chef, scene):
    a, b, c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-2026-0001", "recordings": [a.pk]}, format="json")
    api(chef).post("/api/interventions/", {"reference": "PV 2026/77", "recordings": [c.pk],
                                           "notes": "Saint-Léger"}, format="json")

    everything = api(chef).get("/api/interventions/").json()
    by_text = api(chef).get("/api/interventions/?q=léger").json()
    after = api(chef).get("/api/interventions/", {"started_after": "2026-11-20T22:14:10Z"}).json()
    before = api(chef).get("/api/interventions/", {"started_before": "2026-11-20T22:14:10Z"}).json()
    bad = api(chef).get("/api/interventions/?started_after=hier")

    assert everything["count"] == 2
    assert [r["reference"] for r in by_text["results"]] == ["PV 2026/77"]
    assert [r["reference"] for r in after["results"]] == ["PV 2026/77"]
    assert [r["reference"] for r in before["results"]] == ["PM-2026-0001"]
    assert bad.status_code == 400
    # Found by the live probe: PostgreSQL refuses offsets beyond ±15:59 (a 500 before).
    far = api(chef).get("/api/interventions/", {"started_after": "3481-08-21T22:23:33-20:04"})
    assert far.status_code == 400 and "hors des limites" in far.json()["started_after"][0]
    # A reference with "/" is reachable at its own path.
    assert api(chef).get("/api/interventions/PV 2026/77/").json()["recordings"][0]["id"] == c.pk


def test_the_recording_detail_names_its_interventions(chef, scene):
    a, _b, _c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-14", "recordings": [a.pk]}, format="json")
    api(chef).post("/api/interventions/", {"reference": "PM-15", "recordings": [a.pk]}, format="json")

    assert api(chef).get(f"/api/recordings/{a.pk}/").json()["interventions"] == ["PM-14", "PM-15"]


def test_tagging_a_recording_links_it_to_the_intervention_created_if_new(officer, scene):
    a, _b, _c = scene

    response = api(officer).patch(f"/api/recordings/{a.pk}/", {"intervention": "PM-2026-0099"}, format="json")

    assert response.status_code == 200
    link = InterventionLink.objects.get(recording=a)
    assert (link.intervention.reference, link.source, link.linked_by) == ("PM-2026-0099", "tag", officer)
    assert CustodyEvent.objects.filter(action="intervention.created").count() == 1


def test_a_hold_on_an_intervention_covers_exactly_its_linked_recordings_at_that_moment(chef, make_user, scene,
                                                                                        cameras, officer):
    a, b, c = scene
    # Tagged with the number but not linked (unlinked by a supervisor): not covered.
    tagged_only = make_recording(camera=cameras[0], wearer=officer, intervention="PM-20")
    api(chef).post("/api/interventions/", {"reference": "PM-20", "recordings": [a.pk, b.pk, tagged_only.pk]},
                   format="json")
    api(chef).delete(f"/api/interventions/PM-20/recordings/{tagged_only.pk}/")
    lawyer = make_user("juriste", role="legal")

    response = api(lawyer).post("/api/interventions/PM-20/holds/", {"procedure": "judicial", "reference": "PV 2026/1"},
                                format="json")
    api(chef).post("/api/interventions/PM-20/recordings/", {"recordings": [c.pk]}, format="json")  # linked after

    assert response.status_code == 201, response.content
    hold = Hold.objects.get()
    assert set(hold.covered.values_list("pk", flat=True)) == {a.pk, b.pk}
    assert api(chef).get(f"/api/recordings/{c.pk}/").json()["holds"] == []
    assert set(CustodyEvent.objects.filter(action="hold.placed").values_list("recording_id", flat=True)) == {a.pk, b.pk}


def test_an_officer_cannot_hold_an_intervention(officer, chef, scene):
    api(chef).post("/api/interventions/", {"reference": "PM-21", "recordings": [scene[0].pk]}, format="json")

    response = api(officer).post("/api/interventions/PM-21/holds/", {"procedure": "judicial", "reference": "R"},
                                 format="json")

    assert response.status_code == 403 and not Hold.objects.exists()


def test_an_export_on_an_intervention_covers_exactly_its_linked_recordings(chef, scene, cameras, officer):
    a, b, c = scene
    make_recording(camera=cameras[1], wearer=officer, intervention="PM-22")  # tagged, never linked here
    api(chef).post("/api/interventions/", {"reference": "PM-22", "recordings": [a.pk, c.pk]}, format="json")

    response = api(chef).post("/api/interventions/PM-22/exports/", {
        "purpose": "judicial", "recipient": "OPJ Dupont", "motif": "réquisition 2026/5"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["recordings"] == [a.pk, c.pk]
    assert set(CustodyEvent.objects.filter(action="recording.extracted").values_list("recording_id", flat=True)) == {
        a.pk, c.pk}


def test_an_officer_cannot_export_an_intervention(officer, chef, scene):
    api(chef).post("/api/interventions/", {"reference": "PM-23", "recordings": [scene[0].pk]}, format="json")

    response = api(officer).post("/api/interventions/PM-23/exports/", {
        "purpose": "judicial", "recipient": "OPJ", "motif": "réquisition"}, format="json")

    assert response.status_code == 403


def test_one_motif_opens_one_consultation_per_recording_shown(chef, officer, scene):
    a, b, c = scene
    for rec in scene:
        rec.playback_key = f"playback/{rec.pk}.mp4"
        rec.save(update_fields=["playback_key"])
    api(chef).post("/api/interventions/", {"reference": "PM-24", "recordings": [a.pk, b.pk, c.pk]}, format="json")

    response = api(officer).post("/api/interventions/PM-24/consultations/", {"motif": "Compte rendu"}, format="json")

    assert response.status_code == 201
    assert [x["recording"] for x in response.json()["consultations"]] == [a.pk, c.pk]  # what the officer may see
    events = CustodyEvent.objects.filter(action="recording.consulted")
    assert sorted(events.values_list("recording_id", flat=True)) == sorted([a.pk, c.pk])
    assert set(events.values_list("motif", flat=True)) == {"Compte rendu"}


def test_a_camera_clock_correction_moves_its_recordings_on_the_shared_clock_and_is_logged(chef, scene):
    a, b, c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-25", "recordings": [a.pk, b.pk, c.pk]}, format="json")

    response = api(chef).post("/api/interventions/PM-25/clock/",
                              {"camera": "BWC-0052", "seconds": -3.5, "motif": "horloge en avance"}, format="json")
    refused = api(chef).post("/api/interventions/PM-25/clock/", {"camera": "BWC-0052", "seconds": 1}, format="json")

    rows = {r["id"]: r for r in response.json()["recordings"]}
    assert rows[b.pk]["offset_seconds"] == 0.5 and rows[b.pk]["clock_correction"] == -3.5
    assert at(rows[b.pk]["recorded_started_at"]) == T0 + dt.timedelta(seconds=4)
    event = CustodyEvent.objects.get(action="intervention.clock_corrected")
    assert (event.recording_id, event.motif, event.details["to_seconds"]) == (b.pk, "horloge en avance", -3.5)
    assert refused.status_code == 400


def test_suggestions_are_other_cameras_near_the_first_track_at_the_same_time_confirmed_by_the_wearer(
        chef, officer, durand, scene, org):
    a, b, c = scene
    with transaction.atomic():
        far_cam = camera_register(serial="BWC-0099", organisation=org, model="Demo")
    far = make_recording(camera=far_cam, wearer=durand, started_at=T0 + dt.timedelta(seconds=10),
                         location=[45.60, 5.95])  # about 5 km away
    later = make_recording(camera=far_cam, wearer=durand, started_at=T0 + dt.timedelta(hours=3),
                           location=[45.5646, 5.9178])
    api(chef).post("/api/interventions/", {"reference": "PM-26", "recordings": [a.pk]}, format="json")

    suggested = api(chef).get("/api/interventions/PM-26/suggestions/").json()
    by_other_officer = api(officer).post("/api/interventions/PM-26/suggestions/", {"recordings": [b.pk]},
                                         format="json")
    assert [r["id"] for r in suggested["results"]] == [b.pk]
    assert not {far.pk, later.pk} & {r["id"] for r in suggested["results"]}
    assert by_other_officer.status_code == 400  # not theirs: not even visible to them
    confirmed = api(chef).post("/api/interventions/PM-26/suggestions/", {"recordings": [b.pk]}, format="json")
    assert confirmed.status_code == 200
    assert InterventionLink.objects.get(recording=b).source == "suggestion"


def test_the_wearer_confirms_a_suggestion_of_their_own_recording(chef, officer, durand, cameras, scene):
    a, b, c = scene
    api(chef).post("/api/interventions/", {"reference": "PM-27", "recordings": [b.pk]}, format="json")
    # The officer sees the intervention only once one of their recordings is in it: they confirm
    # from the suggestion list of the page or API once a supervisor linked one (here: none yet).
    assert api(officer).get("/api/interventions/PM-27/").status_code == 404
    api(chef).post("/api/interventions/PM-27/recordings/", {"recordings": [c.pk]}, format="json")

    response = api(officer).post("/api/interventions/PM-27/suggestions/", {"recordings": [a.pk]}, format="json")

    assert response.status_code == 200
    link = InterventionLink.objects.get(recording=a)
    assert (link.source, link.linked_by) == ("suggestion", officer)


def test_retagging_moves_the_link_the_tag_made_and_keeps_links_made_by_hand(officer, chef, scene):
    a, b, c = scene
    api(officer).patch(f"/api/recordings/{a.pk}/", {"intervention": "PM-30"}, format="json")
    api(chef).post("/api/interventions/", {"reference": "PM-31", "recordings": [a.pk]}, format="json")

    api(officer).patch(f"/api/recordings/{a.pk}/", {"intervention": "PM-32"}, format="json")

    assert sorted(InterventionLink.objects.filter(recording=a).values_list("intervention__reference", "source")) == [
        ("PM-31", "manual"), ("PM-32", "tag")]
    event = CustodyEvent.objects.get(action="intervention.unlinked", recording=a)
    assert event.details["intervention"] == "PM-30" and event.actor == officer
