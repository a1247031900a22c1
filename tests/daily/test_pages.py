"""Issue 20, daily use of the pages, server side: dates, forms that keep what was typed, holds,
review rules, batch actions. Real PostgreSQL, real templates; the browser side is test_browser.py."""
import datetime as dt
import re
import zoneinfo

import pytest
import time_machine
from django.test import Client

from tests.auth import sign_in

pytestmark = pytest.mark.django_db
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def paris(*args):
    return dt.datetime(*args, tzinfo=PARIS)


def client_for(user):
    return sign_in(Client(), user)


def listed_ids(response) -> set[int]:
    return {int(pk) for pk in re.findall(r'href="/enregistrements/(\d+)/"', response.content.decode())}


# --- 1. Dates -------------------------------------------------------------------------------------

def test_the_until_date_of_the_list_includes_the_whole_day_in_local_time(officer, make_camera, make_recording):
    cam = make_camera("BWC-0042", officer=officer)
    first_minute = make_recording(cam, paris(2026, 12, 6, 0, 30), wearer=officer)   # 5 Dec 23:30 UTC
    evening = make_recording(cam, paris(2026, 12, 6, 23, 15), wearer=officer)       # 6 Dec 22:15 UTC
    make_recording(cam, paris(2026, 12, 7, 0, 10), wearer=officer)                  # the next day
    make_recording(cam, paris(2026, 12, 5, 23, 50), wearer=officer)                 # the day before

    response = client_for(officer).get("/", {"started_after": "2026-12-06", "started_before": "2026-12-06"})

    assert response.status_code == 200
    assert listed_ids(response) == {first_minute.pk, evening.pk}


def test_an_until_datetime_stays_exclusive_at_that_instant(officer, make_camera, make_recording):
    cam = make_camera("BWC-0042", officer=officer)
    before = make_recording(cam, paris(2026, 12, 6, 9, 0), wearer=officer)
    make_recording(cam, paris(2026, 12, 6, 10, 0), wearer=officer)

    response = client_for(officer).get("/", {"started_before": "2026-12-06T10:00:00+01:00"})

    assert listed_ids(response) == {before.pk}


def test_the_api_reads_a_day_alone_as_the_whole_day_too(officer, make_camera, make_recording):
    cam = make_camera("BWC-0042", officer=officer)
    evening = make_recording(cam, paris(2026, 12, 6, 23, 15), wearer=officer)
    make_recording(cam, paris(2026, 12, 7, 0, 10), wearer=officer)

    body = client_for(officer).get("/api/recordings/", {"started_before": "2026-12-06"}).json()

    assert [r["id"] for r in body["results"]] == [evening.pk]


@time_machine.travel(paris(2026, 12, 7, 0, 20), tick=False)  # 6 Dec 23:20 UTC: already the 7th in Paris
def test_the_shortcuts_are_local_days_and_today_finds_todays_recordings(officer, make_camera, make_recording):
    cam = make_camera("BWC-0042", officer=officer)
    today = make_recording(cam, paris(2026, 12, 7, 0, 5), wearer=officer)
    yesterday = make_recording(cam, paris(2026, 12, 6, 14, 0), wearer=officer)
    week_ago = make_recording(cam, paris(2026, 12, 1, 8, 0), wearer=officer)
    make_recording(cam, paris(2026, 11, 30, 8, 0), wearer=officer)
    client = client_for(officer)

    html = client.get("/").content.decode()
    links = dict((label, href.replace("&amp;", "&")) for href, label in
                 re.findall(r'<a class="chip" href="([^"]+)"[^>]*>([^<]+)</a>', html))

    assert links["Aujourd&#x27;hui"] == "?started_after=2026-12-07&started_before=2026-12-07"
    assert links["Hier"] == "?started_after=2026-12-06&started_before=2026-12-06"
    assert links["7 derniers jours"] == "?started_after=2026-12-01&started_before=2026-12-07"
    assert listed_ids(client.get("/" + links["Aujourd&#x27;hui"])) == {today.pk}
    assert listed_ids(client.get("/" + links["Hier"])) == {yesterday.pk}
    assert listed_ids(client.get("/" + links["7 derniers jours"])) == {today.pk, yesterday.pk, week_ago.pk}
