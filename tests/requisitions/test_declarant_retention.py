"""The partner's declarant (name, organisation and role, e-mail or telephone, browser) is kept three
years after the last custody entry that names them, as those entries are (CSI R241-14, LIL art. 101;
evidence/retention/declarants.py), then erased by the retention sweep, logged; never while a file of
the requisition is held. Clocks are injected with time-machine, as in test_regimes.py."""
from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.test import Client

from audit.models import CustodyEvent
from evidence.models import Recording
from evidence.requisitions.models import Requisition, RequisitionDeclarant, RequisitionUpload
from evidence.retention.holds import hold_place, hold_release

from ..auth import sign_in
from ..compliance.helpers import audit
from .conftest import api
from .test_bad_input import send
from .test_declaration import WHO, _path
from .test_regimes import sweep_at

pytestmark = pytest.mark.django_db(transaction=True)


def declared_upload(issue) -> Requisition:
    """A link, a declaration in a browser, one file sent from that browser: its requisition."""
    created = issue()
    browser = Client()
    assert browser.post(_path(created) + "declaration/", WHO).status_code == 302
    send(browser, created["upload_url"], b"parking footage " * 2000, filename="parking-p2.mp4")
    upload = RequisitionUpload.objects.get(requisition_id=created["id"])
    assert upload.declarant is not None and upload.status == "stored"
    return Requisition.objects.get(pk=created["id"])


def three_years_after_last_entry(requisition: Requisition) -> dt.datetime:
    upload = requisition.uploads.get()
    return max(requisition.declarant.declared_at, upload.completed_at) + relativedelta(years=3)


def test_the_sweep_erases_the_declarant_three_years_after_the_last_entry_naming_them(issue, supervisor, local_store):
    requisition = declared_upload(issue)
    end = three_years_after_last_entry(requisition)

    before = sweep_at(end - dt.timedelta(days=1))
    assert before.declarants_erased == []
    declarant = RequisitionDeclarant.objects.get(requisition=requisition)
    assert (declarant.name, declarant.contact) == (WHO["name"], WHO["contact"])

    after = sweep_at(end + dt.timedelta(hours=1))
    assert after.declarants_erased == [requisition.pk]
    declarant = RequisitionDeclarant.objects.get(requisition=requisition)
    assert (declarant.name, declarant.role, declarant.contact, declarant.user_agent, declarant.binding_sha256) == \
        ("", "", "", "", "")
    assert requisition.uploads.get().declarant_id == declarant.pk  # the row stays: the uploads point at it
    (event,) = CustodyEvent.objects.filter(action="requisition.declarant_erased")
    assert (event.subject_type, event.subject_id) == ("evidence.requisition", str(requisition.pk))
    assert event.actor_label == "system:retention" and "CSI R241-14" in event.details["rule"]
    assert event.details["erased"] == ["name", "role", "contact", "user_agent", "binding_sha256"]
    assert WHO["contact"] not in str(event.details)
    assert event.occurred_at >= end
    # The supervisors' pages say so, and the API no longer gives the details.
    page = sign_in(Client(), supervisor).get(f"/requisitions/{requisition.pk}/").content.decode()
    assert "identité et coordonnées effacées après trois ans (CSI R241-14)" in page and WHO["contact"] not in page
    assert "déposant effacé (trois ans)" in sign_in(Client(), supervisor).get("/requisitions/").content.decode()
    files = api(supervisor).get(f"/api/requisitions/{requisition.pk}/").json()["files"]
    assert WHO["name"] not in str(files) and WHO["contact"] not in str(files)
    # Once only.
    assert sweep_at(end + dt.timedelta(days=1)).declarants_erased == []
    assert CustodyEvent.objects.filter(action="requisition.declarant_erased").count() == 1


def test_a_held_file_keeps_its_declarant(issue, supervisor, legal, local_store):
    requisition = declared_upload(issue)
    recording = Recording.objects.get(source="requisition")
    hold = hold_place(by=supervisor, procedure="judicial", reference="PV 2026/1234", recording=recording,
                      motif="images requises par l'enquête")
    end = three_years_after_last_entry(requisition)

    assert sweep_at(end + dt.timedelta(days=1)).declarants_erased == []
    assert RequisitionDeclarant.objects.get(requisition=requisition).contact == WHO["contact"]
    with time_machine.travel(end + dt.timedelta(days=2), tick=True):
        hold_release(hold=hold, by=legal, motif="procédure close")
    assert sweep_at(end + dt.timedelta(days=3)).declarants_erased == [requisition.pk]


def test_the_audit_names_a_declarant_kept_past_three_years(issue, local_store, settings):
    settings.TEMOIN_COMPLIANCE_GRACE = "PT0S"
    requisition = declared_upload(issue)
    declarant = RequisitionDeclarant.objects.get(requisition=requisition)
    end = three_years_after_last_entry(requisition)
    line = f"requisition_declarant {declarant.pk} ["

    with time_machine.travel(end - dt.timedelta(hours=1), tick=True):
        _, out = audit()
    assert line not in out
    # Planted: the sweep never ran (a beat stopped) — the audit says so, a day after the end.
    with time_machine.travel(end + dt.timedelta(days=2), tick=True):
        code, out = audit()
    assert code != 0 and line in out and "FAIL traceability.three_years" in out
    sweep_at(end + dt.timedelta(days=2))
    with time_machine.travel(end + dt.timedelta(days=2, minutes=5), tick=True):
        _, out = audit()
    assert line not in out
