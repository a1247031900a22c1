"""Authorisation matrix (issue #4): every page and endpoint × every role × own / other organisation /
other officer, against ARCHITECTURE.md §1 and CSI R241-12.

Routes are enumerated from the URL resolver, so a new route that is not placed in this matrix fails
``test_every_route_is_in_the_matrix``.
"""
import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from accounts.services import organisation_create
from devices.services import camera_register
from tests.auth import sign_in
from tests.evidence.test_api import make_recording

pytestmark = pytest.mark.django_db

ROLES = ["officer", "supervisor", "legal", "dpo", "mayor", "admin"]
ORGANISATION_WIDE = {"supervisor", "legal", "mayor"}  # the DPO: access requests' recordings (issue 15)


def _routes():
    def walk(resolver, prefix=""):
        for p in resolver.url_patterns:
            if isinstance(p, URLResolver):
                yield from walk(p, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p.name

    return [(pattern, name) for pattern, name in walk(get_resolver())
            if not pattern.startswith(("admin/", "static/")) and "<format>" not in pattern
            and "<drf_format_suffix" not in pattern]


# Routes about one recording, by their URL name: whoever may not see the recording gets 404 on every
# method, before anything else is checked (ARCHITECTURE.md §7: never its metadata).
RECORDING_ROUTES = {
    "recording-detail", "hold-place", "recording-play", "annotation-add", "recording-review", "recording-tag",
    "recording-custody", "recording-custody-pdf", "recording-extract", "redaction-create",
    "api-recording-detail", "api-recording-annotations", "api-recording-consultations", "api-recording-custody",
    "api-recording-holds", "api-recording-review", "api-recording-extractions",
}

# Routes about one intervention (issue #21): whoever sees none of its recordings gets 404 on every
# method; the intervention shows only the recordings the user may see (tests/interventions).
INTERVENTION_ROUTES = {
    "intervention-detail", "intervention-consult", "intervention-clock", "intervention-suggestions",
    "api-intervention", "api-intervention-recording", "api-intervention-recordings", "api-intervention-suggestions",
    "api-intervention-holds", "api-intervention-exports", "api-intervention-clock", "api-intervention-consultations",
}

# Pages and endpoints without an object: who may open them (the others get 403 or 404; never 200).
ROLE_PAGES = {
    # name: roles that get 200
    "recording-list": set(ROLES) - {"admin"} | {"admin"},  # admin gets an empty list, never evidence
    "to-complete": {"officer", "supervisor"},
    "erasures-upcoming": set(ROLES),
    "review-queue": {"supervisor"},
    "grants": {"supervisor"},
    "holds-in-force": {"supervisor", "legal", "dpo", "mayor"},  # issue 20: "Conservations en cours"
    "register": {"mayor", "dpo", "legal"},
    "register-export-csv": {"mayor", "dpo", "legal"},
    "api-register": {"mayor", "dpo", "legal"},
    "custody-journal": {"admin", "mayor", "dpo"},
    "compliance": {"admin", "mayor", "dpo"},
    "api-recording-list": set(ROLES),
    "dashboard": set(ROLES),
    "dashboard-offloads": set(ROLES),
    "fleet": {"admin", "supervisor"},
    # Issue 20: the fleet register (tests/devices/test_fleet_register.py).
    "camera-create": {"admin", "supervisor"}, "dock-create": {"admin", "supervisor"},
    "users": {"admin"},
    "role-approvals": {"mayor"},  # issue 15: four eyes on privileged roles
    "annual-summary": {"mayor"},  # issue 20: the mayor's yearly summary
    "password-change": set(ROLES),  # issue 20: everyone changes their own password
    "disclosure-list": {"supervisor", "legal", "mayor", "dpo"},
    "access-request-list": {"dpo", "mayor"},
    "access-request-create": {"dpo"},
    "api-access-requests": {"dpo", "mayor"},
    "redaction-jobs": {"supervisor", "legal", "dpo"},
    "requisition-list": {"supervisor", "legal"},  # issue 22: requisitions to partners
    "intervention-list": set(ROLES),  # admin gets an empty list, never evidence
    "api-interventions": set(ROLES),
    # The map of the API: any signed-in user, never anonymous (issue 17, finding 7).
    "schema": set(ROLES), "api-docs": set(ROLES),
}

# Routes about another object (an export, a share, an access request, a redaction job, a camera),
# with the tests that check them for every role and another organisation.
OTHER_OBJECT_ROUTES = {
    **dict.fromkeys(["export-detail", "export-status", "export-download", "share-create", "share-revoke",
                     "api-exports", "api-export", "api-export-download", "api-export-shares", "api-share-revoke",
                     "extraction-download"], "tests/disclosure/test_exports_api.py, test_extraction.py, test_pages.py"),
    **dict.fromkeys(["share-public", "share-download"], "tests/disclosure/test_shares.py (token, expiry, limit, revocation)"),
    **dict.fromkeys(["access-request-detail", "access-request-extend", "access-request-select",
                     "access-request-decide", "access-request-copy", "access-request-deliver",
                     "api-access-request", "api-access-request-extension", "api-access-request-candidates",
                     "api-access-request-recordings", "api-access-request-decision", "api-access-request-copy",
                     "api-access-request-delivery"], "tests/disclosure/test_access_requests.py, test_pages.py"),
    **dict.fromkeys(["redaction-job", "redaction-consultation", "redaction-editor", "redaction-review",
                     "redaction-render", "redaction-approve", "redaction-frame", "redaction-derivative-media",
                     "redaction-cover", "redaction-watched"],
                    "tests/redaction/test_pages.py"),
    **dict.fromkeys(["camera-check-out", "camera-check-in"], "tests/devices/test_fleet.py"),
    **dict.fromkeys(["requisition-detail", "api-requisition-detail"],
                    "tests/requisitions/test_bad_input.py, test_declaration.py (roles, another commune's requisition)"),
    **dict.fromkeys(["camera-edit", "camera-retire", "camera-reinstate", "dock-edit", "dock-retire",
                     "dock-reinstate"], "tests/devices/test_fleet_register.py (roles, another commune's devices)"),
}

# Routes whose access rules are tested next to their feature, with the test that does it.
COVERED_ELSEWHERE = {
    "consultation-media": "tests/evidence/test_consultation.py (token bound to user, expiry, forged)",
    "hold-release": "tests/evidence/test_holds_api.py", "api-hold-detail": "tests/evidence/test_holds_api.py",
    "api-hold-release": "tests/evidence/test_holds_api.py",
    "register-export-pdf": "tests/audit/test_register.py",
    "api-requisition-list": "POST only: tests/requisitions/test_bad_input.py (supervisor and legal issue; officer 403)",
    **dict.fromkeys(["review-batch", "to-complete-batch"],
                    "tests/daily/test_pages.py (roles, another organisation's and another wearer's recordings)"),
    "custody-journal-verify": "tests/audit/test_alerts.py", "custody-alert-acknowledge": "tests/audit/test_alerts.py",
    **dict.fromkeys(["compliance-run", "compliance-report-json", "compliance-report-pdf"],
                    "tests/compliance/test_audit.py (page and signed report per role and organisation)"),
}

# Public by design, with the reason.
PUBLIC = {
    "login": "login page", "logout": "logout", "otp-verify": "second factor (after password)",
    "otp-setup": "second factor enrolment (after password)", "set_language": "language choice",
    "custody-public-key": "the public key is published (issue #3)", "custody-public-key-pem": "idem",
    "axis-auth": "Axis docks authenticate with their own credentials (tests/axis)",
    "axis-account": "Axis token (tests/axis)", "axis-container": "Axis token (tests/axis)",
    "axis-object": "Axis token (tests/axis)",
    "ops-health": "overall status only; components for admin or the metrics token (tests/ops)",
    "ops-health-api": "idem (tests/ops)", "ops-metrics": "metrics token or admin session (tests/ops)",
    "api-root": "DRF index",
    **dict.fromkeys(["requisition-tus-uploads", "requisition-tus-upload", "requisition-declare"],
                    "the partner's requisition link: its unguessable token is the credential, 410 once expired, "
                    "bound to its first declarant (tests/requisitions)"),
}


@pytest.fixture
def world(db, org, camera, officer, make_user):
    """One commune with its six roles and a second officer; a second commune with the same."""
    other_org = organisation_create(slug="aix", name="Police municipale d'Aix-les-Bains")
    users = {role: make_user(f"u.{role}", role=role) for role in ROLES if role != "officer"}
    users["officer"] = officer
    users["other_officer"] = make_user("agent.autre", matricule="M777")
    for role in ROLES:
        users[f"aix_{role}"] = make_user(f"aix.{role}", role=role, organisation=other_org)
    rec = make_recording(camera=camera, wearer=officer, intervention="PM-1")
    aix_cam = camera_register(serial="AIX-1", organisation=other_org, model="Demo")
    aix_rec = make_recording(camera=aix_cam, wearer=users["aix_officer"])
    return users, rec, aix_rec


def _url(pattern: str, pk: int) -> str:
    path = pattern.replace("<int:pk>", str(pk)).replace("(?P<pk>[^/.]+)", str(pk))
    return "/" + path.replace("^", "").replace("$", "")


def _consulted(rec, user):
    from evidence.access.services import consultation_open

    type(rec).objects.filter(pk=rec.pk).update(playback_key="playback/matrix.mp4")
    rec.refresh_from_db()
    consultation_open(recording=rec, by=user, motif="Contrôle hiérarchique")


def _client(user):
    client = Client(raise_request_exception=False)
    return sign_in(client, user)


def test_every_route_is_in_the_matrix():
    placed = RECORDING_ROUTES | INTERVENTION_ROUTES | set(ROLE_PAGES) | set(COVERED_ELSEWHERE) | set(PUBLIC) | set(OTHER_OBJECT_ROUTES)
    missing = sorted({name for _pattern, name in _routes()} - placed)
    assert not missing, f"routes with no authorisation rule in tests/authz/test_matrix.py: {missing}"


OUTSIDERS = ["other_officer", "admin", "dpo", *[f"aix_{r}" for r in ROLES]]


@pytest.mark.parametrize("outsider", OUTSIDERS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_whoever_may_not_see_a_recording_gets_404_on_every_route_about_it(world, outsider, method):
    users, rec, _ = world
    client = _client(users[outsider])
    routes = [(p, n) for p, n in _routes() if n in RECORDING_ROUTES]
    assert {n for _p, n in routes} == RECORDING_ROUTES
    assert {resolve(_url(p, rec.pk)).url_name for p, _n in routes} == RECORDING_ROUTES  # real URLs
    answers = {n: getattr(client, method)(_url(p, rec.pk)).status_code for p, n in routes}
    # 405 for a GET on a POST-only route says nothing about the recording: the same for any id.
    nowhere = {n: getattr(client, method)(_url(p, 999_999)).status_code for p, n in routes}
    leaks = {n: s for n, s in answers.items() if s != 404 and not (s == 405 and nowhere[n] == 405)}
    assert leaks == {}


def _dpo_selects(users, rec):
    """The DPO selects the recording for an open access request (ARCHITECTURE.md §1)."""
    import datetime as dt


    from evidence.disclosure import access_requests

    request = access_requests.access_request_register(
        by=users["dpo"], requester_name="Personne filmée", identity_checked=True,
        identity_check_method="pièce d'identité", received_on=dt.date.today(), description="contrôle")
    access_requests.access_request_select(request=request, by=users["dpo"], recordings=[rec])
    return request


@pytest.mark.parametrize("viewer", ["officer", "supervisor", "legal", "dpo", "mayor"])
def test_who_may_see_a_recording_reads_its_pages(world, viewer):
    users, rec, _ = world
    if viewer == "dpo":
        _dpo_selects(users, rec)
    client = _client(users[viewer])
    for name in ["recording-detail", "recording-play", "recording-custody", "api-recording-detail",
                 "api-recording-custody", "api-recording-annotations"]:
        pattern = next(p for p, n in _routes() if n == name)
        assert client.get(_url(pattern, rec.pk)).status_code == 200, name


@pytest.mark.parametrize("role", ROLES)
def test_role_pages_open_only_for_their_roles(world, role):
    users, rec, aix_rec = world
    client = _client(users[role])
    for name, allowed in ROLE_PAGES.items():
        pattern = next(p for p, n in _routes() if n == name)
        status = client.get(_url(pattern, 0)).status_code
        if role in allowed:
            assert status == 200, (name, role, status)
        else:
            assert status in (403, 404), (name, role, status)


@pytest.mark.parametrize("role", ROLES)
def test_lists_never_show_another_organisation_or_another_officer(world, role):
    users, rec, aix_rec = world
    body = _client(users[role]).get("/api/recordings/").json()
    seen = {r["id"] for r in body["results"]}
    assert aix_rec.pk not in seen
    if role in ORGANISATION_WIDE or role == "officer":
        assert seen == {rec.pk}
    else:
        assert seen == set()  # the technical administrator never sees evidence
    assert rec.pk not in {r["id"] for r in _client(users["other_officer"]).get("/api/recordings/").json()["results"]}


@pytest.mark.parametrize("role", ["officer", "supervisor", "legal", "dpo", "mayor"])
def test_actions_on_a_visible_recording_follow_section_1(world, role):
    """Visible but not permitted: 403 with a message; permitted: done."""
    users, rec, _ = world
    if role == "dpo":
        _dpo_selects(users, rec)
    client = _client(users[role])
    hold = client.post(f"/api/recordings/{rec.pk}/holds/", {"procedure": "judicial", "reference": "PV 1"},
                       content_type="application/json").status_code
    if role == "supervisor":  # issue 20: "reviewed" only after the reviewer's own consultation
        _consulted(rec, users[role])
    review = client.post(f"/api/recordings/{rec.pk}/review/", {"state": "reviewed"},
                         content_type="application/json").status_code
    tag = client.patch(f"/api/recordings/{rec.pk}/", {"purpose": "evidence"}, content_type="application/json").status_code
    assert hold == (201 if role in {"supervisor", "legal"} else 403)
    assert review == (200 if role == "supervisor" else 403)
    assert tag == (200 if role in {"officer", "supervisor"} else 403)


# --- Interventions (issue #21) ---------------------------------------------------------------------

def _intervention_url(pattern: str, reference: str, pk: int) -> str:
    return "/" + pattern.replace("<path:reference>", reference).replace("<int:pk>", str(pk))


@pytest.fixture
def intervention(world):
    from django.db import transaction

    from evidence.interventions.services import intervention_create

    users, rec, _ = world
    with transaction.atomic():
        return intervention_create(by=users["supervisor"], reference="PM-1", recordings=[rec])


@pytest.mark.parametrize("outsider", OUTSIDERS)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_whoever_sees_none_of_an_interventions_recordings_gets_404_on_every_route_about_it(
        world, intervention, outsider, method):
    users, rec, _ = world
    client = _client(users[outsider])
    routes = [(p, n) for p, n in _routes() if n in INTERVENTION_ROUTES]
    assert {n for _p, n in routes} == INTERVENTION_ROUTES
    assert {resolve(_intervention_url(p, "PM-1", rec.pk)).url_name for p, _n in routes} == INTERVENTION_ROUTES
    answers = {n: getattr(client, method)(_intervention_url(p, "PM-1", rec.pk)).status_code for p, n in routes}
    nowhere = {n: getattr(client, method)(_intervention_url(p, "PM-404", rec.pk)).status_code for p, n in routes}
    leaks = {n: s for n, s in answers.items() if s != 404 and not (s == 405 and nowhere[n] == 405)}
    assert leaks == {}


@pytest.mark.parametrize("viewer", ["officer", "supervisor", "legal", "mayor"])
def test_who_may_see_an_interventions_recording_reads_the_intervention(world, intervention, viewer):
    users, rec, _ = world
    client = _client(users[viewer])
    assert client.get("/interventions/PM-1/").status_code == 200
    body = client.get("/api/interventions/PM-1/").json()
    assert [r["id"] for r in body["recordings"]] == [rec.pk]
    assert [i["reference"] for i in client.get("/api/interventions/").json()["results"]] == ["PM-1"]


@pytest.mark.parametrize("role", ["officer", "supervisor", "legal", "mayor"])
def test_actions_on_a_visible_intervention_follow_section_1(world, intervention, role):
    users, rec, _ = world
    client = _client(users[role])
    hold = client.post("/api/interventions/PM-1/holds/", {"procedure": "judicial", "reference": "PV 1"},
                       content_type="application/json").status_code
    clock = client.post("/api/interventions/PM-1/clock/", {"camera": rec.camera.serial, "seconds": 1,
                                                           "motif": "horloge"},
                        content_type="application/json").status_code
    unlink = client.delete(f"/api/interventions/PM-1/recordings/{rec.pk}/").status_code
    assert hold == (201 if role in {"supervisor", "legal"} else 403)
    assert clock == (200 if role in {"supervisor", "legal"} else 403)
    assert unlink == (204 if role == "supervisor" else 403)


def test_the_dpo_sees_the_recordings_of_open_access_requests_or_all_when_the_organisation_records_it(world):
    """Issue 15, ARCHITECTURE.md §1: the DPO handles access requests and reads the register."""
    from django.utils import timezone

    users, rec, aix_rec = world
    client = _client(users["dpo"])
    assert client.get(f"/api/recordings/{rec.pk}/").status_code == 404
    assert client.get("/api/recordings/").json()["results"] == []

    request = _dpo_selects(users, rec)
    assert client.get(f"/api/recordings/{rec.pk}/").status_code == 200
    request.closed_at = timezone.now()
    request.save(update_fields=["closed_at"])
    assert client.get(f"/api/recordings/{rec.pk}/").status_code == 404

    org = users["dpo"].organisation
    org.dpo_sees_recordings = True
    org.save(update_fields=["dpo_sees_recordings"])
    assert {r["id"] for r in client.get("/api/recordings/").json()["results"]} == {rec.pk}
    assert client.get(f"/api/recordings/{aix_rec.pk}/").status_code == 404
