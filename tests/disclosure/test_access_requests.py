"""Data-subject access requests (CSI R241-15, LIL 105 and 107, GDPR 12(3)): DPO only, the maire
reads; deadline one month, extended once by two months with a notice given in the first month."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.disclosure import access_requests
from evidence.disclosure.models import AccessRequest, Export

from .helpers import PLACE, api, approved_copy, redaction_ready

pytestmark = pytest.mark.django_db(transaction=True)


def register(user, **extra):
    body = {"requester_name": "Jean Martin", "requester_contact": "jean.martin@example.org",
            "identity_checked": True, "identity_check_method": "carte d'identité présentée au guichet",
            "received_on": "2026-01-31", "description": "Contrôle place Saint-Léger le soir, agent M042", **extra}
    return api(user).post("/api/access-requests/", body, format="json")


def events(action):
    return list(CustodyEvent.objects.filter(action=action).order_by("seq"))


def test_deadline_is_one_calendar_month_after_receipt(users):
    response = register(users["dpo"])

    assert response.status_code == 201, response.content
    assert response.json()["deadline"] == "2026-02-28"  # 31 January + 1 month
    (event,) = events("access_request.registered")
    assert event.actor == users["dpo"] and event.details["deadline"] == "2026-02-28"
    assert "Jean Martin" not in str(event.details)  # the identity stays on the request, not in the log


def test_extension_by_two_months_with_a_notice_given_in_the_first_month(users):
    request_id = register(users["dpo"], received_on="2026-01-15").json()["id"]
    url = f"/api/access-requests/{request_id}/extension/"

    late = api(users["dpo"]).post(url, {"notice_on": "2026-02-16", "notice": "Demandes nombreuses"}, format="json")
    silent = api(users["dpo"]).post(url, {"notice_on": "2026-02-10", "notice": ""}, format="json")
    ok = api(users["dpo"]).post(url, {"notice_on": "2026-02-15", "notice": "Complexité : 40 heures d'images"},
                                format="json")
    again = api(users["dpo"]).post(url, {"notice_on": "2026-02-15", "notice": "encore"}, format="json")

    assert late.status_code == 400 and "dans le mois qui suit la réception" in late.json()["notice_on"][0]
    assert silent.status_code == 400 and "notice" in silent.json()
    assert ok.status_code == 200 and ok.json()["deadline"] == "2026-04-15" and ok.json()["extended"]
    assert again.status_code == 400 and "une seule prolongation" in again.json()["notice"][0]
    (event,) = events("access_request.extended")
    assert event.motif == "Complexité : 40 heures d'images" and event.details["deadline"] == "2026-04-15"


def test_registration_requires_identity_statement_and_how_it_was_checked(users):
    unchecked = register(users["dpo"], identity_checked=None)
    no_method = register(users["dpo"], identity_check_method="")
    future = register(users["dpo"], received_on=(timezone.localdate() + dt.timedelta(days=2)).isoformat())
    nameless = register(users["dpo"], requester_name=" ")

    assert unchecked.status_code == 400 and "identity_checked" in unchecked.json()
    assert no_method.status_code == 400 and "identity_check_method" in no_method.json()
    assert future.status_code == 400 and "futur" in future.json()["received_on"][0]
    assert nameless.status_code == 400 and "requester_name" in nameless.json()
    assert not AccessRequest.objects.exists()


def test_candidates_by_time_window_place_and_officer(recordings, users, clip_start):
    first, second = recordings  # near PLACE at clip_start; ~5 km away three hours later
    request_id = register(users["dpo"], window_start=(clip_start - dt.timedelta(minutes=10)).isoformat(),
                          window_end=(clip_start + dt.timedelta(hours=4)).isoformat(), place=PLACE, radius_m=300,
                          officer="M042", received_on=timezone.localdate().isoformat()).json()["id"]
    url = f"/api/access-requests/{request_id}/candidates/"

    near = api(users["dpo"]).get(url).json()
    wide = api(users["dpo"]).get(url, {"radius_m": 10000}).json()
    other_officer = api(users["dpo"]).get(url, {"officer": "M043", "radius_m": 10000}).json()
    before = api(users["dpo"]).get(url, {"start": (clip_start - dt.timedelta(hours=5)).isoformat(),
                                         "end": (clip_start - dt.timedelta(hours=1)).isoformat()}).json()

    assert [c["id"] for c in near["results"]] == [first.pk]
    assert [c["id"] for c in wide["results"]] == [first.pk, second.pk]
    assert other_officer["results"] == [] and before["results"] == []
    searched = events("access_request.searched")
    assert len(searched) == 4 and searched[0].details["found"] == [first.pk]


def test_decision_partial_or_refused_needs_a_legal_ground(recordings, users):
    request_id = register(users["dpo"]).json()["id"]
    base = f"/api/access-requests/{request_id}/"
    assert api(users["dpo"]).post(base + "recordings/", {"recordings": [recordings[0].pk]},
                                  format="json").status_code == 200

    no_ground = api(users["dpo"]).post(base + "decision/", {"decision": "partial"}, format="json")
    refused = api(users["dpo"]).post(base + "decision/", {"decision": "refused", "legal_ground": "inquiries",
                                                          "note": "Enquête pénale en cours"}, format="json")

    assert no_ground.status_code == 400 and "LIL art. 107" in no_ground.json()["legal_ground"][0]
    assert refused.status_code == 200 and refused.json()["legal_ground"] == "inquiries"
    (decided,) = events("access_request.decided")
    assert decided.details["decision"] == "refused" and decided.details["legal_ground"] == "inquiries"
    assert events("access_request.recordings_selected")[0].details["added"] == [recordings[0].pk]


def test_copy_is_refused_clearly_when_no_approved_redacted_copy_exists(recordings, users):
    request_id = register(users["dpo"]).json()["id"]
    base = f"/api/access-requests/{request_id}/"
    api(users["dpo"]).post(base + "recordings/", {"recordings": [recordings[0].pk]}, format="json")
    api(users["dpo"]).post(base + "decision/", {"decision": "full"}, format="json")

    response = api(users["dpo"]).post(base + "copy/", {}, format="json")

    assert response.status_code == 400
    assert f"Aucune copie floutée approuvée (tout le monde flouté sauf la personne concernée) pour " \
           f"l'enregistrement ou les enregistrements n° {recordings[0].pk}" in response.json()["redaction"][0]
    assert not Export.objects.exists()


def test_full_flow_copy_with_others_blurred_then_delivery_closes(recordings, users):
    if not redaction_ready():
        pytest.fail("evidence.redaction.services is missing: the requester's copy cannot be tested")
    rec = recordings[0]
    request_id = register(users["dpo"], received_on=timezone.localdate().isoformat()).json()["id"]
    base = f"/api/access-requests/{request_id}/"
    api(users["dpo"]).post(base + "recordings/", {"recordings": [rec.pk]}, format="json")
    api(users["dpo"]).post(base + "decision/", {"decision": "full"}, format="json")
    derivative = approved_copy(rec, "others", users["dpo"])

    copy = api(users["dpo"]).post(base + "copy/", {}, format="json")
    export = Export.objects.get(pk=copy.json()["id"])
    delivered = api(users["dpo"]).post(base + "delivery/", {"delivered_on": timezone.localdate().isoformat(),
                                                            "means": "lien de partage"}, format="json")

    assert copy.status_code == 201 and export.status == "ready"
    assert (export.purpose, export.redaction, export.recipient) == ("access_request", "others", "Jean Martin")
    assert export.items.get().derivative_id == derivative.id
    assert delivered.status_code == 200 and delivered.json()["closed"]
    (event,) = events("access_request.delivered")
    assert event.recipients == ["Jean Martin"] and event.details["exports"] == [export.pk]
    assert api(users["dpo"]).get("/api/access-requests/").json()["count"] == 0  # no longer open
    # The DPO may share the copy with the requester; the procedure roles do not see it.
    assert api(users["legal"]).get(f"/api/exports/{export.pk}/").status_code == 404


def test_open_requests_are_listed_by_deadline_with_overdue_flagged(users):
    today = timezone.localdate()
    later = register(users["dpo"], received_on=(today - dt.timedelta(days=3)).isoformat()).json()["id"]
    overdue = register(users["dpo"], received_on=(today - dt.timedelta(days=45)).isoformat()).json()["id"]
    soon = register(users["dpo"], received_on=(today - dt.timedelta(days=20)).isoformat()).json()["id"]

    listing = api(users["dpo"]).get("/api/access-requests/").json()["results"]

    assert [r["id"] for r in listing] == [overdue, soon, later]
    assert [r["overdue"] for r in listing] == [True, False, False]


@pytest.mark.parametrize("role,list_status,create_status", [
    ("officer", 403, 403), ("supervisor", 403, 403), ("legal", 403, 403), ("dpo", 200, 201), ("mayor", 200, 403),
    ("admin", 403, 403)])
def test_access_request_role_matrix(users, role, list_status, create_status):
    existing = register(users["dpo"]).json()["id"]
    assert api(users[role]).get("/api/access-requests/").status_code == list_status
    assert register(users[role]).status_code == create_status
    detail = api(users[role]).get(f"/api/access-requests/{existing}/").status_code
    assert detail == (200 if role in ("dpo", "mayor") else 404)
    if role == "mayor":  # reads, but every action is the DPO's
        response = api(users[role]).post(f"/api/access-requests/{existing}/decision/", {"decision": "refused",
                                         "legal_ground": "others_rights"}, format="json")
        assert response.status_code == 403


def test_other_organisation_dpo_gets_404(users, other_org_users):
    existing = register(users["dpo"]).json()["id"]
    outsider = other_org_users["dpo"]
    assert api(outsider).get(f"/api/access-requests/{existing}/").status_code == 404
    assert api(outsider).get(f"/api/access-requests/{existing}/candidates/").status_code == 404
    assert api(outsider).post(f"/api/access-requests/{existing}/decision/", {"decision": "full"},
                              format="json").status_code == 404
    assert api(outsider).get("/api/access-requests/").json()["count"] == 0


def test_deadline_service_follows_calendar_months():
    assert access_requests.access_request_deadline(dt.date(2026, 3, 31)) == dt.date(2026, 4, 30)
    assert access_requests.access_request_deadline(dt.date(2026, 11, 30), extended=True) == dt.date(2027, 2, 28)


def test_a_data_subjects_copy_names_no_other_requester_of_the_same_recording(recordings, users, tmp_path,
                                                                             monkeypatch):
    """Issue 15: another person's request on the same recording (its extraction names them as
    recipient) appears nowhere in this person's package: files, decoded custody entries, PDF text."""
    import base64

    from audit import pdf

    from .helpers import download, extract_zip, manifest, run_verify
    from .test_package import _pdf_text

    if not redaction_ready():
        pytest.fail("evidence.redaction.services is missing: the requester's copy cannot be tested")
    monkeypatch.setattr(pdf, "_fonts", ("Helvetica", "Helvetica-Bold", "Courier"))
    rec = recordings[0]
    today = timezone.localdate().isoformat()
    approved_copy(rec, "others", users["dpo"])
    exports = {}
    for name in ("Berthe Autrepersonne", "Jean Martin"):
        request_id = register(users["dpo"], requester_name=name, received_on=today).json()["id"]
        base = f"/api/access-requests/{request_id}/"
        api(users["dpo"]).post(base + "recordings/", {"recordings": [rec.pk]}, format="json")
        api(users["dpo"]).post(base + "decision/", {"decision": "full"}, format="json")
        copy = api(users["dpo"]).post(base + "copy/", {}, format="json")
        assert copy.status_code == 201, copy.content
        exports[name] = copy.json()["id"]
        api(users["dpo"]).post(base + "delivery/", {"delivered_on": today, "means": "en main propre"}, format="json")
    assert CustodyEvent.objects.filter(action="recording.extracted", recipients=["Berthe Autrepersonne"]).exists()

    detail = api(users["dpo"]).get(f"/api/exports/{exports['Jean Martin']}/").json()
    root = extract_zip(download(api(users["dpo"]), detail["download_url"]), tmp_path / "z")
    m = manifest(root)
    texts = [" ".join(base64.b64decode(e["canonical_b64"]).decode() for e in m["custody"]["events"])]
    for p in root.rglob("*"):
        if p.is_file():
            texts.append(p.read_bytes().decode("utf-8", "replace"))
            if p.suffix == ".pdf":
                texts.append(_pdf_text(p.read_bytes()))
    assert any("Jean Martin" in t for t in texts)
    assert not any("Berthe" in t or "Autrepersonne" in t for t in texts)
    assert {"recording.stored", "recording.extracted", "export.created"} <= {e["action"] for e in m["custody"]["events"]}
    result = run_verify(root)
    assert result.returncode == 0, result.stdout


def test_candidate_searches_are_rate_limited_per_user(recordings, users, clip_start, settings):
    """Issue 17: each search reads the organisation's recordings by time and place; bounded per user."""
    settings.TEMOIN_RATE_ACCESS_REQUEST_SEARCH = 2
    request_id = register(users["dpo"], window_start=(clip_start - dt.timedelta(minutes=10)).isoformat(),
                          window_end=(clip_start + dt.timedelta(hours=4)).isoformat(),
                          received_on=timezone.localdate().isoformat()).json()["id"]
    url = f"/api/access-requests/{request_id}/candidates/"

    answers = [api(users["dpo"]).get(url) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["detail"].startswith("Trop de requêtes") and int(answers[2]["Retry-After"]) >= 1
    assert len(events("access_request.searched")) == 2
