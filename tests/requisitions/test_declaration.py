"""The partner's page without a browser (issue 22): what each state of the link answers, the
declaration binding the link to one browser, tus requests with and without that binding, and the
supervisors' pages."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.services import organisation_create
from audit.models import CustodyEvent
from evidence.requisitions.models import Requisition, RequisitionDeclarant, RequisitionUpload
from evidence.requisitions.pages import BINDING_COOKIE
from tests.auth import sign_in

pytestmark = pytest.mark.django_db(transaction=True)

WHO = {"name": "Karim Benali", "role": "Parkings de Chambéry, agent d'exploitation", "contact": "04 79 00 00 00"}
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _path(created: dict) -> str:
    return "/" + created["upload_url"].split("/", 3)[3]


def test_an_unknown_link_and_an_expired_link_answer_pages_that_say_so(issue):
    created = issue()
    path = _path(created)
    unknown = Client().get("/requisitions/depot/not-a-real-token/")
    assert unknown.status_code == 404 and "Lien de dépôt inconnu" in unknown.content.decode()

    Requisition.objects.filter(pk=created["id"]).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    expired = Client().get(path)
    assert expired.status_code == 410 and "Ce lien de dépôt a expiré" in expired.content.decode()
    assert "PV 2026/1234" in expired.content.decode()
    declared = Client().post(path + "declaration/", WHO)
    assert declared.status_code == 410 and not RequisitionDeclarant.objects.exists()
    assert Client().post(path, **TUS, HTTP_UPLOAD_LENGTH="10").status_code == 410  # tus too


def test_the_first_declaration_binds_the_link_to_its_browser(issue):
    created = issue()
    path = _path(created)
    browser = Client()
    page = browser.get(path)
    assert page.status_code == 200 and 'id="id_name"' in page.content.decode()
    assert page["Cache-Control"].startswith("max-age=0") or "no-store" in page["Cache-Control"]
    assert 'id="depot-uppy"' not in page.content.decode()  # no uploader before the declaration

    incomplete = browser.post(path + "declaration/", {**WHO, "contact": "  "})
    assert incomplete.status_code == 400 and not RequisitionDeclarant.objects.exists()
    assert "Indiquez votre nom" in incomplete.content.decode()

    done = browser.post(path + "declaration/", WHO)
    assert done.status_code == 302 and done["Location"] == path
    cookie = done.cookies[BINDING_COOKIE]
    assert cookie["path"] == path and cookie["httponly"] and cookie["samesite"] == "Strict"
    declarant = RequisitionDeclarant.objects.get()
    assert (declarant.name, declarant.role, declarant.contact) == (WHO["name"], WHO["role"], WHO["contact"])
    assert declarant.binding_sha256 != cookie.value and len(declarant.binding_sha256) == 64  # only its hash
    # The same browser sending the form again (Back, double click) keeps its declaration.
    twice = browser.post(path + "declaration/", {**WHO, "name": "Autre nom"})
    assert twice.status_code == 302 and RequisitionDeclarant.objects.get().name == WHO["name"]
    uploader = browser.get(path).content.decode()
    assert 'id="depot-uppy"' in uploader and f'data-endpoint="{path}"' in uploader and WHO["name"] in uploader

    # Another person (another browser) can neither declare nor see the uploader.
    other = Client()
    assert other.get(path).status_code == 403
    again = other.post(path + "declaration/", {**WHO, "name": "Quelqu'un d'autre"})
    assert again.status_code == 403 and "déjà utilisé par une autre personne" in again.content.decode()
    assert RequisitionDeclarant.objects.get().name == WHO["name"]
    events = CustodyEvent.objects.filter(action="requisition.declared")
    assert events.count() == 1 and events.get().details["name"] == WHO["name"]


def test_tus_requests_after_the_declaration_need_the_browser_binding(issue):
    created = issue()
    path = _path(created)
    bare = Client()
    # Before anybody declared, the URL alone is enough (the README's contract for tus clients).
    before = bare.post(path, **TUS, HTTP_UPLOAD_LENGTH="10")
    assert before.status_code == 201 and RequisitionUpload.objects.get().declarant is None

    browser = Client()
    browser.post(path + "declaration/", WHO)
    mine = browser.post(path, **TUS, HTTP_UPLOAD_LENGTH="20")
    assert mine.status_code == 201
    upload = RequisitionUpload.objects.get(length=20)
    assert upload.declarant.name == WHO["name"]
    started = CustodyEvent.objects.filter(action="requisition.upload_started").order_by("seq").last()
    assert started.details["declarant"]["contact"] == WHO["contact"]

    refused = bare.post(path, **TUS, HTTP_UPLOAD_LENGTH="10")
    assert refused.status_code == 403 and "bound to the person who declared" in refused.content.decode()
    earlier = RequisitionUpload.objects.get(length=10)
    head = bare.head(f"{path}{earlier.uid}", **TUS)
    assert head.status_code == 403  # nor can the bare client go on with its own unfinished upload
    assert browser.head(f"{path}{upload.uid}", **TUS).status_code == 200
    assert bare.options(path).status_code == 204  # what the server supports is no secret
    assert RequisitionUpload.objects.count() == 2


def test_the_requisition_pages_are_for_the_organisations_supervisors_and_legal_staff(
        issue, supervisor, legal, make_user):
    created = issue()
    Client().post(_path(created) + "declaration/", WHO)
    listing = sign_in(Client(), legal).get("/requisitions/")
    assert listing.status_code == 200 and "PV 2026/1234" in listing.content.decode()
    detail = sign_in(Client(), legal).get(f"/requisitions/{created['id']}/").content.decode()
    assert WHO["name"] in detail and WHO["contact"] in detail and "Réseau de bus STAC" in detail
    assert 'href="/requisitions/"' in sign_in(Client(), supervisor).get("/").content.decode()  # in the menu

    officer = make_user("agent.martin", role="officer")
    assert sign_in(Client(), officer).get("/requisitions/").status_code == 403
    assert sign_in(Client(), officer).get(f"/requisitions/{created['id']}/").status_code == 404
    with transaction.atomic():
        other_org = organisation_create(slug="aix", name="Police municipale d'Aix-les-Bains")
    elsewhere = make_user("chef.aix", role="supervisor", organisation=other_org)
    assert sign_in(Client(), elsewhere).get(f"/requisitions/{created['id']}/").status_code == 404
    assert "PV 2026/1234" not in sign_in(Client(), elsewhere).get("/requisitions/").content.decode()


def test_the_partner_page_in_english_through_the_catalogue(issue, settings):
    created = issue()
    path = _path(created)
    browser = Client()
    browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = browser.get(path).content.decode()
    assert "Footage upload — requisition PV 2026/1234" in page and "Who is handing over the footage?" in page
    assert '<html lang="en"' in page  # depot.js gives Uppy its English strings then
    browser.post(path + "declaration/", WHO)
    uploader = browser.get(path).content.decode()
    assert "You are uploading as <strong>Karim Benali</strong>" in uploader
    refused = Client()
    refused.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "This link is already used by another person" in refused.get(path).content.decode()
