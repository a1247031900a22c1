"""Redacted copies of real footage: faces blurred where detected, original untouched, muting."""
import pytest

from audit.models import CustodyEvent
from evidence.integrations import ffmpeg
from evidence.redaction import services
from evidence.redaction.detection import box_at
from evidence.redaction.models import Derivative, RedactionJob, Track
from evidence.redaction.selectors import approved_derivative, derivative_anonymity, derivative_is_fully_anonymised

from .helpers import (analysed_job, dpo_on_request, frames, object_sha256, offload_clip, psnr, region, render, rms,
                      sharpness, watch)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recording(make_volume, carphone_clip, camera, local_store):
    return offload_clip(make_volume, carphone_clip)


@pytest.fixture
def chef(make_user):
    return make_user("chef.durand", role="supervisor")


def anonymity(derivative):
    return derivative_anonymity(derivative=derivative)


def _derivative_path(store, derivative):
    return store.local_path(derivative.store_key, derivative.store_version_id)


def test_full_anonymisation_blurs_every_detected_face_in_every_frame_and_never_touches_the_original(
        recording, chef, local_store):
    original_before = object_sha256(local_store, recording.store_key)
    job = analysed_job(recording, chef, mode="all")
    faces = list(job.tracks.filter(kind=Track.Kind.FACE))
    assert faces, "the detector found no face in real footage of a face"
    derivative = render(job, chef)

    assert derivative.original_sha256 == recording.sha256 == original_before
    assert object_sha256(local_store, recording.store_key) == original_before
    assert object_sha256(local_store, derivative.store_key) == derivative.sha256
    assert derivative.store_key != recording.store_key and derivative.mode == "all"
    with _derivative_path(local_store, derivative) as out_path, \
            local_store.local_path(recording.store_key) as orig_path:
        info = ffmpeg.probe(out_path)
        # No sound by default: voices identify people too (CSI R241-13).
        assert (info.video_codec, info.audio_codec, info.pix_fmt) == ("h264", "", "yuv420p")
        out_frames, _, _ = frames(out_path)
        orig_frames, _, _ = frames(orig_path)
    assert len(out_frames) == len(orig_frames) == job.frame_count

    checked = 0
    for track in faces:
        detected = [k[0] for k in track.keyframes]
        for f in range(track.first_frame, track.last_frame + 1):
            box = box_at(track.keyframes, f, first=track.first_frame, last=track.last_frame)
            before, after = region(orig_frames[f], box), region(out_frames[f], box)
            # Every frame of the track (detected or interpolated) has lost the face's detail.
            assert sharpness(after) < 0.15 * sharpness(before), (track.number, f)
            assert psnr(after, before) < 25, (track.number, f)
            checked += f in detected
    assert checked == sum(len(t.keyframes) for t in faces)
    actions = list(CustodyEvent.objects.filter(recording=recording, action__startswith="redaction.")
                   .values_list("action", flat=True))
    assert actions == ["redaction.requested", "redaction.analysed", "redaction.render_requested",
                       "redaction.rendered", "redaction.checked"]
    # The second look on the copy found no face left: every frame was looked at.
    assert derivative.check_passed is True and derivative.faces_left == []
    assert derivative.second_look["frames"] == job.frame_count and derivative.second_look["boxes_measured"] > 0


def test_access_request_copy_keeps_the_chosen_person_sharp_and_blurs_the_others(recording, make_user, local_store):
    dpo = dpo_on_request(recording, make_user)
    job = analysed_job(recording, dpo, mode="others")
    face = job.tracks.filter(kind=Track.Kind.FACE).order_by("-last_frame").first()
    # Someone else in the picture, drawn by hand by the reviewer: the car's side window.
    other = [[0, 262, 8, 80, 80], [job.frame_count - 1, 262, 8, 80, 80]]
    services.redaction_review_save(job=job, by=dpo, tracks=[{"number": None, "keyframes": other}],
                                   decisions={face.number: {"kept": True, "is_subject": True}})
    derivative = render(job, dpo)
    with _derivative_path(local_store, derivative) as out_path, \
            local_store.local_path(recording.store_key) as orig_path:
        out_frames, _, _ = frames(out_path)
        orig_frames, _, _ = frames(orig_path)
    for f in range(face.first_frame, face.last_frame + 1):
        box = box_at(face.keyframes, f, first=face.first_frame, last=face.last_frame)
        # The requester stays as sharp as a plain re-encode leaves it.
        assert psnr(region(out_frames[f], box), region(orig_frames[f], box)) > 30, f
    for f in range(job.frame_count):
        before, after = region(orig_frames[f], (262, 8, 80, 80)), region(out_frames[f], (262, 8, 80, 80))
        assert sharpness(after) < 0.15 * sharpness(before), f
    assert derivative.details["tracks_kept_sharp"] == [face.number]


def test_an_access_request_copy_names_the_person_who_stays_visible(recording, make_user):
    dpo = dpo_on_request(recording, make_user)
    job = analysed_job(recording, dpo, mode="others")
    with pytest.raises(services.RedactionRefused, match="personne concernée"):
        services.redaction_render_request(job=job, by=dpo)
    assert not Derivative.objects.exists()


def test_a_training_copy_cannot_leave_anyone_unblurred(recording, chef):
    job = analysed_job(recording, chef, mode="all")
    face = job.tracks.first()
    with pytest.raises(services.RedactionRefused, match="anonymisation complète"):
        services.redaction_review_save(job=job, by=chef, decisions={face.number: {"kept": True, "is_subject": True}})
    face.refresh_from_db()
    assert not face.is_subject


def test_muting_silences_the_chosen_range_and_nothing_else(recording, chef, local_store):
    job = analysed_job(recording, chef, mode="all")
    services.redaction_review_save(job=job, by=chef, mute_ranges=[["1.0", "2.0"]], audio="kept",
                                   audio_reason="exercice d'écoute des sommations")
    derivative = render(job, chef)
    rate = 16000
    with _derivative_path(local_store, derivative) as out_path, \
            local_store.local_path(recording.store_key) as orig_path:
        out = ffmpeg.audio_samples(out_path, rate=rate)
        orig = ffmpeg.audio_samples(orig_path, rate=rate)

    def window(samples, a, b):
        return samples[int(a * rate) * 2:int(b * rate) * 2]

    reference = rms(window(orig, 1.1, 1.9))
    assert reference > 1000  # the original is loud there
    assert rms(window(out, 1.1, 1.9)) < 0.01 * reference
    for a, b in ((0.2, 0.9), (2.1, 3.0)):
        assert rms(window(out, a, b)) > 0.5 * rms(window(orig, a, b))
    assert derivative.details["mute_ranges"] == [[1.0, 2.0]]


def test_an_approved_copy_is_what_disclosure_gets(recording, chef, make_user, local_store):
    legal = make_user("juriste.petit", role="legal")
    job = analysed_job(recording, chef, mode="all")
    derivative = render(job, chef)
    assert approved_derivative(recording=recording, mode="all") is None
    watch(derivative, legal)
    services.derivative_approve(derivative=derivative, by=legal, motif="Copie vérifiée image par image")
    got = approved_derivative(recording=recording, mode="all")
    assert got == derivative and got.approved_by == legal
    assert approved_derivative(recording=recording, mode="others") is None
    assert (got.store_key, got.sha256, got.size, got.original_sha256, got.mode) == (
        derivative.store_key, object_sha256(local_store, derivative.store_key),
        local_store.head(derivative.store_key).size, recording.sha256, "all")
    event = CustodyEvent.objects.get(action="redaction.approved")
    assert event.actor == legal and event.details["sha256"] == derivative.sha256
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.APPROVED
    with pytest.raises(services.RedactionRefused):
        services.derivative_approve(derivative=derivative, by=legal)
    # A later change to the review sends the job back to review; the approved copy stays as it is.
    services.redaction_review_save(job=job, by=chef, mute_ranges=[[0.0, 0.5]])
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.REVIEW
    assert approved_derivative(recording=recording, mode="all") == derivative


def test_officers_cannot_redact(recording, officer):
    with pytest.raises(PermissionError):
        services.redaction_job_create(recording=recording, by=officer, mode="all", motif="formation")
    assert not RedactionJob.objects.exists()


def test_a_training_copy_has_no_sound_unless_a_reason_to_keep_it_is_recorded(recording, chef, make_user, local_store):
    job = analysed_job(recording, chef, mode="all")
    assert job.audio == "removed"
    with pytest.raises(services.RedactionRefused, match="indiquez pourquoi"):
        services.redaction_review_save(job=job, by=chef, audio="kept", audio_reason="")
    job.refresh_from_db()
    assert job.audio == "removed"
    silent = render(job, chef)
    assert silent.details["audio"] == "removed" and anonymity(silent)["audio"] == "removed"
    services.redaction_review_save(job=job, by=chef, audio="kept", audio_reason="former à la lecture des sommations")
    job.refresh_from_db()
    services.redaction_render_request(job=job, by=chef)
    loud = job.derivatives.exclude(pk=silent.pk).get()
    with _derivative_path(local_store, silent) as a, _derivative_path(local_store, loud) as b:
        assert ffmpeg.probe(a).audio_codec == "" and ffmpeg.probe(b).audio_codec == "aac"
    assert loud.details["audio_reason"] == "former à la lecture des sommations"
    event = CustodyEvent.objects.filter(action="redaction.reviewed").latest("seq")
    assert event.details["audio"] == "kept" and event.details["audio_reason"].startswith("former")
    legal = make_user("juriste.petit", role="legal")
    for d in (silent, loud):
        watch(d, legal)
        services.derivative_approve(derivative=d, by=legal)
        d.refresh_from_db()
        assert derivative_is_fully_anonymised(derivative=d), anonymity(d)


def test_the_person_who_requested_a_copy_cannot_approve_it(recording, chef, make_user):
    job = analysed_job(recording, chef, mode="all")
    derivative = render(job, chef)
    watch(derivative, chef)
    with pytest.raises(services.RedactionRefused, match="une autre personne habilitée doit l'approuver"):
        services.derivative_approve(derivative=derivative, by=chef)
    derivative.refresh_from_db()
    assert not derivative.approved
    refused = CustodyEvent.objects.get(action="redaction.approval_refused")
    assert refused.actor == chef and refused.details["reason"] == "requester"


def test_a_face_left_on_the_copy_blocks_approval_until_covered_and_the_copy_watched(recording, chef, make_user):
    """Issue 15/16: in a full anonymisation the reviewer drops the face's track; the second look
    finds the face on the copy, approval is refused; one click covers it; the new copy passes,
    and is approved only once the approver has played it through."""
    legal = make_user("juriste.petit", role="legal")
    job = analysed_job(recording, chef, mode="all")
    faces = list(job.tracks.filter(kind=Track.Kind.FACE))
    services.redaction_review_save(job=job, by=chef, decisions={t.number: {"kept": False} for t in faces})
    leaky = render(job, chef)
    assert leaky.check_passed is False
    left = sorted({f["frame"] for f in leaky.faces_left})
    # CenterFace on the copy runs on every other frame: it saw the face on (nearly) all of them.
    assert len(left) >= 0.9 * job.frame_count // 2, len(left)
    event = CustodyEvent.objects.get(action="redaction.checked")
    assert event.details["passed"] is False and event.details["faces_left"] == len(leaky.faces_left)
    assert not derivative_is_fully_anonymised(derivative=leaky)

    watch(leaky, legal)
    with pytest.raises(services.RedactionRefused, match="visage encore reconnaissable"):
        services.derivative_approve(derivative=leaky, by=legal)
    assert CustodyEvent.objects.get(action="redaction.approval_refused").details["reason"] == "faces_left"

    services.redaction_cover_faces_left(derivative=leaky, by=chef)
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.REVIEW
    covers = list(job.tracks.filter(kind=Track.Kind.MANUAL))
    assert covers and all(t.blurred for t in covers)
    assert CustodyEvent.objects.filter(action="redaction.reviewed").latest("seq").details[
        "covered_from_second_look"] == leaky.pk
    services.redaction_render_request(job=job, by=chef)
    fixed = job.derivatives.exclude(pk=leaky.pk).get()
    assert fixed.check_passed is True, fixed.second_look["ranges"]

    with pytest.raises(services.RedactionRefused, match="visionnez la copie en entier"):
        services.derivative_approve(derivative=fixed, by=legal)
    assert not fixed.viewings.filter(user=legal).exists()
    watch(fixed, legal)
    services.derivative_approve(derivative=fixed, by=legal, motif="vue en entier")
    fixed.refresh_from_db()
    assert fixed.approved and derivative_is_fully_anonymised(derivative=fixed)
    assert CustodyEvent.objects.filter(action="redaction.copy_watched", actor=legal).count() == 2
