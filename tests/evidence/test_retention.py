"""Retention (CSI L241-2, R241-13): erased one calendar month after the day of recording, unless held."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import CustodyEvent
from evidence.ingest.services import offload_item_pull, offload_session_finish, offload_session_start
from evidence.retention import RetentionRefused
from evidence.retention.holds import hold_place, hold_release
from evidence.retention.notices import retention_notice_send
from evidence.retention.objects import recording_store_keys
from evidence.retention.policy import organisation_set_retention
from evidence.retention.sweep import recording_erase, retention_sweep
from evidence.integrations.store import RetentionViolation
from evidence.models import Recording

pytestmark = pytest.mark.django_db(transaction=True)
PARIS = ZoneInfo("Europe/Paris")


def paris(*args):
    return dt.datetime(*args, tzinfo=PARIS)


def ingest(make_volume, clip, started_at: dt.datetime, *, intervention="", name="a.mp4", tags=True):
    """Offload one clip through the real pipeline, with the clock set to the evening of recording."""
    sidecar = {"started_at": started_at.isoformat(), "intervention": intervention, "officer": "M042"}
    if tags:
        sidecar.update(trigger_reason="incident", subject_notified=True)
    volume = make_volume("BWC-0042", {name: clip}, {name.rsplit(".", 1)[0] + ".json": sidecar})
    ingest_time = started_at + dt.timedelta(hours=6)
    session = offload_session_start(volume=volume, now=ingest_time)
    item = offload_item_pull(item=session.items.get(), now=ingest_time)
    offload_session_finish(session=session, now=ingest_time)
    return Recording.objects.get(pk=item.recording_id)


def sweep(now):
    return retention_sweep(now=now)


@pytest.mark.parametrize("year, last_day", [(2024, 29), (2025, 28)], ids=["leap-year", "common-year"])
def test_recording_of_31_january_is_kept_through_february_and_erased_on_1_march(
    year, last_day, make_volume, clip_library, camera, local_store
):
    rec = ingest(make_volume, clip_library["h264"], paris(year, 1, 31, 10, 0))
    assert rec.retain_until == paris(year, 3, 1)
    keys = [k for k, _ in recording_store_keys(rec)]
    assert len(keys) == 4  # original, playback copy, poster, sidecar

    assert sweep(paris(year, 3, 1) - dt.timedelta(days=1, hours=12)).erased == []  # day 29
    assert sweep(paris(year, 2, last_day, 23, 59, 59)).erased == []

    report = sweep(paris(year, 3, 1, 0, 0, 1))

    assert report.erased == [rec.pk]
    rec.refresh_from_db()
    assert rec.status == Recording.Status.ERASED and rec.erased_at == paris(year, 3, 1, 0, 0, 1)
    # Tombstone: identifiers, hash, size, dates, wearer, camera and the rule remain.
    assert rec.sha256 and rec.size and rec.started_at and rec.wearer_id and rec.camera_id
    assert "P1M" in rec.erasure_rule and "R241-13" in rec.erasure_rule
    assert rec.location is None and rec.playback_key == ""
    assert not any(local_store.exists(k) for k in keys)
    event = CustodyEvent.objects.get(recording=rec, action="recording.erased")
    assert event.actor_label == "system:retention" and sorted(event.details["keys"]) == sorted(keys)


def test_erasure_removes_every_version_of_every_object_from_the_s3_endpoint(make_volume, clip_library, camera, s3_store):
    rec = ingest(make_volume, clip_library["h264"], paris(2025, 1, 31, 10, 0))
    keys = [k for k, _ in recording_store_keys(rec)]

    sweep(paris(2025, 3, 1, 0, 0, 1))

    assert Recording.objects.get(pk=rec.pk).status == Recording.Status.ERASED
    listing = s3_store.client.list_object_versions(Bucket=s3_store.bucket)
    remaining = {v["Key"] for v in listing.get("Versions", []) + listing.get("DeleteMarkers", [])}
    assert remaining.isdisjoint(keys)


def test_held_recording_survives_and_is_erased_at_the_first_sweep_after_release(
    make_volume, clip_library, camera, make_user, local_store
):
    supervisor, lawyer = make_user("chef", role="supervisor"), make_user("juriste", role="legal")
    rec = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 22, 0))
    hold = hold_place(by=supervisor, procedure="judicial", reference="PV 2025/118", recording=rec,
                               now=paris(2025, 3, 4))
    assert local_store.head(rec.store_key).legal_hold is True

    report = sweep(paris(2025, 6, 1))

    assert report.held == [rec.pk] and report.erased == []
    assert local_store.exists(rec.store_key)

    hold_release(hold=hold, by=lawyer, motif="classement sans suite", now=paris(2025, 6, 2))
    assert local_store.head(rec.store_key).legal_hold is False

    assert sweep(paris(2025, 6, 2, 1, 0)).erased == [rec.pk]
    actions = list(CustodyEvent.objects.filter(recording=rec).values_list("action", flat=True))
    assert actions[-4:] == ["hold.placed", "hold.released", "recording.erasure_started", "recording.erased"]


def test_intervention_hold_covers_recordings_ingested_after_it(make_volume, clip_library, camera, make_user, local_store):
    lawyer = make_user("juriste", role="legal")
    first = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 22, 0), intervention="PM-7")
    hold_place(by=lawyer, procedure="disciplinary", reference="CD-12", intervention="PM-7",
                        now=paris(2025, 3, 4))
    later = ingest(make_volume, clip_library["hevc"], paris(2025, 3, 3, 23, 0), intervention="PM-7", name="b.mp4")
    other = ingest(make_volume, clip_library["mjpeg"], paris(2025, 3, 3, 23, 30), name="c.avi")

    report = sweep(paris(2025, 6, 1))

    assert sorted(report.held) == sorted([first.pk, later.pk]) and report.erased == [other.pk]
    assert local_store.head(later.store_key).legal_hold is True


def test_a_hold_placed_while_the_sweep_runs_wins(make_volume, clip_library, camera, make_user, local_store, monkeypatch):
    lawyer = make_user("juriste", role="legal")
    first = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 20, 0))
    second = ingest(make_volume, clip_library["hevc"], paris(2025, 3, 3, 21, 0), name="b.mp4")
    from evidence.retention import sweep as sweep_module

    real_batch = sweep_module._erase_batch

    def a_lawyer_places_a_hold_after_the_first_batch(ids, **kwargs):
        real_batch(ids, **kwargs)
        if ids == [first.pk]:  # the sweep listed `second` as due and unheld before this
            hold_place(by=lawyer, procedure="judicial", reference="PV 9", recording=second)

    monkeypatch.setattr(sweep_module, "_erase_batch", a_lawyer_places_a_hold_after_the_first_batch)
    report = retention_sweep(now=paris(2025, 6, 1), batch_size=1)

    assert report.erased == [first.pk]
    assert [pk for pk, why in report.refused if "held" in why] == [second.pk]
    assert Recording.objects.get(pk=second.pk).status == Recording.Status.READY
    assert local_store.exists(second.store_key) and local_store.exists(second.playback_key)


def test_the_store_refuses_an_object_under_legal_hold_even_if_the_database_check_is_bypassed(
    make_volume, clip_library, camera, make_user, local_store
):
    rec = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 20, 0))
    local_store.set_legal_hold(rec.store_key, "", True)  # as a hold placed elsewhere would

    report = sweep(paris(2025, 6, 1))

    assert report.erased == [] and "legal hold" in report.refused[0][1]
    assert local_store.exists(rec.store_key)


def test_erasure_before_the_end_or_under_hold_is_refused_even_for_an_administrator(
    make_volume, clip_library, camera, make_user, local_store
):
    admin, lawyer = make_user("root", role="admin"), make_user("juriste", role="legal")
    rec = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 22, 0))

    with pytest.raises(RetentionRefused):
        recording_erase(recording=rec, by=admin, now=paris(2025, 3, 20))
    with pytest.raises(RetentionViolation):
        local_store.delete(rec.store_key, now=paris(2025, 3, 20))
    with pytest.raises(RetentionRefused, match="future"):
        recording_erase(recording=rec, by=admin, now=dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc))

    hold_place(by=lawyer, procedure="administrative", reference="A-1", recording=rec)
    with pytest.raises(RetentionRefused, match="held"):
        recording_erase(recording=rec, by=admin, now=paris(2025, 6, 1))
    with pytest.raises(RetentionViolation):
        local_store.delete(rec.store_key, now=paris(2025, 6, 1))
    assert local_store.exists(rec.store_key)


def test_a_crash_mid_sweep_then_a_rerun_erases_each_recording_once(make_volume, clip_library, camera, local_store, monkeypatch):
    recs = [ingest(make_volume, clip_library[c], paris(2025, 3, 3, 20 + i, 0), name=f"{c}.{'avi' if c == 'mjpeg' else 'mp4'}")
            for i, c in enumerate(["h264", "hevc", "mjpeg"])]
    real_delete = type(local_store).delete
    calls = {"n": 0}

    def power_cut_during_the_second_recording(self, key, *, now):
        calls["n"] += 1
        if calls["n"] == 6:  # first recording's 4 objects gone, second half-way: the process dies
            raise SystemExit("power cut")
        return real_delete(self, key, now=now)

    monkeypatch.setattr(type(local_store), "delete", power_cut_during_the_second_recording)
    with pytest.raises(SystemExit):
        sweep(paris(2025, 6, 1))
    monkeypatch.setattr(type(local_store), "delete", real_delete)
    assert not local_store.exists(recs[0].store_key)  # deleted before the crash...
    # ...after the intent was logged: the log is true although the completion never came.
    assert {Recording.objects.get(pk=r.pk).status for r in recs} == {Recording.Status.ERASING}
    assert CustodyEvent.objects.filter(action="recording.erasure_started").count() == 3
    assert not CustodyEvent.objects.filter(action="recording.erased").exists()

    report = sweep(paris(2025, 6, 1))

    assert sorted(report.erased) == sorted(r.pk for r in recs)
    for rec in recs:
        assert Recording.objects.get(pk=rec.pk).status == Recording.Status.ERASED
        assert CustodyEvent.objects.filter(recording=rec, action="recording.erasure_started").count() == 1
        assert CustodyEvent.objects.filter(recording=rec, action="recording.erased").count() == 1
        assert not any(local_store.exists(k) for k, _ in recording_store_keys(rec))
    assert sweep(paris(2025, 6, 1)).erased == []


def test_sweep_command_dry_run_lists_without_erasing_and_refuses_a_future_clock(
    make_volume, clip_library, camera, local_store, capsys
):
    rec = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 22, 0), tags=False)

    call_command("retention", "sweep", "--now", "2025-06-01T00:00:00+02:00", "--dry-run")

    out = capsys.readouterr().out
    assert "would erase 1" in out and f"#{rec.pk} BWC-0042" in out and "[à compléter]" in out
    assert Recording.objects.get(pk=rec.pk).status == Recording.Status.READY
    with pytest.raises(CommandError, match="future"):
        call_command("retention", "sweep", "--now", "2999-01-01T00:00:00+00:00")


def test_a_french_commune_cannot_leave_the_legal_month(org, local_store):
    """CSI L241-2, R241-13: the period is the law's; a longer one would lock personal data irreversibly."""
    with pytest.raises(RetentionRefused, match="R241-13"):
        organisation_set_retention(organisation=org, retention="P1Y")
    with pytest.raises(CommandError, match="one month"):
        call_command("retention", "policy", org.slug, "--set", "P1Y")
    org.refresh_from_db()
    assert org.retention == "P1M" and not CustodyEvent.objects.filter(action="organisation.retention_changed").exists()


def test_longer_policy_extends_locks_and_a_shorter_one_never_shortens_them(
    make_volume, clip_library, camera, org, local_store, monkeypatch
):
    # An organisation under another legal framework declares its own period (ARCHITECTURE.md §1).
    org.jurisdiction = "custom"
    org.save(update_fields=["jurisdiction"])
    rec = ingest(make_volume, clip_library["h264"], dt.datetime.now(PARIS) - dt.timedelta(days=2))
    before = rec.retain_until

    moved = organisation_set_retention(organisation=org, retention="P90D", basis="Illinois: 90 jours")

    rec.refresh_from_db()
    assert moved == 1 and rec.retain_until > before + dt.timedelta(days=55)
    assert local_store.head(rec.store_key).retain_until == rec.retain_until
    assert local_store.head(rec.playback_key).retain_until == rec.retain_until

    organisation_set_retention(organisation=org, retention="P31D")

    extended = rec.retain_until
    rec.refresh_from_db()
    assert rec.retain_until == extended and local_store.head(rec.store_key).retain_until == extended
    changes = CustodyEvent.objects.filter(action="organisation.retention_changed")
    assert [(e.details["old"], e.details["new"]) for e in changes] == [("P1M", "P90D"), ("P90D", "P31D")]


def test_holds_need_the_right_role_a_reference_and_a_motif_to_release(make_volume, clip_library, camera, officer, make_user, local_store):
    supervisor = make_user("chef", role="supervisor")
    rec = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 22, 0))

    with pytest.raises(PermissionError):
        hold_place(by=officer, procedure="judicial", reference="PV 1", recording=rec)
    with pytest.raises(ValueError, match="reference"):
        hold_place(by=supervisor, procedure="judicial", reference=" ", recording=rec)
    with pytest.raises(ValueError, match="procedure"):
        hold_place(by=supervisor, procedure="curiosity", reference="PV 1", recording=rec)
    hold = hold_place(by=supervisor, procedure="judicial", reference="PV 1", recording=rec)
    with pytest.raises(PermissionError):
        hold_release(hold=hold, by=supervisor, motif="fin")
    with pytest.raises(ValueError, match="motif"):
        hold_release(hold=hold, by=make_user("juriste", role="legal"), motif="")


def test_daily_notice_tells_supervisors_what_will_be_erased_untagged_first(make_volume, clip_library, camera, make_user, local_store, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    chef = make_user("chef", role="supervisor")
    chef.email = "chef@mairie-chambery.fr"
    chef.save()
    tagged = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 20, 0))
    untagged = ingest(make_volume, clip_library["hevc"], paris(2025, 3, 3, 21, 0), name="b.mp4", tags=False)

    sent = retention_notice_send(now=paris(2025, 4, 2, 8, 0))

    assert sent == 1 and mail.outbox[0].to == ["chef@mairie-chambery.fr"]
    body = mail.outbox[0].body
    assert body.index(f"n° {untagged.pk}") < body.index(f"n° {tagged.pk}")
    assert "À COMPLÉTER" in body and "2 enregistrement(s)" in body


def test_erasure_appears_in_the_register_with_the_rule_applied(make_volume, clip_library, camera, make_user, local_store):
    from .test_api import api

    rec = ingest(make_volume, clip_library["h264"], paris(2025, 1, 31, 10, 0))
    sweep(paris(2025, 3, 1, 0, 0, 1))

    body = api(make_user("maire", role="mayor")).get("/api/register/?kind=erasure").json()

    entries = [e for e in body["results"] if e["recording"] == rec.pk]
    assert len(entries) == 1 and entries[0]["action"] == "recording.erased"
    assert "R241-13" in entries[0]["details"]["rule"]
    detail = api(make_user("chef", role="supervisor")).get(f"/api/recordings/{rec.pk}/").json()
    assert detail["status"] == "erased" and "R241-13" in detail["retention_rule"]


def test_the_daily_notice_is_in_each_supervisors_language_french_by_default(make_volume, clip_library, camera,
                                                                             make_user, local_store, settings):
    from accounts.services import user_language_set

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    chefs = {}
    for name, language in (("chef", None), ("chef.adjoint", "fr"), ("chief", "en")):
        chefs[name] = make_user(name, role="supervisor")
        chefs[name].email = f"{name}@mairie-chambery.fr"
        chefs[name].save()
        if language:
            user_language_set(user=chefs[name], language=language)
    tagged = ingest(make_volume, clip_library["h264"], paris(2025, 3, 3, 20, 0))
    untagged = ingest(make_volume, clip_library["hevc"], paris(2025, 3, 3, 21, 0), name="b.mp4", tags=False)

    assert retention_notice_send(now=paris(2025, 4, 2, 8, 0)) == 2

    by_to = {tuple(m.to): m for m in mail.outbox}
    french = by_to[("chef@mairie-chambery.fr", "chef.adjoint@mairie-chambery.fr")]
    english = by_to[("chief@mairie-chambery.fr",)]
    assert french.subject == "[Témoin] 2 effacement(s) dans les 72 heures — Police municipale de Chambéry"
    assert french.body.startswith("2 enregistrement(s) seront effacés dans les 72 prochaines heures (CSI R241-13), "
                                  "dont 1 non qualifiés :")
    assert f"- À COMPLÉTER n° {untagged.pk}, caméra BWC-0042, 03/03/2025 21:00 — effacement le " in french.body
    assert english.subject == "[Témoin] 2 erasure(s) in the next 72 hours — Police municipale de Chambéry"
    assert english.body.startswith("2 recording(s) will be erased in the next 72 hours (CSI R241-13), 1 of them "
                                   "not tagged:")
    assert f"- TO COMPLETE no. {untagged.pk}, camera BWC-0042, 03/03/2025 21:00 — erased on " in english.body
    assert f"- no. {tagged.pk}, camera BWC-0042, 03/03/2025 20:00 — erased on " in english.body
    assert "place a hold for the procedure" in english.body
    assert not any(word in english.body for word in ("effacement", "caméra", "COMPLÉTER"))
