"""The mayor's yearly summary (issue 20): figures by month from the organisation's own rows and
register entries, a chart, a PDF; the mayor lands on it after signing in."""
import datetime as dt

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.services import organisation_create
from audit.services import custody_event_append
from devices.services import camera_register
from evidence.disclosure.access_requests import access_request_register
from tests.auth import sign_in
from tests.evidence.test_api import make_recording

pytestmark = pytest.mark.django_db

YEAR = timezone.localdate().year
PARIS = dt.timezone(dt.timedelta(hours=1))


def _at(month: int, day: int = 10, hour: int = 12) -> dt.datetime:
    return dt.datetime(YEAR, month, day, hour, tzinfo=PARIS)


@pytest.fixture
def year_of_work(org, camera, officer, make_user):
    mayor = make_user("maire", role="mayor")
    dpo = make_user("dpo.moreau", role="dpo")
    recs = [make_recording(camera=camera, wearer=officer, started_at=_at(m)) for m in (1, 1, 3)]
    # 1 January 00:30 in Paris is still 31 December in UTC: it counts in January, in the service's time.
    recs.append(make_recording(camera=camera, wearer=officer, started_at=dt.datetime(YEAR, 1, 1, 0, 30, tzinfo=PARIS)))
    make_recording(camera=camera, wearer=officer, started_at=dt.datetime(YEAR - 1, 6, 1, 12, tzinfo=PARIS))
    with transaction.atomic():
        for action, month, n in (("recording.consulted", 2, 3), ("recording.extracted", 3, 1),
                                 ("recording.erased", 2, 2)):
            for _i in range(n):
                custody_event_append(action=action, subject=recs[0], organisation=org, actor=mayor,
                                     now=_at(month))
        access_request_register(by=dpo, requester_name="M. Dupont", identity_checked=True,
                                identity_check_method="carte d'identité", received_on=dt.date(YEAR, 1, 5),
                                description="Contrôle routier", now=_at(1, 5))
    # Another commune's figures never appear.
    aix = organisation_create(slug="aix", name="Aix")
    aix_cam = camera_register(serial="AIX-1", organisation=aix, model="Demo")
    make_recording(camera=aix_cam, started_at=_at(1))
    return mayor


def test_the_summary_counts_each_month_for_the_mayors_organisation(year_of_work):
    from evidence.dashboard.annual import annual_summary_for

    s = annual_summary_for(user=year_of_work, year=YEAR)
    jan, feb, mar = s.months[0], s.months[1], s.months[2]
    assert (jan["recordings"], jan["access_requests"], mar["recordings"]) == (3, 1, 1)
    assert (feb["consultations"], feb["erasures"], mar["extractions"]) == (3, 2, 1)
    assert s.totals == {"recordings": 4, "consultations": 3, "extractions": 1, "access_requests": 1, "erasures": 2}
    assert annual_summary_for(user=year_of_work, year=YEAR - 1).totals["recordings"] == 1


def test_the_page_shows_the_chart_and_the_table_and_the_pdf_has_the_figures(year_of_work):
    client = sign_in(Client(), year_of_work)
    page = client.get(f"/bilan-annuel/?annee={YEAR}").content.decode()
    assert f"Bilan annuel {YEAR}" in page and 'id="annual-table"' in page
    assert page.count('<rect class="bar"') == 12 and "<title>janvier : 3</title>" in page
    response = client.get(f"/bilan-annuel/?annee={YEAR}&format=pdf")
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="bilan-annuel-{YEAR}.pdf"' in response["Content-Disposition"]
    # No PDF text reader among the dependencies: the document's header and its title (Info dict).
    assert response.content.startswith(b"%PDF-") and f"Bilan annuel {YEAR}".encode() in response.content


def test_only_the_mayor_reads_the_summary(year_of_work, make_user, officer):
    for role in ("supervisor", "dpo", "legal", "admin"):
        assert sign_in(Client(), make_user(f"u.{role}", role=role)).get("/bilan-annuel/").status_code == 403
    assert sign_in(Client(), officer).get("/bilan-annuel/").status_code == 403


def test_the_mayor_lands_on_the_summary_after_signing_in(year_of_work, officer, settings):
    settings.TEMOIN_REQUIRE_TOTP = False
    response = Client().post("/connexion/", {"username": "maire", "password": "Témoin-demo-2026"})
    assert response.status_code == 302 and response["Location"] == "/bilan-annuel/"
    response = Client().post("/connexion/", {"username": officer.username, "password": "Témoin-demo-2026"})
    assert response["Location"] == "/tableau-de-bord/"
