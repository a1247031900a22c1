"""The hourly verification (Celery beat ``audit.verify_chain``) records its result and, when the log
is not intact, raises an alert administrators see on /journal/ and in the Django admin."""
from __future__ import annotations

from tests.auth import sign_in

import logging

import pytest
from django.contrib import admin
from django.test import Client

from audit import tasks
from audit.models import Alert, CustodyEvent, Verification

from .helpers import append, guards_off, raw

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    c = Client()
    sign_in(c, user)
    return c


def test_the_beat_task_records_an_intact_verification(db):
    append(4)

    assert tasks.verify_chain() is True

    v = Verification.objects.get()
    assert v.ok and v.events == 4 and v.triggered_by == "beat"
    assert not Alert.objects.exists()


def test_the_first_run_of_the_day_also_checks_every_column(db):
    append(2)

    tasks.verify_chain()
    tasks.verify_chain()

    assert list(Verification.objects.order_by("id").values_list("mode", flat=True)) == ["full", "full" if
                                                                                         _sqlite() else "fast"]


def _sqlite() -> bool:
    from django.db import connection

    return connection.vendor == "sqlite"


def test_a_broken_chain_raises_one_alert_and_logs_an_error(db, caplog):
    append(5)
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 3")

    with caplog.at_level(logging.ERROR, logger="audit.services"):
        assert tasks.verify_chain() is False
        assert tasks.verify_chain() is False

    alert = Alert.objects.get()  # seen twice, one alert
    assert (alert.kind, alert.seq, alert.problem_kind, alert.occurrences) == ("chain_broken", 3, "removed", 2)
    assert "entrée n° 3" in alert.message
    assert "custody log NOT intact: first bad entry #3 removed" in caplog.text
    assert [r.levelno for r in caplog.records if r.name == "audit.services"] == [logging.ERROR, logging.ERROR]


@pytest.mark.parametrize("role, status", [("admin", 200), ("mayor", 200), ("dpo", 200), ("officer", 403),
                                          ("supervisor", 403), ("legal", 403)])
def test_administrators_see_the_alert_on_the_journal_page(role, status, make_user):
    append(3)
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 2")
    tasks.verify_chain()
    user = make_user(f"u-{role}", role=role)

    response = login(user).get("/journal/")

    assert response.status_code == status
    if status == 200:
        assert "journal de traçabilité altéré" in response.content.decode()
        assert "entrée n° 2" in response.content.decode()


def test_an_alert_is_acknowledged_with_a_note(make_user):
    append(3)
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 2")
    tasks.verify_chain()
    dpo = make_user("dpo", role="dpo")
    alert = Alert.objects.get()

    response = login(dpo).post(f"/journal/alertes/{alert.pk}/acquitter/", {"note": "CNIL notifiée, plainte déposée"})

    alert.refresh_from_db()
    assert response.status_code == 302
    assert alert.acknowledged_by == dpo and alert.acknowledgement == "CNIL notifiée, plainte déposée"


def test_verify_now_from_the_journal_page(make_user):
    append(2)
    mayor = make_user("maire", role="mayor")

    login(mayor).post("/journal/verifier/")

    assert Verification.objects.get().triggered_by == "user:maire"


def test_alerts_and_the_log_are_in_the_django_admin_read_only(rf, make_user):
    assert {Alert, CustodyEvent, Verification} <= set(admin.site._registry)
    request = rf.get("/")
    request.user = make_user("root", role="admin")
    event_admin = admin.site._registry[CustodyEvent]
    assert not event_admin.has_change_permission(request) and not event_admin.has_delete_permission(request)
