"""Retention, audit, access requests and tagging follow each recording's legal regime (issue 22):
videoprotection images a partner hands over are kept the period of its prefectoral authorisation,
at most one month, from the images' time (CSI L252-5); filmed people have a right of access to them
(CSI L253-5); they have no wearer or trigger reason to tag. Clocks are injected with time-machine:
the store refuses an erasure by a clock ahead of its own, so the whole machine's clock moves."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.dashboard.selectors import tagged_shares_for, to_complete_count_for
from evidence.disclosure import access_requests
from evidence.models import Recording
from evidence.requisitions.models import Requisition
from evidence.retention.holds import hold_place
from evidence.retention.sweep import retention_sweep
from evidence.review.selectors import recordings_to_complete_for

from ..auth import sign_in
from ..compliance.helpers import audit
from ..evidence.test_api import make_recording
from .conftest import api, requisition_body
from .test_bad_input import send

pytestmark = pytest.mark.django_db(transaction=True)

PARIS = ZoneInfo("Europe/Paris")


def local_midnight_after(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=PARIS)


def partner_file(issue, *, images_from: dt.datetime, images_to: dt.datetime | None = None, **extra) -> Recording:
    link = issue(period_start=images_from.isoformat(), period_end=(images_to or images_from).isoformat(), **extra)
    send(Client(), link["upload_url"], b"bus footage " * 2000, filename="bus-ligne-3.mp4")
    return Recording.objects.get(source="requisition")


def sweep_at(when: dt.datetime):
    with time_machine.travel(when, tick=True):
        return retention_sweep()


def test_a_partner_file_declared_p15d_is_erased_at_its_end_counted_from_the_images(issue, supervisor, local_store):
    images_from = timezone.now() - dt.timedelta(days=2)
    rec = partner_file(issue, images_from=images_from, retention="P15D")
    # Fifteen days from the day the images were recorded, not from the upload (CSI L252-5).
    end = local_midnight_after(images_from.astimezone(PARIS).date() + dt.timedelta(days=15))
    assert rec.regime == "videoprotection" and rec.retain_until == end
    assert "P15D" in rec.retention_basis and "L252-5" in rec.retention_basis
    requisition = Requisition.objects.get()
    assert requisition.retention == "P15D"
    assert api(supervisor).get(f"/api/requisitions/{requisition.pk}/").json()["retention"] == "P15D"

    before = sweep_at(end - dt.timedelta(minutes=5))
    assert rec.pk not in before.erased and Recording.objects.get(pk=rec.pk).status != "erased"
    assert local_store.exists(rec.store_key)

    after = sweep_at(end + dt.timedelta(minutes=1))
    assert rec.pk in after.erased and Recording.objects.get(pk=rec.pk).status == "erased"
    assert not local_store.exists(rec.store_key)
    assert CustodyEvent.objects.filter(recording=rec, action="recording.erased").exists()


def test_a_partner_file_without_a_declared_period_is_kept_one_month_at_most(issue, local_store):
    images_from = timezone.now() - dt.timedelta(days=1)
    rec = partner_file(issue, images_from=images_from)
    assert rec.retain_until == local_midnight_after(_plus_one_month(images_from.astimezone(PARIS).date()))
    assert Requisition.objects.get().retention == "P1M"


def _plus_one_month(day: dt.date) -> dt.date:
    import calendar

    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@pytest.mark.parametrize("declared", ["P2M", "P32D", "P5W", "PT745H", "P99999999999Y"])
def test_a_declared_period_above_one_month_is_refused_citing_l252_5(supervisor, declared):
    response = api(supervisor).post("/api/requisitions/", requisition_body(retention=declared), format="json")
    assert response.status_code == 400
    assert "L252-5" in response.json()["detail"] and "un mois" in response.json()["detail"]
    assert not Requisition.objects.exists()


def test_a_declared_period_is_for_videoprotection_only(supervisor):
    response = api(supervisor).post("/api/requisitions/", requisition_body(regime="body_worn", retention="P15D"),
                                    format="json")
    assert response.status_code == 400 and "R241-13" in response.json()["detail"]
    assert not Requisition.objects.exists()


def test_images_past_their_end_when_received_are_kept_a_few_days_for_a_hold(issue, local_store, settings):
    settings.TEMOIN_LATE_DOCKING_GRACE = "P3D"
    images_from = timezone.now() - dt.timedelta(days=20)
    before_upload = timezone.now()
    rec = partner_file(issue, images_from=images_from, retention="P15D")
    # Received for a procedure after their regime's end: not erased at receipt, kept three days.
    assert before_upload + dt.timedelta(days=3) <= rec.retain_until <= timezone.now() + dt.timedelta(days=3)
    assert "hold" in rec.retention_basis
    assert sweep_at(rec.retain_until + dt.timedelta(minutes=1)).erased == [rec.pk]


def test_a_held_partner_file_is_kept_past_its_end(issue, supervisor, local_store):
    rec = partner_file(issue, images_from=timezone.now() - dt.timedelta(days=1), retention="P15D")
    hold_place(by=supervisor, procedure="judicial", reference="PV 2026/1234", recording=rec,
               motif="images requises par l'enquête")

    report = sweep_at(rec.retain_until + dt.timedelta(days=2))
    assert rec.pk in report.held and rec.pk not in report.erased
    assert Recording.objects.get(pk=rec.pk).status != "erased" and local_store.exists(rec.store_key)


def test_the_audit_flags_a_partner_recording_kept_past_its_regime(issue, local_store, settings):
    settings.TEMOIN_COMPLIANCE_GRACE = "PT0S"
    rec = partner_file(issue, images_from=timezone.now() - dt.timedelta(days=1), retention="P15D")
    lawful_end = rec.retain_until
    code, out = audit()
    assert code == 0, out

    # Planted: the end moved a month later than the authorisation allows (as a wrong setting would).
    Recording.objects.filter(pk=rec.pk).update(retain_until=lawful_end + dt.timedelta(days=30))
    _, out_before = audit()
    with time_machine.travel(lawful_end + dt.timedelta(hours=1), tick=True):
        code, out = audit()
    assert "ok   retention.regime" in out_before  # its lawful end has not come yet
    assert code != 0 and "FAIL retention.regime" in out
    assert f"recording {rec.pk} [" in out and "durée P15D, CSI L252-5" in out


def test_access_request_candidates_list_a_partner_recording_with_its_regime(issue, local_store, make_user, camera):
    images_from = timezone.now() - dt.timedelta(hours=3)
    rec = partner_file(issue, images_from=images_from, images_to=images_from + dt.timedelta(hours=1))
    body_worn = make_recording(camera=camera, started_at=images_from + dt.timedelta(minutes=10))
    make_recording(camera=camera, started_at=images_from - dt.timedelta(days=3))  # outside the window
    dpo = make_user("dpo.leroy", role="dpo")
    request = access_requests.access_request_register(
        by=dpo, requester_name="Jean Martin", identity_checked=True, identity_check_method="carte d'identité",
        received_on=timezone.localdate(), description="Bus ligne 3, arrêt Gare",
        window_start=images_from - dt.timedelta(minutes=30), window_end=images_from + dt.timedelta(minutes=30),
        place=[45.5712, 5.9199], radius_m=200, officer="M042")

    response = api(dpo).get(f"/api/access-requests/{request.pk}/candidates/")
    assert response.status_code == 200, response.content
    results = {c["id"]: c for c in response.json()["results"]}
    assert rec.pk in results and body_worn.pk not in results  # the body-worn clip has no position near
    assert results[rec.pk]["regime"] == "videoprotection" and results[rec.pk]["source"] == "requisition"
    (searched,) = CustodyEvent.objects.filter(action="access_request.searched")
    assert searched.details["regimes"] == {"videoprotection": [rec.pk]}
    # The DPO's page shows the regime beside each candidate.
    page = Client()
    sign_in(page, dpo)
    html = page.get(reverse("access-request-detail", args=[request.pk]), {"rechercher": "1"}).content.decode()
    row = html[html.index(f'name="recordings" value="{rec.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "vidéoprotection" in row and "CSI L253-5" in row

    # The decision rests on CSI L253-5; prevention of offences is not one of its grounds.
    access_requests.access_request_select(request=request, by=dpo, recordings=[rec])
    with pytest.raises(access_requests.DisclosureError, match="L253-5"):
        access_requests.access_request_decide(request=request, by=dpo, decision="partial", legal_ground="offences")
    access_requests.access_request_decide(request=request, by=dpo, decision="partial", legal_ground="others_rights")
    (decided,) = CustodyEvent.objects.filter(action="access_request.decided")
    assert decided.details["legal_basis"] == "CSI L253-5"
    assert "droit des tiers" in decided.details["ground_l253_5"]
    assert api(dpo).get(f"/api/access-requests/{request.pk}/").json()["legal_basis"] == "CSI L253-5"
    html = page.get(reverse("access-request-detail", args=[request.pk])).content.decode()
    facts = html[html.index("<dl>"):html.index("</dl>")]
    assert "CSI L253-5" in facts[facts.index("Fondement"):][:200]
    assert "droit des tiers (CSI L253-5)" in facts and "LIL art. 107" not in facts
    # GDPR art. 12(3) for both regimes: one month from receipt.
    assert request.deadline == _plus_one_month(timezone.localdate())


def test_the_to_complete_queue_and_tagging_figures_leave_partner_recordings_out(issue, local_store, supervisor,
                                                                                  camera):
    rec = partner_file(issue, images_from=timezone.now() - dt.timedelta(hours=3))
    untagged = make_recording(camera=camera, trigger_reason="")
    assert rec.wearer is None and rec.trigger_reason == ""

    queue = list(recordings_to_complete_for(user=supervisor).values_list("pk", flat=True))
    assert untagged.pk in queue and rec.pk not in queue
    assert to_complete_count_for(user=supervisor) == 1
    service, wearers = tagged_shares_for(user=supervisor)
    assert service.total == 1 and service.tagged == 0


def _decision_form(page, request) -> str:
    html = page.get(reverse("access-request-detail", args=[request.pk])).content.decode()
    return html[html.index('action="' + reverse("access-request-decide", args=[request.pk])):].split("</form>")[0]


def test_the_decision_form_offers_the_grounds_of_the_selected_recordings_regime(issue, local_store, make_user,
                                                                                 camera):
    images_from = timezone.now() - dt.timedelta(hours=3)
    partner = partner_file(issue, images_from=images_from, images_to=images_from + dt.timedelta(hours=1))
    body_worn = make_recording(camera=camera, started_at=images_from + dt.timedelta(minutes=10))
    dpo = make_user("dpo.leroy", role="dpo")
    request = access_requests.access_request_register(
        by=dpo, requester_name="Jean Martin", identity_checked=True, identity_check_method="carte d'identité",
        received_on=timezone.localdate(), description="Bus ligne 3, arrêt Gare")
    page = Client()
    sign_in(page, dpo)

    # Body-worn images: LIL art. 107 II, its five grounds, prevention of offences (2°) among them.
    access_requests.access_request_select(request=request, by=dpo, recordings=[body_worn])
    form = _decision_form(page, request)
    assert "LIL art. 107 II" in form and "CSI L253-5" not in form
    assert 'value="offences"' in form and form.count("(LIL art. 107 II ") == 5
    with pytest.raises(access_requests.DisclosureError, match=r"LIL art\. 107 II\)"):
        access_requests.access_request_decide(request=request, by=dpo, decision="partial")

    # Videoprotection images only: CSI L253-5's four grounds in its own words, no LIL 107 II at all.
    access_requests.access_request_select(request=request, by=dpo, recordings=[partner])
    form = _decision_form(page, request)
    assert "LIL" not in form and 'value="offences"' not in form
    assert form.count("(CSI L253-5)</option>") == 4 and "droit des tiers (CSI L253-5)" in form
    assert "l'accès est de droit (CSI L253-5)" in form
    with pytest.raises(access_requests.DisclosureError, match=r"\(CSI L253-5\)\.$"):
        access_requests.access_request_decide(request=request, by=dpo, decision="refused")

    # Both: only the grounds L253-5 knows, each worded under both articles.
    access_requests.access_request_select(request=request, by=dpo, recordings=[partner, body_worn])
    form = _decision_form(page, request)
    assert 'value="offences"' not in form and "LIL art. 107 II et CSI L253-5" in form
    assert ("protéger les droits et libertés d'autrui (LIL art. 107 II 5°) ; droit des tiers (CSI L253-5)"
            in form.replace("&#x27;", "'"))

    # The same choice in English.
    page.cookies["django_language"] = "en"
    access_requests.access_request_select(request=request, by=dpo, recordings=[partner])
    form = _decision_form(page, request)
    assert "(CSI L253-5)</option>" in form and "LIL" not in form and "Videoprotection" in form


def test_the_daily_erasure_notice_lists_a_partner_file_which_has_no_recording_time(issue, supervisor, local_store,
                                                                                    settings):
    from django.core import mail

    from evidence.retention.notices import retention_notice_send

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    supervisor.email = "chef@mairie-chambery.fr"
    supervisor.save(update_fields=["email"])
    rec = partner_file(issue, images_from=timezone.now() - dt.timedelta(days=14), retention="P15D")
    assert rec.started_at is None

    assert retention_notice_send() == 1
    assert (f"n° {rec.pk}, caméra PARTNER-RESEAU-DE-BUS-STAC, images de réquisition — effacement le "
            f"{timezone.localtime(rec.retain_until):%d/%m/%Y %H:%M}") in mail.outbox[0].body
