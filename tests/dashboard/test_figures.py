"""The dashboard's figures, computed by the database from known recordings."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from evidence.dashboard import charts, selectors
from evidence.models import Recording

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def _hours(days):
    return {d.day: round(d.hours, 4) for d in days}


def test_hours_per_day_follow_the_organisations_calendar_days_across_the_autumn_change_of_time(
        make_user, make_camera, make_recording):
    # Europe/Paris leaves summer time on Sunday 25 October 2026 at 03:00 CEST (01:00 UTC): that day
    # lasts 25 hours. Local days, not UTC days, are what the service reads on its dashboard.
    chef = make_user("chef", role="supervisor")
    agent = make_user("agent.a", matricule="A1")
    cam = make_camera("BWC-0100", officer=agent)
    make_recording(cam, dt.datetime(2026, 10, 23, 21, 59, tzinfo=UTC), 600, wearer=agent)   # 23:59 CEST on the 23rd
    make_recording(cam, dt.datetime(2026, 10, 23, 22, 0, tzinfo=UTC), 1800, wearer=agent)   # 00:00 CEST on the 24th
    make_recording(cam, dt.datetime(2026, 10, 24, 21, 30, tzinfo=UTC), 3600, wearer=agent)  # 23:30 CEST on the 24th
    make_recording(cam, dt.datetime(2026, 10, 24, 22, 30, tzinfo=UTC), 5400, wearer=agent)  # 00:30 CEST on the 25th
    make_recording(cam, dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC), 900, wearer=agent)    # 02:30 CEST, first pass
    make_recording(cam, dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC), 900, wearer=agent)    # 02:30 CET, second pass
    make_recording(cam, dt.datetime(2026, 10, 25, 22, 59, tzinfo=UTC), 7200, wearer=agent)  # 23:59 CET on the 25th
    make_recording(cam, dt.datetime(2026, 10, 25, 23, 0, tzinfo=UTC), 360, wearer=agent)    # 00:00 CET on the 26th

    days = selectors.hours_per_day_for(user=chef, now=dt.datetime(2026, 10, 26, 10, 0, tzinfo=UTC), days=3)

    assert [d.day for d in days] == [dt.date(2026, 10, 24), dt.date(2026, 10, 25), dt.date(2026, 10, 26)]
    assert _hours(days) == {dt.date(2026, 10, 24): 1.5, dt.date(2026, 10, 25): 4.0, dt.date(2026, 10, 26): 0.1}
    assert [d.recordings for d in days] == [2, 4, 1]  # the 23rd (local) is outside the three days


def test_hours_per_day_follow_the_spring_change_of_time_and_another_time_zone(
        org, make_user, make_camera, make_recording):
    # 29 March 2026: Paris skips from 02:00 to 03:00 (a 23-hour day). New York changed on 8 March.
    chef = make_user("chef", role="supervisor")
    cam = make_camera("BWC-0101")
    make_recording(cam, dt.datetime(2026, 3, 28, 22, 30, tzinfo=UTC), 3600)  # Paris: 23:30 CET the 28th; NY: 18:30 the 28th
    make_recording(cam, dt.datetime(2026, 3, 28, 23, 30, tzinfo=UTC), 1800)  # Paris: 00:30 CET the 29th; NY: 19:30 the 28th
    make_recording(cam, dt.datetime(2026, 3, 29, 21, 59, tzinfo=UTC), 1800)  # Paris: 23:59 CEST the 29th; NY: 17:59 the 29th
    make_recording(cam, dt.datetime(2026, 3, 29, 22, 0, tzinfo=UTC), 720)    # Paris: 00:00 CEST the 30th; NY: 18:00 the 29th
    now = dt.datetime(2026, 3, 30, 12, 0, tzinfo=UTC)

    assert _hours(selectors.hours_per_day_for(user=chef, now=now, days=3)) == {
        dt.date(2026, 3, 28): 1.0, dt.date(2026, 3, 29): 1.0, dt.date(2026, 3, 30): 0.2}

    org.time_zone = "America/New_York"
    org.save(update_fields=["time_zone"])
    chef.refresh_from_db()
    assert _hours(selectors.hours_per_day_for(user=chef, now=now, days=3)) == {
        dt.date(2026, 3, 28): 1.5, dt.date(2026, 3, 29): 0.7, dt.date(2026, 3, 30): 0.0}


def test_an_officers_hours_are_their_own_and_failed_or_duplicate_rows_do_not_count(
        make_user, make_camera, make_recording):
    a = make_user("agent.a", matricule="A1")
    b = make_user("agent.b", matricule="B1")
    cam = make_camera("BWC-0102")
    at = dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    make_recording(cam, at, 3600, wearer=a)
    make_recording(cam, at + dt.timedelta(hours=2), 7200, wearer=b)
    make_recording(cam, at + dt.timedelta(hours=4), 1800, wearer=a, status=Recording.Status.FAILED)
    make_recording(cam, at + dt.timedelta(hours=5), 1800, wearer=a, status=Recording.Status.DUPLICATE)

    days = selectors.hours_per_day_for(user=a, now=at + dt.timedelta(hours=6), days=30)

    assert len(days) == 30 and days[-1].day == dt.date(2026, 11, 20)
    assert (days[-1].hours, days[-1].recordings) == (1.0, 1)
    assert sum(d.hours for d in days) == 1.0


def test_the_administrator_gets_no_recording_figures(make_user, make_camera, make_recording):
    admin = make_user("admin", role="admin")
    cam = make_camera("BWC-0103")
    at = dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    make_recording(cam, at, 3600)
    assert sum(d.recordings for d in selectors.hours_per_day_for(user=admin, now=at, days=30)) == 0
    assert selectors.tagged_share_by_wearer_for(user=admin) == []
    assert selectors.tagged_share_for_service_for(user=admin).total == 0
    assert selectors.erasures_outlook_for(user=admin, now=at, hours=24 * 60).total == 0


def test_share_fully_tagged_per_wearer_and_for_the_service(make_user, make_camera, make_recording):
    chef = make_user("chef", role="supervisor")
    a = make_user("agent.a", matricule="A1")
    b = make_user("agent.b", matricule="B1")
    cam = make_camera("BWC-0104")
    at = dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    # Agent A: 3 fully tagged, 1 missing the trigger reason → 3/4.
    for i in range(3):
        make_recording(cam, at + dt.timedelta(minutes=i), wearer=a)
    make_recording(cam, at, wearer=a, trigger_reason="")
    # Agent B: notified=False without the reason (incomplete), notified=False with it (complete),
    # notified unknown (incomplete) → 1/3. An erased one does not count any more.
    make_recording(cam, at, wearer=b, subject_notified=False, notice_omitted_reason="")
    make_recording(cam, at, wearer=b, subject_notified=False, notice_omitted_reason="personne en fuite")
    make_recording(cam, at, wearer=b, tagged=False)
    make_recording(cam, at, wearer=b, tagged=False, status=Recording.Status.ERASED)
    # Wearer unknown: always "to complete" (CSI R241-10).
    make_recording(cam, at, wearer=None)

    shares = {s.label: (s.tagged, s.total) for s in selectors.tagged_share_by_wearer_for(user=chef)}
    service = selectors.tagged_share_for_service_for(user=chef)

    assert shares == {"agent.a (A1)": (3, 4), "agent.b (B1)": (1, 3), "Agent porteur inconnu": (0, 1)}
    assert (service.tagged, service.total, service.to_complete) == (4, 8, 4)
    assert service.label == "Police municipale de Chambéry"
    # The officer's own figures, and the same count as their "to complete" queue.
    own = selectors.tagged_share_for_service_for(user=b)
    assert (own.tagged, own.total) == (1, 3)
    assert selectors.to_complete_count_for(user=b) == 2
    # Lowest share first: who needs a reminder.
    assert [s.label for s in selectors.tagged_share_by_wearer_for(user=chef)][0] == "Agent porteur inconnu"


def test_erasures_within_72_hours_by_day_with_the_untagged_counted_and_holds_excluded(
        make_user, make_camera, make_recording):
    from django.db import transaction

    from evidence.retention.holds import hold_place

    chef = make_user("chef", role="supervisor")
    a = make_user("agent.a", matricule="A1")
    cam = make_camera("BWC-0105")
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    start = now - dt.timedelta(days=30)
    make_recording(cam, start, wearer=a, retain_until=now + dt.timedelta(hours=3))
    make_recording(cam, start, wearer=a, retain_until=now + dt.timedelta(hours=30), tagged=False)
    make_recording(cam, start, wearer=a, retain_until=now + dt.timedelta(hours=50))
    make_recording(cam, start, wearer=a, retain_until=now + dt.timedelta(hours=71), tagged=False)
    make_recording(cam, start, wearer=a, retain_until=now + dt.timedelta(hours=80))  # later than 72 h
    held = make_recording(cam, start, wearer=a, retain_until=now + dt.timedelta(hours=5))
    with transaction.atomic():
        hold_place(by=chef, procedure="judicial", reference="PV 2026/9", motif="réquisition",
                            recording=held)

    outlook = selectors.erasures_outlook_for(user=chef, now=now, hours=72)

    assert (outlook.total, outlook.to_complete) == (4, 2)
    assert outlook.by_day == [(0, 24, 1), (24, 48, 1), (48, 72, 2)]
    assert [r.retain_until for r in outlook.first] == sorted(r.retain_until for r in outlook.first)
    assert held.pk not in {r.pk for r in outlook.first}


def test_hours_chart_has_labelled_axes_and_bars_proportional_to_the_hours():
    days = [selectors.DayHours(day=dt.date(2026, 11, 1) + dt.timedelta(days=i), hours=h, recordings=n)
            for i, (h, n) in enumerate([(0, 0), (1.5, 3), (3.0, 5), (0.75, 1)])]
    chart = charts.hours_chart(days, title="Heures")

    assert chart.y_ticks[-1].label == "5" and chart.y_ticks[0].label == "0"  # 3 h → axis up to 5 h
    heights = [b.height for b in chart.bars]
    assert heights[0] == 0 and heights[2] == pytest.approx(chart.plot_height * 3 / 5, abs=0.01)
    assert heights[1] == pytest.approx(heights[2] / 2, abs=0.01)
    assert all(b.y + b.height == pytest.approx(chart.bottom, abs=0.02) for b in chart.bars)
    assert chart.x_ticks[-1].label == "04/11"  # the latest day is always labelled
    assert (chart.x_title, chart.y_title) == ("Jour", "Heures")
    assert "5,2 heures" in chart.desc and "9 enregistrements" in chart.desc


def test_tagged_chart_puts_the_whole_service_first():
    shares = [selectors.TaggedShare(label="A", total=4, tagged=3)]
    service = selectors.TaggedShare(label="Service", total=10, tagged=5)
    chart = charts.tagged_share_chart(shares, service=service, title="Qualifiés")
    assert [b.label for b in chart.bars] == ["Service", "A"]
    assert chart.bars[0].css == "hbar hbar-low hbar-service"
    assert "5 enregistrements sur 10" in chart.desc


@pytest.mark.parametrize("peak, ticks", [(3.0, ["0", "1", "2", "3", "4", "5"]), (1.7, ["0", "0,5", "1", "1,5", "2"]),
                                         (2.2, ["0", "0,5", "1", "1,5", "2", "2,5"]), (8, ["0", "2", "4", "6", "8", "10"])])
def test_hours_axis_ticks_are_round_numbers(peak, ticks):
    days = [selectors.DayHours(day=dt.date(2026, 11, 1), hours=peak, recordings=1)]
    assert [t.label for t in charts.hours_chart(days, title="Heures").y_ticks] == ticks


def test_tagged_chart_bar_widths_are_the_shares():
    shares = [selectors.TaggedShare(label="A", total=4, tagged=3), selectors.TaggedShare(label="B", total=2, tagged=2)]
    chart = charts.tagged_share_chart(shares, title="Qualifiés")
    assert [b.width for b in chart.bars] == [pytest.approx(chart.plot_width * 0.75, abs=0.01),
                                             pytest.approx(chart.plot_width, abs=0.01)]
    assert [b.css for b in chart.bars] == ["hbar hbar-low", "hbar"]
    assert chart.bars[0].value_label == "75 % (3/4)"
    assert "5 enregistrements sur 6" in chart.desc


@pytest.mark.parametrize("value, expected", [(0, 1), (0.3, 0.5), (1, 1), (1.2, 2), (2.2, 2.5), (3, 5), (7, 10), (12, 20)])
def test_axis_maximum_is_a_round_number(value, expected):
    assert charts.nice_ceiling(value) == expected
