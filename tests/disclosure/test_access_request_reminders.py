"""Access-request deadline reminders (issue 20, GDPR art. 12(3)): the DPO of the right commune is
e-mailed once per threshold (7 days, 2 days, overdue), and sees the deadlines on the dashboard."""
from __future__ import annotations

import datetime as dt
import html

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse

from accounts.services import organisation_create
from audit.models import CustodyEvent
from evidence.disclosure.access_requests import (
    access_request_decide,
    access_request_deliver,
    access_request_extend,
    access_request_register,
)
from evidence.disclosure.models import AccessRequestReminder
from evidence.disclosure.reminders import access_request_reminders_send
from evidence.disclosure.tasks import access_request_reminders

from ..auth import sign_in

UTC = dt.timezone.utc
RECEIVED = dt.date(2026, 11, 10)  # deadline 10/12/2026 (one month, GDPR art. 12(3))


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "temoin@mairie-chambery.fr"
    settings.TEMOIN_PUBLIC_URL = "https://temoin.mairie-chambery.fr"


def with_email(user, address):
    user.email = address
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def dpo(make_user):
    return with_email(make_user("dpo.moreau", role="dpo"), "dpo@mairie-chambery.fr")


@pytest.fixture
def other_commune(make_user, db):
    with transaction.atomic():
        org = organisation_create(slug="aix", name="Police municipale d'Aix-les-Bains")
    return {"org": org, "dpo": with_email(make_user("dpo.aix", role="dpo", organisation=org), "dpo@aix.fr")}


def register(by, *, received_on=RECEIVED, name="Mme Requérante"):
    return access_request_register(by=by, requester_name=name, identity_checked=True,
                                   identity_check_method="carte d'identité", received_on=received_on,
                                   description="Contrôle place du marché",
                                   now=dt.datetime.combine(received_on, dt.time(12), tzinfo=UTC))


def send(day: dt.date) -> int:
    return access_request_reminders_send(now=dt.datetime.combine(day, dt.time(6), tzinfo=UTC), today=day)


def test_each_threshold_is_e_mailed_once_to_the_dpo(dpo):
    request = register(dpo)
    assert request.deadline == dt.date(2026, 12, 10)

    sent = {day: send(dt.date(2026, 12, day)) for day in range(1, 14)}

    # 8 days before: nothing; 7 days before, 2 days before and the day after the deadline: one e-mail.
    assert [day for day, n in sent.items() if n] == [3, 8, 11]
    assert [m.to for m in mail.outbox] == [["dpo@mairie-chambery.fr"]] * 3
    first, second, third = (m.body for m in mail.outbox)
    assert "Échéance dans 7 jours au plus (1)" in first and "dans 7 jour(s)" in first
    assert "Échéance dans 2 jours au plus (1)" in second and "dans 2 jour(s)" in second
    assert "Échéance dépassée (1)" in third and "dépassée de 1 jour(s)" in third
    assert f"https://temoin.mairie-chambery.fr/demandes-acces/{request.pk}/" in first
    # The e-mail leaves Témoin: it names no requester (GDPR art. 5(1)(c)).
    assert "Requérante" not in first + second + third
    assert mail.outbox[0].from_email == "temoin@mairie-chambery.fr"
    assert set(AccessRequestReminder.objects.values_list("threshold", flat=True)) == {"7d", "2d", "overdue"}
    events = CustodyEvent.objects.filter(action="access_request.reminder_sent").order_by("seq")
    assert [e.details["threshold"] for e in events] == ["7d", "2d", "overdue"]
    assert all(e.subject_id == str(request.pk) and e.recipients == ["dpo@mairie-chambery.fr"] for e in events)


def test_a_request_first_seen_late_gets_only_its_most_urgent_reminder(dpo):
    register(dpo)

    assert send(dt.date(2026, 12, 9)) == 1
    assert send(dt.date(2026, 12, 10)) == 0

    assert "Échéance dans 2 jours au plus" in mail.outbox[0].body and "7 jours au plus" not in mail.outbox[0].body


def test_one_e_mail_per_dpo_lists_all_their_requests_and_only_their_communes(dpo, make_user, other_commune):
    second_dpo = with_email(make_user("dpo.adjoint", role="dpo"), "dpo2@mairie-chambery.fr")
    make_user("dpo.sans.adresse", role="dpo")
    with_email(make_user("chef", role="supervisor"), "chef@mairie-chambery.fr")
    overdue = register(dpo, received_on=dt.date(2026, 11, 1))   # due 01/12
    soon = register(dpo, received_on=dt.date(2026, 11, 5))      # due 05/12
    later = register(dpo, received_on=dt.date(2026, 11, 20))    # due 20/12: not yet
    theirs = register(other_commune["dpo"], received_on=dt.date(2026, 11, 4))  # due 04/12, Aix

    assert send(dt.date(2026, 12, 3)) == 3

    by_address = {m.to[0]: m for m in mail.outbox}
    assert sorted(by_address) == ["dpo2@mairie-chambery.fr", "dpo@aix.fr", "dpo@mairie-chambery.fr"]
    assert all(len(m.to) == 1 and not m.cc and not m.bcc for m in mail.outbox)
    ours = by_address["dpo@mairie-chambery.fr"].body
    assert by_address["dpo2@mairie-chambery.fr"].body == ours
    assert f"demande n° {overdue.pk}," in ours and f"demande n° {soon.pk}," in ours
    assert f"demande n° {later.pk}," not in ours and f"demande n° {theirs.pk}," not in ours
    assert "Échéance dépassée (1)" in ours and "Échéance dans 2 jours au plus (1)" in ours
    aix = by_address["dpo@aix.fr"].body
    assert f"demande n° {theirs.pk}," in aix and f"demande n° {soon.pk}," not in aix
    assert "Aix-les-Bains" in by_address["dpo@aix.fr"].subject
    assert second_dpo.email in AccessRequestReminder.objects.get(access_request=soon).recipients


def test_a_closed_request_is_not_reminded(dpo):
    request = register(dpo)
    access_request_decide(request=request, by=dpo, decision="refused", legal_ground="others_rights",
                          now=dt.datetime(2026, 11, 20, 12, tzinfo=UTC))
    access_request_deliver(request=request, by=dpo, delivered_on=dt.date(2026, 11, 21), means="courrier",
                           now=dt.datetime(2026, 11, 21, 12, tzinfo=UTC))

    assert send(dt.date(2026, 12, 11)) == 0 and not mail.outbox


def test_an_extension_starts_the_reminders_again_for_the_new_deadline(dpo):
    request = register(dpo)
    assert send(dt.date(2026, 12, 5)) == 1
    access_request_extend(request=request, by=dpo, notice_on=dt.date(2026, 12, 5), notice="Demande complexe",
                          now=dt.datetime(2026, 12, 5, 12, tzinfo=UTC))

    assert send(dt.date(2026, 12, 9)) == 0  # new deadline 10/02/2027
    assert send(dt.date(2027, 2, 3)) == 1

    assert "échéance le 10/02/2027" in mail.outbox[-1].body and "prolongée" in mail.outbox[-1].body


def test_without_a_dpo_address_nothing_is_recorded_until_one_is_set(make_user):
    dpo = make_user("dpo.moreau", role="dpo")
    register(dpo)

    assert send(dt.date(2026, 12, 4)) == 0
    assert not AccessRequestReminder.objects.exists()
    assert not CustodyEvent.objects.filter(action="access_request.reminder_sent").exists()

    with_email(dpo, "dpo@mairie-chambery.fr")
    assert send(dt.date(2026, 12, 5)) == 1 and mail.outbox[0].to == ["dpo@mairie-chambery.fr"]


def test_a_failed_sending_records_nothing_and_is_tried_again(dpo, settings):
    register(dpo)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens

    with pytest.raises(OSError):
        send(dt.date(2026, 12, 4))
    assert not AccessRequestReminder.objects.exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send(dt.date(2026, 12, 4)) == 1


def test_the_beat_task_runs_the_service_and_is_scheduled_daily(dpo, settings):
    register(dpo, received_on=dt.date.today() - dt.timedelta(days=40))

    assert access_request_reminders.delay().get() == 1  # eager in tests, as the other tasks
    assert access_request_reminders.delay().get() == 0
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values()
                 if e["task"] == "disclosure.access_request_reminders")
    assert entry["schedule"] == 24 * 3600.0


# --- The dashboard block -------------------------------------------------------------------------

def test_the_dpo_dashboard_lists_open_requests_by_deadline_with_overdue_and_soon_marked(client, dpo, other_commune):
    today = dt.date.today()
    overdue = register(dpo, received_on=today - dt.timedelta(days=40), name="Personne en retard")
    soon = register(dpo, received_on=today - dt.timedelta(days=27), name="Personne bientôt")
    later = register(dpo, received_on=today - dt.timedelta(days=1), name="Personne plus tard")
    register(other_commune["dpo"], received_on=today - dt.timedelta(days=35), name="Personne d'Aix")
    sign_in(client, dpo)

    page = html.unescape(client.get(reverse("dashboard")).content.decode())

    block = page[page.index('id="access-request-deadlines"'):]
    block = block[:block.index("</section>")]
    assert "Échéances des demandes d'accès" in page
    rows = block.split("<tr class=")[1:]
    assert [r.split('"')[1] for r in rows] == ["deadline-overdue", "deadline-soon", "deadline-later"]
    assert "Personne en retard" in rows[0] and "dépassée de" in rows[0]
    assert "Personne bientôt" in rows[1] and "Personne plus tard" in rows[2]
    for r in (overdue, soon, later):
        assert reverse("access-request-detail", args=[r.pk]) in block
    assert "Personne d'Aix" not in page


@pytest.mark.parametrize("role", ["officer", "supervisor", "legal", "mayor"])
def test_other_roles_do_not_get_the_deadlines_block(client, make_user, dpo, role):
    register(dpo, received_on=dt.date.today() - dt.timedelta(days=40))
    sign_in(client, make_user(f"u.{role}", role=role, matricule="X1" if role == "officer" else ""))

    page = html.unescape(client.get(reverse("dashboard")).content.decode())

    assert "Échéances des demandes d'accès" not in page and "Mme Requérante" not in page


def test_without_today_the_day_is_the_communes_own(dpo):
    register(dpo)  # deadline 10/12/2026; Chambéry is on Europe/Paris time

    # 23:30 UTC on 2 December is already 3 December in Chambéry: seven days left.
    assert access_request_reminders_send(now=dt.datetime(2026, 12, 2, 22, 30, tzinfo=UTC)) == 0
    assert access_request_reminders_send(now=dt.datetime(2026, 12, 2, 23, 30, tzinfo=UTC)) == 1
    assert "au 03/12/2026" in mail.outbox[0].body


def test_each_dpo_is_reminded_in_the_language_they_chose_french_by_default(dpo, make_user, client):
    english = with_email(make_user("dpo.english", role="dpo"), "dpo.en@mairie-chambery.fr")
    # The language switcher, used signed in, keeps the choice on the account (pages keep the cookie).
    sign_in(client, english)
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302 and client.cookies["django_language"].value == "en"
    english.refresh_from_db()
    dpo.refresh_from_db()
    assert (english.language, dpo.language) == ("en", "")
    overdue = register(dpo, received_on=dt.date(2026, 11, 1))   # due 01/12
    register(dpo, received_on=dt.date(2026, 11, 5))             # due 05/12

    assert send(dt.date(2026, 12, 3)) == 2

    by_address = {m.to[0]: m for m in mail.outbox}
    french, english_mail = by_address["dpo@mairie-chambery.fr"], by_address["dpo.en@mairie-chambery.fr"]
    assert french.subject == "[Témoin] 2 demande(s) d'accès à échéance — Police municipale de Chambéry"
    assert "Échéance dépassée (1) :" in french.body and "Échéance dans 2 jours au plus (1) :" in french.body
    assert (f"- demande n° {overdue.pk}, reçue le 01/11/2026, échéance le 01/12/2026 (dépassée de 2 jour(s)) : "
            f"https://temoin.mairie-chambery.fr/demandes-acces/{overdue.pk}/") in french.body
    assert english_mail.subject == "[Témoin] 2 access request(s) due — Police municipale de Chambéry"
    body = english_mail.body
    assert body.startswith("Access requests of Police municipale de Chambéry to handle (GDPR art. 12(3)")
    assert "Time limit passed (1):" in body and "Time limit within 2 days (1):" in body
    assert (f"- request no. {overdue.pk}, received on 01/11/2026, time limit 01/12/2026 (passed by 2 day(s)): "
            f"https://temoin.mairie-chambery.fr/demandes-acces/{overdue.pk}/") in body
    assert "(in 2 day(s)): " in body and "This reminder is sent once per threshold" in body
    assert not any(word in body for word in ("Échéance", "demande n°", "reçue", "dépassée"))

    # Back to French: the account follows.
    client.post(reverse("set_language"), {"language": "fr", "next": "/"})
    english.refresh_from_db()
    assert english.language == "fr"
