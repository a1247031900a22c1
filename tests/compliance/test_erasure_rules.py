"""Erasure that never stops and never loses a trace (CSI R241-13, R241-14): the defects found from
outside, each with the behaviour the law requires."""
import datetime as dt
import os

import pytest
from django.core.management import call_command
from django.db import OperationalError, transaction
from django.utils import timezone

from audit.models import Alert, CustodyEvent
from evidence.access.services import consultation_open, recording_access_grant
from evidence.ingest.services import offload_item_pull, offload_session_start
from evidence.retention import RetentionRefused
from evidence.retention.holds import hold_place, hold_release, recording_is_held
from evidence.retention.objects import recording_store_keys
from evidence.retention.sweep import retention_sweep
from evidence.review.services import annotation_add, recording_tag
from evidence.integrations.store import RetentionViolation
from evidence.models import Annotation, Recording
from evidence.retention import sweep as sweep_module

from .helpers import actions, dock, paris, rules, violations

pytestmark = pytest.mark.django_db(transaction=True)


def erasure_log(recording) -> list[str]:
    return [a for a in actions(recording) if a.startswith("recording.eras")]


def test_a_clip_docked_twice_is_erased_with_its_duplicate_and_every_later_erasure_goes_on(
    make_volume, clip_library, camera, local_store
):
    # Docked, then docked again before the wipe (the camera re-mounted with a new file time): the
    # second copy of the same bytes is a duplicate row with its own objects.
    [original] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0), keep=True)
    [duplicate] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0),
                       mtime=paris(2025, 3, 3, 23, 0))
    [later] = dock(make_volume, {"b.mp4": clip_library["hevc"]}, paris(2025, 3, 10, 20, 0))
    assert duplicate.status == Recording.Status.DUPLICATE and duplicate.duplicate_of_id == original.pk

    first = retention_sweep(now=paris(2025, 4, 5))

    assert sorted(first.erased) == sorted([original.pk, duplicate.pk]) and first.refused == []
    second = retention_sweep(now=paris(2025, 4, 12))
    assert second.erased == [later.pk]
    for rec in (original, duplicate, later):
        assert Recording.objects.get(pk=rec.pk).status == Recording.Status.ERASED
        assert erasure_log(rec) == ["recording.erasure_started", "recording.erased"]  # one intent, one completion
        assert not any(local_store.exists(k) for k, _ in recording_store_keys(rec))
    assert "erasure.logged" not in rules(violations(now=paris(2025, 4, 12)))


def test_a_failure_after_the_bytes_are_deleted_leaves_the_log_true_and_the_next_sweep_finishes(
    make_volume, clip_library, camera, local_store, monkeypatch
):
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))
    real_complete = sweep_module._erasure_complete

    def database_lost_before_completion(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(sweep_module, "_erasure_complete", database_lost_before_completion)
    report = retention_sweep(now=paris(2025, 4, 5))

    assert report.erased == [] and report.refused[0][0] == rec.pk  # reported, the sweep did not crash
    assert not local_store.exists(rec.store_key)  # the bytes are gone…
    assert erasure_log(rec) == ["recording.erasure_started"]  # …and the log already says so
    assert Recording.objects.get(pk=rec.pk).status == Recording.Status.ERASING
    # Past the grace period, the audit names an erasure begun and never finished.
    late = violations(now=timezone.now() + dt.timedelta(days=1))
    assert any(v.rule == "erasure.logged" and v.subject == f"recording {rec.pk}" for v in late)

    monkeypatch.setattr(sweep_module, "_erasure_complete", real_complete)
    assert retention_sweep(now=paris(2025, 4, 5)).erased == [rec.pk]
    assert erasure_log(rec) == ["recording.erasure_started", "recording.erased"]
    assert "erasure.logged" not in rules(violations(now=timezone.now() + dt.timedelta(days=1)))


def test_retagging_never_moves_a_recording_into_or_out_of_a_hold(
    make_volume, clip_library, camera, officer, make_user, local_store
):
    supervisor, lawyer = make_user("chef", role="supervisor"), make_user("juriste", role="legal")
    [held, other] = dock(make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"]},
                         paris(2025, 3, 3, 20, 0), intervention="INT-1")
    recording_tag(recording=other, by=officer, changes={"intervention": "INT-9"})
    hold = hold_place(by=supervisor, procedure="judicial", reference="PV 7", intervention="INT-1")
    assert list(hold.covered.all()) == [held]

    # The wearer moves the held recording to another intervention, and the other one into INT-1.
    recording_tag(recording=held, by=officer, changes={"intervention": "INT-2"})
    recording_tag(recording=other, by=officer, changes={"intervention": "INT-1"})

    assert recording_is_held(held) and not recording_is_held(other)
    assert local_store.head(held.store_key).legal_hold and not local_store.head(other.store_key).legal_hold
    assert retention_sweep(now=paris(2025, 4, 5)).erased == [other.pk]

    hold_release(hold=hold, by=lawyer, motif="classement sans suite")

    assert not any(local_store.head(k).legal_hold for k, _ in recording_store_keys(held))
    assert retention_sweep(now=paris(2025, 4, 6)).erased == [held.pk]


def test_a_package_goes_with_the_first_of_its_recordings_erased_and_its_share_link_with_it(
    make_volume, clip_library, camera, make_user, local_store, time_machine
):
    from evidence.disclosure import services as disclosure
    from evidence.disclosure import shares
    from evidence.disclosure.models import Export

    lawyer = make_user("juriste", role="legal")
    [held, unheld] = dock(make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"]},
                          timezone.now() - dt.timedelta(days=1))
    hold_place(by=lawyer, procedure="judicial", reference="PV 8", recording=held)
    export = disclosure.export_create(recordings=[held, unheld], by=lawyer, purpose="judicial",
                                      recipient="Tribunal judiciaire", motif="Réquisition PV 8")
    export.refresh_from_db()
    share, token = shares.share_create(export=export, by=lawyer, recipient="Greffe",
                                           expires_at=timezone.now() + dt.timedelta(days=7), max_downloads=1)
    assert export.status == Export.Status.READY and local_store.exists(export.store_key)
    shared_at = timezone.now()

    time_machine.move_to(unheld.retain_until + dt.timedelta(minutes=1))
    report = retention_sweep()

    export.refresh_from_db()
    assert report.erased == [unheld.pk] and report.exports_erased == [export.pk]
    assert export.status == Export.Status.ERASED and not local_store.exists(export.store_key)
    assert shares.share_unavailable_reason(shares.share_for_token(token=token), shared_at) == "gone"
    assert Recording.objects.get(pk=held.pk).status == Recording.Status.READY
    logged = list(CustodyEvent.objects.filter(subject_type="disclosure.export", subject_id=str(export.pk),
                                              action__startswith="export.eras").values_list("action", flat=True))
    assert logged == ["export.erasure_started", "export.erased"]


def test_comments_and_grants_go_with_the_images(make_volume, clip_library, camera, make_user, local_store):
    supervisor = make_user("chef", role="supervisor")
    investigator = make_user("enqueteur", role="officer", matricule="M100")
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))
    annotation_add(recording=rec, by=supervisor, at_seconds=1.0, text="M. X au téléphone, 06 12 34 56 78")
    recording_access_grant(grantee=investigator, by=supervisor, recordings=[rec], motif="enquête",
                                    until=timezone.now() + dt.timedelta(days=30))

    assert retention_sweep(now=paris(2025, 4, 5)).erased == [rec.pk]

    assert not Annotation.objects.filter(recording_id=rec.pk).exists()
    assert not rec.grants.exists()


def test_a_collection_left_receiving_by_a_dead_process_is_settled_then_erased_when_due(
    make_volume, clip_library, camera, local_store
):
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))
    # As a worker killed between writing its row and storing the bytes leaves it.
    Recording.objects.filter(pk=rec.pk).update(status=Recording.Status.RECEIVING)

    report = retention_sweep(now=paris(2025, 4, 5))

    assert report.settled == [rec.pk] and report.erased == [rec.pk]
    assert Recording.objects.get(pk=rec.pk).status == Recording.Status.ERASED
    assert actions(rec)[-3:] == ["recording.store_failed", "recording.erasure_started", "recording.erased"]


def test_an_s3_refusal_is_reported_alerted_and_retried_and_never_stops_the_others(
    make_volume, clip_library, camera, s3_store, monkeypatch
):
    from botocore.exceptions import ClientError

    [refused, erased] = dock(make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"]},
                             paris(2025, 3, 3, 20, 0))
    real_delete = s3_store.client.delete_object

    def store_clock_still_locks(**kwargs):
        # Stand-in for the store's own answer (what Ceph RGW says when its clock still locks the
        # version); our own check passed, the server's did not.
        if kwargs["Key"] == refused.store_key:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "forbidden by object lock"}},
                              "DeleteObject")
        return real_delete(**kwargs)

    monkeypatch.setattr(s3_store.client, "delete_object", store_clock_still_locks)
    report = retention_sweep(now=paris(2025, 4, 5))

    assert report.erased == [erased.pk] and [pk for pk, _ in report.refused] == [refused.pk]
    assert "refused by the store" in report.refused[0][1]
    assert Recording.objects.get(pk=refused.pk).status == Recording.Status.ERASING
    assert erasure_log(refused) == ["recording.erasure_started", "recording.erasure_failed"]
    alert = Alert.objects.get(kind=Alert.Kind.ERASURE_FAILED)
    assert alert.organisation_id == camera.organisation_id and f"n° {refused.pk}" in alert.message
    retention_sweep(now=paris(2025, 4, 5))  # the same refusal again: logged once
    assert erasure_log(refused) == ["recording.erasure_started", "recording.erasure_failed"]

    monkeypatch.setattr(s3_store.client, "delete_object", real_delete)
    assert retention_sweep(now=paris(2025, 4, 5)).erased == [refused.pk]
    assert erasure_log(refused) == ["recording.erasure_started", "recording.erasure_failed", "recording.erased"]


def test_the_sweep_never_begins_an_erasure_the_stores_clock_still_forbids(
    make_volume, clip_library, camera, local_store, monkeypatch, time_machine
):
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, timezone.now() - dt.timedelta(days=2))
    time_machine.move_to(rec.retain_until + dt.timedelta(seconds=30))  # just past midnight, our clock
    behind = timezone.now() - dt.timedelta(minutes=3)
    monkeypatch.setattr(type(local_store), "clock", lambda self: behind)  # a store whose clock runs late

    assert retention_sweep().erased == []
    assert erasure_log(rec) == [] and Recording.objects.get(pk=rec.pk).status == Recording.Status.READY

    monkeypatch.undo()
    assert retention_sweep().erased == [rec.pk]


def test_a_sidecar_keeps_its_version_and_a_hold_reaches_a_version_behind_a_delete_marker(
    make_volume, clip_library, camera, make_user, s3_store
):
    lawyer = make_user("juriste", role="legal")
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, timezone.now() - dt.timedelta(days=1))
    assert rec.sidecar_version_id
    s3_store.client.delete_object(Bucket=s3_store.bucket, Key=rec.sidecar_key)  # a delete marker on top

    hold_place(by=lawyer, procedure="judicial", reference="PV 9", recording=rec)

    assert s3_store.head(rec.sidecar_key, rec.sidecar_version_id).legal_hold is True


def test_the_store_refuses_a_hold_or_a_consultation_once_the_erasure_has_begun(
    make_volume, clip_library, camera, make_user, local_store, monkeypatch
):
    lawyer = make_user("juriste", role="legal")
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))
    monkeypatch.setattr(sweep_module, "_objects_delete", lambda rec, keys, now: sweep_module._Outcome(
        rec, keys, errors=[f"{rec.store_key}: simulated store outage"]))
    retention_sweep(now=paris(2025, 4, 5))
    rec.refresh_from_db()
    assert rec.status == Recording.Status.ERASING

    with pytest.raises(RetentionRefused, match="erasure is under way"):
        hold_place(by=lawyer, procedure="judicial", reference="PV 10", recording=rec)
    with pytest.raises(ValueError):
        consultation_open(recording=rec, by=lawyer, motif="vérification")


def test_another_log_retention_than_three_years_is_refused_at_start(settings):
    from config.checks import temoin_settings_check

    settings.CUSTODY_RETENTION_YEARS = 5
    assert "temoin.E006" in {e.id for e in temoin_settings_check(None)}
    settings.CUSTODY_RETENTION_BASIS = "Illinois Compiled Statutes 50 ILCS 706/10-20"
    assert "temoin.E006" not in {e.id for e in temoin_settings_check(None)}
    settings.CUSTODY_RETENTION_YEARS = 30
    assert "temoin.E005" in {e.id for e in temoin_settings_check(None)}


def test_a_french_commune_is_created_with_the_legal_month_and_another_period_is_another_framework(db):
    from django.core.management.base import CommandError

    from accounts.models import Organisation

    call_command("addorg", "annecy", "Police municipale d'Annecy")
    assert Organisation.objects.get(slug="annecy").jurisdiction == "fr"
    with pytest.raises(CommandError, match="one month"):
        call_command("addorg", "aix", "Aix", "--retention", "P1Y", "--jurisdiction", "fr")
    call_command("addorg", "chicago", "Chicago PD", "--retention", "P90D", "--basis", "50 ILCS 706/10-20")
    chicago = Organisation.objects.get(slug="chicago")
    assert chicago.jurisdiction == "custom" and chicago.retention_basis == "50 ILCS 706/10-20"


# --- A recording older than its month when docked: the camera's clock decides -------------------------

def test_a_camera_clock_measured_two_years_ahead_is_corrected(make_volume, clip_library, camera, local_store):
    ingest_at = paris(2025, 3, 4, 8, 0)
    ahead = dt.timedelta(days=730)
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0) + ahead,
                 ingest_at=ingest_at, device={"serial": "BWC-0042", "clock": (ingest_at + ahead).isoformat()})

    assert rec.retain_until == paris(2025, 4, 4)  # one month from the true day of recording
    assert "camera clock ahead by 730 d" in rec.retention_basis and not rec.docked_late


def test_a_clip_dated_before_the_previous_docking_proves_the_clock_wrong(make_volume, clip_library, camera, local_store):
    dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))
    # Docked again two days later with a new clip the camera dates two months back.
    ingest_at = paris(2025, 3, 5, 8, 0)
    [rec] = dock(make_volume, {"b.mp4": clip_library["hevc"]}, paris(2025, 1, 5, 20, 0), ingest_at=ingest_at)

    assert rec.retain_until == paris(2025, 4, 6)  # counted from the offload: its true time is unknown
    assert "camera clock behind" in rec.retention_basis


def test_a_camera_docked_late_with_a_right_clock_keeps_its_old_clip_a_few_days_for_a_decision(
    make_volume, clip_library, camera, local_store, settings
):
    settings.TEMOIN_LATE_DOCKING_GRACE = "P3D"
    ingest_at = paris(2025, 5, 10, 8, 0)
    old = paris(2025, 3, 3, 20, 0)
    morning = ingest_at - dt.timedelta(hours=2)  # its newest clip, this morning, proves the clock right
    starts = {"a.mp4": old, "b.mp4": old + dt.timedelta(minutes=1), "c.mp4": morning}
    *recs, today = dock(make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"],
                                      "c.mp4": clip_library["h264_noaudio"]}, starts, ingest_at=ingest_at,
                        mtime={name: start + dt.timedelta(minutes=5) for name, start in starts.items()})

    assert all(r.docked_late for r in recs) and not today.docked_late
    assert recs[0].retain_until == ingest_at + dt.timedelta(days=3)
    assert "docked after its retention end" in recs[0].retention_basis
    collected = CustodyEvent.objects.get(recording=recs[0], action="recording.collected")
    assert collected.details["docked_late"] is True
    assert retention_sweep(now=ingest_at + dt.timedelta(days=3, minutes=1)).erased == [r.pk for r in recs]


def test_a_clip_whose_recorded_time_contradicts_its_file_time_counts_from_its_offload(
    make_volume, clip_library, camera, local_store
):
    # The newest clip's file time says the clock is right, but this clip's sidecar says March while
    # its file was written this morning: nothing says when it was recorded.
    ingest_at = paris(2025, 5, 10, 8, 0)
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0), ingest_at=ingest_at,
                 mtime=ingest_at - dt.timedelta(hours=2))

    assert rec.retain_until == paris(2025, 6, 11) and not rec.docked_late
    assert rec.retention_basis.startswith("offload time")


def test_an_old_clip_from_a_camera_whose_clock_cannot_be_checked_is_kept_a_month_from_its_offload(
    make_volume, clip_library, camera, local_store
):
    ingest_at = paris(2025, 5, 10, 8, 0)
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0), ingest_at=ingest_at,
                 mtime=paris(2025, 3, 3, 20, 5))

    assert rec.retain_until == paris(2025, 6, 11) and not rec.docked_late
    assert "camera clock could not be checked" in rec.retention_basis


# --- Traces older than three years (CSI R241-14) --------------------------------------------------------

def test_traces_older_than_three_years_are_purged_and_younger_ones_kept(
    make_volume, clip_library, camera, make_user, local_store, time_machine
):
    from evidence.models import Consultation, Hold
    from evidence.retention.traceability import traceability_purge

    supervisor, lawyer = make_user("chef", role="supervisor"), make_user("juriste", role="legal")
    [old, young] = dock(make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"]},
                        timezone.now() - dt.timedelta(days=1))
    consultation_open(recording=old, by=supervisor, motif="Contrôle hiérarchique")
    hold = hold_place(by=lawyer, procedure="judicial", reference="PV 11", recording=old, motif="PV 11")
    hold_release(hold=hold, by=lawyer, motif="classement")
    time_machine.move_to(young.retain_until + dt.timedelta(days=1))
    retention_sweep()

    time_machine.move_to(timezone.now() + dt.timedelta(days=3 * 366))
    found = violations()
    assert {"traceability.three_years"} <= rules(found)

    counts = traceability_purge()

    assert counts["consultations"] == 1 and counts["holds"] == 1 and counts["tombstones"] == 2
    assert not Consultation.objects.exists() and not Hold.objects.exists()
    assert not Recording.objects.filter(pk__in=[old.pk, young.pk]).exists()
    assert CustodyEvent.objects.filter(action="traceability.purged").exists()
    assert "traceability.three_years" not in rules(
        [v for v in violations() if not v.subject.startswith("custody entries")])


def test_the_store_layer_still_refuses_early_deletion_whatever_the_sweep_is_told(local_store, make_volume,
                                                                               clip_library, camera):
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))
    with pytest.raises(RetentionViolation):
        local_store.delete(rec.store_key, now=paris(2025, 3, 20))
    assert os.path.exists(local_store.objects / rec.store_key)


def test_a_retried_collection_is_kept_until_the_lock_an_earlier_attempt_took(
    make_volume, clip_library, camera, local_store, monkeypatch
):
    """Found by the state machine: a first docking decided a later end (camera clock unknown), stored
    the clip and died; the retry, knowing the clock, decided an earlier end the store then refused."""
    from devices.models import OffloadItem

    recorded, first_docking = paris(2025, 3, 3, 20, 0), paris(2025, 4, 10, 8, 0)
    volume = make_volume("BWC-0042", {"a.mp4": clip_library["hevc"]})  # no container time: the file's time
    os.utime(volume / "a.mp4", (recorded.timestamp(), recorded.timestamp()))
    session = offload_session_start(volume=volume, now=first_docking)
    real_put = type(local_store).put

    def worker_killed_after_the_write(store, key, source, **kwargs):
        real_put(store, key, source, **kwargs)
        raise SystemExit("killed")

    monkeypatch.setattr(type(local_store), "put", worker_killed_after_the_write)
    with pytest.raises(SystemExit):
        offload_item_pull(item=session.items.get(), now=first_docking)
    monkeypatch.undo()
    first_lock = local_store.head(Recording.objects.get().store_key).retain_until
    assert first_lock == paris(2025, 5, 11)  # a month from the docking: the clock could not be checked

    # Docked again the next day with a clip made that morning: now the clock is known to be right.
    fresh = paris(2025, 4, 11, 7, 0)
    os.utime(volume / "a.mp4", (recorded.timestamp(), recorded.timestamp()))
    (volume / "b.mp4").write_bytes(clip_library["h264_noaudio"].read_bytes())
    os.utime(volume / "b.mp4", (fresh.timestamp(), fresh.timestamp()))
    session = offload_session_start(volume=volume, now=paris(2025, 4, 11, 8, 0))
    for item in session.items.order_by("path"):
        offload_item_pull(item=item, now=paris(2025, 4, 11, 8, 0))
    retried = Recording.objects.get(source_path="a.mp4")

    assert retried.status == Recording.Status.READY
    assert retried.retain_until == first_lock and "an earlier attempt" in retried.retention_basis
    assert OffloadItem.objects.filter(recording=retried, status="verified").exists()
    assert retention_sweep(now=first_lock - dt.timedelta(hours=1)).erased == []
    assert retention_sweep(now=first_lock + dt.timedelta(minutes=1)).erased == [retried.pk]
