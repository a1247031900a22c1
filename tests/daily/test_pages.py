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


# --- 2. Forms keep what was typed after an error ------------------------------------------------

def _untagged(officer, make_camera, make_recording):
    cam = make_camera("BWC-0042", officer=officer)
    return make_recording(cam, paris(2026, 12, 6, 10, 0), wearer=officer, tagged=False)


def test_a_refused_tagging_keeps_the_motif_and_the_answer_in_the_queue(officer, make_camera, make_recording):
    rec = _untagged(officer, make_camera, make_recording)
    client = client_for(officer)

    page = client.post(f"/enregistrements/{rec.pk}/etiquettes/", {
        "trigger_reason": "risk_of_incident", "subject_notified": "false", "notice_omitted_reason": "",
        "intervention": "PM-2026-77", "next": "/a-completer/"}, follow=True).content.decode()

    rec.refresh_from_db()
    assert rec.trigger_reason == "" and rec.subject_notified is None  # refused: nothing saved
    assert "indiquez pourquoi les personnes filmées" in page
    assert '<option value="risk_of_incident" selected>' in page
    assert 'name="subject_notified" value="false" checked' in page
    assert f'id="in-{rec.pk}" name="intervention" value="PM-2026-77"' in page
    # Shown once: the next visit shows the recording's own (empty) values again.
    again = client.get("/a-completer/").content.decode()
    assert '<option value="risk_of_incident" selected>' not in again


def test_a_refused_tagging_keeps_what_was_typed_on_the_recording_page(officer, make_camera, make_recording):
    rec = _untagged(officer, make_camera, make_recording)

    page = client_for(officer).post(f"/enregistrements/{rec.pk}/etiquettes/", {
        "trigger_reason": "incident", "subject_notified": "false", "notice_omitted_reason": ""},
        follow=True).content.decode()

    assert '<option value="incident" selected>' in page
    assert 'name="subject_notified" value="false" checked' in page


@pytest.fixture
def dpo_request(make_user):
    from evidence.disclosure import access_requests

    dpo = make_user("dpo.leroy", role="dpo")
    r = access_requests.access_request_register(by=dpo, requester_name="Jean Martin", identity_checked=True,
                                           identity_check_method="passeport", received_on=dt.date(2026, 12, 1),
                                           description="Contrôle du soir, place du Palais")
    return dpo, r


def test_a_refused_access_request_decision_keeps_the_decision_and_its_note(dpo_request):
    dpo, r = dpo_request
    client = client_for(dpo)

    page = client.post(f"/demandes-acces/{r.pk}/decision/", {
        "decision": "refused", "legal_ground": "", "note": "Procédure judiciaire en cours, PV 2026/88"},
        follow=True).content.decode()

    r.refresh_from_db()
    assert r.decision == ""  # refused: a refusal states its legal ground (LIL art. 107 II)
    assert "fondement légal" in page
    assert "Procédure judiciaire en cours, PV 2026/88</textarea>" in page
    assert '<option value="refused" selected>' in page


@time_machine.travel(paris(2026, 12, 7, 9, 0), tick=False)
def test_received_on_is_prefilled_in_the_format_the_date_field_accepts(make_user):
    dpo = make_user("dpo.leroy", role="dpo")

    page = client_for(dpo).get("/demandes-acces/nouvelle/").content.decode()

    assert re.search(r'<input type="date" name="received_on" value="2026-12-07"', page)


# --- 3. Holds visible ---------------------------------------------------------------------------

@pytest.fixture
def held(officer, make_user, make_camera, make_recording, local_store):
    from evidence.retention.holds import hold_place

    legal = make_user("juriste", role="legal")
    cam = make_camera("BWC-0042", officer=officer)
    kept = make_recording(cam, paris(2026, 12, 6, 10, 0), wearer=officer)
    free = make_recording(cam, paris(2026, 12, 6, 11, 0), wearer=officer)
    hold = hold_place(by=legal, procedure="judicial", reference="PV 2026/1234", recording=kept,
                      motif="Réquisition du parquet")
    return {"legal": legal, "kept": kept, "free": free, "hold": hold}


def test_a_held_recording_shows_its_erasure_suspended_with_the_holds_reference_and_motif(officer, held):
    page = client_for(officer).get(f"/enregistrements/{held['kept'].pk}/").content.decode()

    assert "Effacement suspendu" in page
    assert "PV 2026/1234" in page and "Réquisition du parquet" in page
    free = client_for(officer).get(f"/enregistrements/{held['free'].pk}/").content.decode()
    assert "Effacement suspendu" not in free


def test_a_released_hold_no_longer_suspends_the_erasure_on_the_page(officer, held):
    from evidence.retention.holds import hold_release

    hold_release(hold=held["hold"], by=held["legal"], motif="Classement sans suite")

    page = client_for(officer).get(f"/enregistrements/{held['kept'].pk}/").content.decode()
    assert "Effacement suspendu" not in page


def test_the_list_has_a_hold_column_and_a_hold_filter(officer, held):
    client = client_for(officer)

    page = client.get("/").content.decode()
    assert "PV 2026/1234" in page
    assert listed_ids(client.get("/", {"hold": "held"})) == {held["kept"].pk}
    assert listed_ids(client.get("/", {"hold": "not_held"})) == {held["free"].pk}


@pytest.mark.parametrize("role", ["supervisor", "legal", "dpo", "mayor"])
def test_the_holds_page_lists_the_holds_in_force_of_ones_own_organisation_only(
        role, held, make_user, other_org, make_camera, make_recording):
    from evidence.retention.holds import hold_place, hold_release

    other_legal = make_user("juriste.annecy", role="legal", organisation=other_org)
    other_cam = make_camera("BWC-9000", organisation=other_org)
    hold_place(by=other_legal, procedure="disciplinary", reference="ANNECY-DISC-7",
               recording=make_recording(other_cam, paris(2026, 12, 6, 9, 0)))
    released = hold_place(by=held["legal"], procedure="administrative", reference="ADM-RELEASED",
                          recording=held["free"])
    hold_release(hold=released, by=held["legal"], motif="fin de procédure")
    reader = make_user(f"lecteur.{role}", role=role)

    response = client_for(reader).get("/conservations/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "PV 2026/1234" in page and "Réquisition du parquet" in page
    assert "ANNECY-DISC-7" not in page  # another organisation's holds are never shown
    assert "ADM-RELEASED" not in page  # released: no longer in force


@pytest.mark.parametrize("role", ["officer", "admin"])
def test_officers_and_the_administrator_have_no_holds_page(role, make_user, held):
    assert client_for(make_user(f"x.{role}", role=role)).get("/conservations/").status_code == 403


def test_legal_staff_release_a_hold_from_the_holds_page(held):
    client = client_for(held["legal"])

    response = client.post(f"/conservations/{held['hold'].pk}/levee/", {"motif": "Jugement rendu", "next": "holds"})

    held["hold"].refresh_from_db()
    assert response.status_code == 302 and response["Location"] == "/conservations/"
    assert held["hold"].released_at is not None and held["hold"].release_motif == "Jugement rendu"


# --- 4. Review and batch actions ----------------------------------------------------------------

def consult(recording, user):
    """Open a consultation as the player does (motif first, logged); the row needs a playback copy."""
    from evidence.access import services

    type(recording).objects.filter(pk=recording.pk).update(playback_key=f"playback/{recording.pk}.mp4",
                                                           poster_key=f"posters/{recording.pk}.jpg")
    recording.refresh_from_db()
    return services.consultation_open(recording=recording, by=user, motif="Contrôle hiérarchique")


@pytest.fixture
def service(officer, make_user, make_camera, make_recording):
    chef = make_user("chef.bernard", role="supervisor")
    cam = make_camera("BWC-0042", officer=officer)
    recs = [make_recording(cam, paris(2026, 12, 6, 8 + i, 0), wearer=officer) for i in range(3)]
    return chef, recs


def test_marking_reviewed_a_recording_never_consulted_by_the_reviewer_is_refused_in_french(service):
    from audit.models import CustodyEvent

    chef, (rec, *_others) = service
    page = client_for(chef).post(f"/enregistrements/{rec.pk}/revue/", {"state": "reviewed"}, follow=True)

    rec.refresh_from_db()
    assert rec.review_state == "unreviewed"
    assert "consultez la vidéo avant de la marquer revue" in page.content.decode()
    assert not CustodyEvent.objects.filter(action="recording.reviewed").exists()


def test_the_api_refuses_the_same_review_with_the_same_reason(service):
    chef, (rec, *_others) = service
    response = client_for(chef).post(f"/api/recordings/{rec.pk}/review/", {"state": "reviewed"},
                                     content_type="application/json")
    assert response.status_code == 400 and "consultez la vidéo" in response.json()["detail"]


def test_marking_reviewed_an_untagged_recording_is_refused_even_after_consulting_it(service, make_recording):
    chef, (rec, *_others) = service
    type(rec).objects.filter(pk=rec.pk).update(trigger_reason="", subject_notified=None)
    consult(rec, chef)

    page = client_for(chef).post(f"/enregistrements/{rec.pk}/revue/", {"state": "reviewed"}, follow=True)

    rec.refresh_from_db()
    assert rec.review_state == "unreviewed"
    assert "À compléter" in page.content.decode() and "doit être complétée avant la revue" in page.content.decode()


def test_a_consulted_and_tagged_recording_is_marked_reviewed_and_logged(service):
    from audit.models import CustodyEvent

    chef, (rec, *_others) = service
    consult(rec, chef)

    client_for(chef).post(f"/enregistrements/{rec.pk}/revue/", {"state": "reviewed"})

    rec.refresh_from_db()
    assert (rec.review_state, rec.reviewed_by) == ("reviewed", chef)
    assert CustodyEvent.objects.get(action="recording.reviewed").details["to"] == "reviewed"


def test_a_flag_still_needs_no_consultation(service):
    chef, (rec, *_others) = service
    client_for(chef).post(f"/enregistrements/{rec.pk}/revue/", {"state": "flagged", "note": "À voir"})
    rec.refresh_from_db()
    assert rec.review_state == "flagged"


def test_batch_review_marks_the_eligible_ones_logs_each_and_names_the_refused(service):
    from audit.models import CustodyEvent

    chef, (a, b, c) = service
    consult(a, chef)
    consult(b, chef)

    page = client_for(chef).post("/revue/lot/", {"ids": [a.pk, b.pk, c.pk]}, follow=True).content.decode()

    states = dict(type(a).objects.filter(pk__in=[a.pk, b.pk, c.pk]).values_list("pk", "review_state"))
    assert states == {a.pk: "reviewed", b.pk: "reviewed", c.pk: "unreviewed"}
    events = CustodyEvent.objects.filter(action="recording.reviewed").order_by("seq")
    assert sorted(e.recording_id for e in events) == [a.pk, b.pk] and all(e.actor == chef for e in events)
    assert "2 enregistrement(s) marqué(s) revu(s)" in page
    assert f"Enregistrement n° {c.pk} : consultez la vidéo" in page


def test_batch_review_ignores_recordings_of_another_organisation(service, other_org, make_user, make_camera,
                                                                 make_recording):
    chef, _recs = service
    foreign = make_recording(make_camera("BWC-9000", organisation=other_org), paris(2026, 12, 6, 9, 0))

    client_for(chef).post("/revue/lot/", {"ids": [foreign.pk]})

    foreign.refresh_from_db()
    assert foreign.review_state == "unreviewed"


def test_batch_tagging_tags_the_ticked_recordings_and_logs_each_one(officer, make_user, make_camera, make_recording):
    from audit.models import CustodyEvent

    cam = make_camera("BWC-0042", officer=officer)
    a, b, untouched = (make_recording(cam, paris(2026, 12, 6, 8 + i, 0), wearer=officer, tagged=False)
                       for i in range(3))
    colleague = make_user("agent.durand", matricule="M043")
    theirs = make_recording(make_camera("BWC-0043", officer=colleague), paris(2026, 12, 6, 9, 0),
                            wearer=colleague, tagged=False)

    page = client_for(officer).post("/a-completer/lot/", {
        "ids": [a.pk, b.pk, theirs.pk], "trigger_reason": "risk_of_incident", "subject_notified": "true"},
        follow=True).content.decode()

    tags = dict((pk, (t, n)) for pk, t, n in type(a).objects.values_list("pk", "trigger_reason", "subject_notified"))
    assert tags[a.pk] == tags[b.pk] == ("risk_of_incident", True)
    assert tags[untouched.pk] == tags[theirs.pk] == ("", None)  # another wearer's recording is not theirs to tag
    assert sorted(e.recording_id for e in CustodyEvent.objects.filter(action="recording.tagged")) == [a.pk, b.pk]
    assert "2 enregistrement(s) qualifié(s)" in page


def test_batch_tagging_refused_keeps_the_choices_and_the_ticks(officer, make_camera, make_recording):
    cam = make_camera("BWC-0042", officer=officer)
    a = make_recording(cam, paris(2026, 12, 6, 8, 0), wearer=officer, tagged=False)

    page = client_for(officer).post("/a-completer/lot/", {
        "ids": [a.pk], "trigger_reason": "incident", "subject_notified": "false", "notice_omitted_reason": ""},
        follow=True).content.decode()

    a.refresh_from_db()
    assert a.trigger_reason == ""
    assert "indiquez pourquoi les personnes filmées" in page
    assert re.search(rf'value="{a.pk}" form="batch-tag" checked', page)
    assert re.search(r'<select id="bt-tr" name="trigger_reason">.*<option value="incident" selected>', page, re.S)


def test_thumbnails_on_the_queue_are_consultations_logged_with_their_motif(officer, make_camera, make_recording):
    from audit.models import CustodyEvent

    cam = make_camera("BWC-0042", officer=officer)
    rec = make_recording(cam, paris(2026, 12, 6, 8, 0), wearer=officer, tagged=False,
                         playback_key="playback/x.mp4", poster_key="posters/x.jpg")
    client = client_for(officer)
    assert "<img" not in client.get("/a-completer/").content.decode()  # no media before the button

    page = client.post("/a-completer/", {"action": "thumbnails"}).content.decode()

    event = CustodyEvent.objects.get(action="recording.consulted")
    assert event.recording_id == rec.pk and event.actor == officer and "vignettes" in event.motif
    assert re.search(r'<img class="thumb" src="/media/c/[^"]+/poster"', page)


@pytest.mark.parametrize("role", ["officer", "legal", "dpo", "mayor", "admin"])
def test_only_the_head_of_service_reviews_in_batch(role, service, make_user):
    _chef, (rec, *_others) = service
    response = client_for(make_user(f"x.{role}", role=role)).post("/revue/lot/", {"ids": [rec.pk]})
    rec.refresh_from_db()
    assert response.status_code == 403 and rec.review_state == "unreviewed"


@pytest.mark.parametrize("role", ["legal", "dpo", "mayor", "admin"])
def test_only_wearers_and_their_supervisor_tag_in_batch(role, officer, make_user, make_camera, make_recording):
    rec = make_recording(make_camera("BWC-0042", officer=officer), paris(2026, 12, 6, 8, 0), wearer=officer,
                         tagged=False)
    response = client_for(make_user(f"x.{role}", role=role)).post("/a-completer/lot/", {
        "ids": [rec.pk], "trigger_reason": "incident", "subject_notified": "true"})
    rec.refresh_from_db()
    assert response.status_code == 403 and rec.trigger_reason == ""


# --- 6. Words and charts ------------------------------------------------------------------------

def test_the_hours_axis_of_a_few_minutes_a_day_has_distinct_labels_not_zeros():
    from evidence.dashboard import charts
    from evidence.dashboard.selectors import DayHours

    days = [DayHours(day=dt.date(2026, 12, d), hours=h, recordings=1) for d, h in ((5, 0.02), (6, 0.08), (7, 0.05))]
    labels = [t.label for t in charts.hours_chart(days, title="Mes heures").y_ticks]

    assert len(set(labels)) == len(labels) and labels[0] == "0"
    assert labels[-1] == "0,10" and "0,0" not in labels and labels[1] == "0,02"


def test_the_custody_report_reads_as_french_without_empty_fields_raw_changes_or_paths(officer, make_camera,
                                                                                        make_recording):
    """The PDF is drawn from this same report (audit.pdf.custody_report_pdf)."""
    from audit.selectors import recording_custody_report
    from audit.services import custody_event_append
    from evidence.review import services

    officer.first_name, officer.last_name = "Julie", "Martin"
    officer.save()
    rec = make_recording(make_camera("BWC-0042", officer=officer), paris(2026, 12, 6, 10, 0), wearer=officer,
                         tagged=False)
    custody_event_append(action="recording.stored", subject=rec, actor_label="system",
                         details={"duplicate_of": None, "store_key": "originals/BWC-0042/abc.mp4",
                                  "volume": "/srv/dock/slot-1", "sha256": rec.sha256})
    services.recording_tag(recording=rec, by=officer, changes={"trigger_reason": "risk_of_incident",
                                                                "subject_notified": True})

    report = recording_custody_report(recording=rec, user=officer)
    text = " ".join(" ".join(map(str, e.values())) for e in report["events"]) + " ".join(
        f"{k} {v}" for k, v in report["identifiers"]) + report["how_to_verify"]

    assert "None" not in text and "duplicate_of" not in text
    assert "trigger_reason" not in text and "['" not in text
    assert "motif de déclenchement : — → risque d'incident" in text
    assert "personnes filmées informées : — → oui" in text
    assert "originals/" not in text and "/srv/" not in text and "docs/" not in text
    assert "Julie Martin (agent porteur)" in text and "user:" not in text
    assert re.search(r"06/12/2026 10:00:00 CET", text)  # local time, named


def test_the_register_page_shows_names_and_local_times(officer, make_user, make_camera, make_recording):
    from evidence.access import services

    legal = make_user("juriste", role="legal")
    legal.first_name, legal.last_name = "Claire", "Petit"
    legal.save()
    rec = make_recording(make_camera("BWC-0042", officer=officer), paris(2026, 12, 6, 10, 0), wearer=officer,
                         playback_key="playback/x.mp4")
    with time_machine.travel(dt.datetime(2026, 12, 6, 21, 30, tzinfo=dt.timezone.utc), tick=False):
        services.consultation_open(recording=rec, by=legal, motif="Réquisition PV 2026/77")

    page = client_for(legal).get("/registre/").content.decode()

    assert "Claire Petit (" in page  # the name and the role, not the login
    assert "user:juriste" not in page
    assert "06/12/2026 22:30:00" in page  # 21:30 UTC is 22:30 in Paris


def test_words_periods_and_counts_read_as_french(officer, make_camera, make_recording):
    from django.template import Context, Template

    render = Template("{% load temoin %}{{ a|period_words }}|{{ b|period_words }}|{{ c|period_words }}")
    assert render.render(Context({"a": "P1M", "b": "P31D", "c": "P1Y"})) == "1 mois|31 jours|1 an"
    page = client_for(officer).get("/").content.decode()
    assert "P1M" not in page and "après 1 mois" in page


@pytest.mark.parametrize("path,role", [("/", "officer"), ("/a-completer/", "officer"), ("/conservations/", "legal"),
                                       ("/revue/", "supervisor")])
def test_the_new_words_are_translated_in_the_english_interface(path, role, held, make_user, officer):
    from tests.test_i18n import choose_language, untranslated

    user = officer if role == "officer" else make_user(f"en.{role}", role=role)
    client = client_for(user)
    choose_language(client, "en")

    page = client.get(path).content.decode()

    assert "Skip to content" in page
    assert untranslated(page) == [], untranslated(page)


def test_the_api_filters_on_holds_in_force_too(officer, held):
    body = client_for(officer).get("/api/recordings/", {"hold": "held"}).json()
    assert [r["id"] for r in body["results"]] == [held["kept"].pk]
    assert client_for(officer).get("/api/recordings/", {"hold": "maybe"}).status_code == 400


# --- 3 (continued). A judicial extraction asks for the reference and proposes the hold -------------

def test_a_judicial_extraction_with_its_reference_places_the_proposed_hold(held, make_user, local_store):
    from audit.models import CustodyEvent
    from evidence.disclosure.models import Extraction
    from evidence.models import Hold

    rec = held["free"]
    chef = make_user("chef.bernard", role="supervisor")
    client = client_for(chef)
    form = client.get(f"/enregistrements/{rec.pk}/extraction/").content.decode()
    assert 'name="reference"' in form and re.search(r'name="place_hold" checked', form)

    client.post(f"/enregistrements/{rec.pk}/extraction/", {
        "purpose": "judicial", "recipient": "Parquet de Chambéry", "motif": "Réquisition", "redaction": "none",
        "scope": "recording", "kind": "file", "reference": "PV 2026/555", "place_hold": "on"})

    hold = Hold.objects.get(recording=rec)
    assert (hold.procedure, hold.reference, hold.released_at) == ("judicial", "PV 2026/555", None)
    assert Extraction.objects.get(recording=rec).motif == "Réquisition — réf. PV 2026/555"
    assert CustodyEvent.objects.filter(action="hold.placed", recording=rec).exists()
    page = client.get(f"/enregistrements/{rec.pk}/").content.decode()
    assert "Effacement suspendu" in page and "PV 2026/555" in page


def test_an_extraction_without_the_hold_ticked_places_none(held, make_user, local_store):
    from evidence.models import Hold

    rec = held["free"]
    client_for(make_user("chef.bernard", role="supervisor")).post(f"/enregistrements/{rec.pk}/extraction/", {
        "purpose": "judicial", "recipient": "Parquet", "motif": "Réquisition", "redaction": "none",
        "scope": "recording", "kind": "file", "reference": "PV 2026/556"})
    assert not Hold.objects.filter(recording=rec).exists()
