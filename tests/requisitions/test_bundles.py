"""Video-system exports uploaded through a requisition link (issue 22, item 4): real clips made by
ffmpeg (MP4, MKV, AVI) in real ZIPs, sent over tus; each clip becomes its own recording, the bundle
is kept, what is not a clip is kept in it and flagged, names never become paths, bombs are bounded."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import zipfile
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from audit.models import CustodyEvent
from evidence.models import Recording
from evidence.requisitions import unpack as unpack_module
from evidence.requisitions.models import RequisitionUpload
from evidence.requisitions.unpack import bundle_unpack
from evidence.integrations.store import StoreError

from ..evidence.helpers import stored_bytes
from .conftest import api
from .test_bad_input import send

pytestmark = pytest.mark.django_db(transaction=True)

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
PLAYER = b"MZ\x90\x00" + b"\x00" * 4000  # a Windows executable's header: the export's player


@pytest.fixture(scope="session")
def clips(clip_library, tmp_path_factory):
    """Real MP4 (H.264), AVI (MJPEG) and MKV (H.264 remuxed by ffmpeg) clips: name → bytes."""
    root = tmp_path_factory.mktemp("bundle-clips")
    mkv = root / "cam2.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip_library["h264_noaudio"]),
                    "-c", "copy", "-f", "matroska", str(mkv)], check=True)
    return {"mp4": clip_library["h264"].read_bytes(), "avi": clip_library["mjpeg"].read_bytes(),
            "mkv": mkv.read_bytes()}


def make_zip(members: dict[str, bytes], *, compression=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 20, 21, 30, 0))
            info.compress_type = compression
            zf.writestr(info, data)
    return buffer.getvalue()


@pytest.fixture
def link(issue, local_store):
    return issue(partner="Parking Indigo Gare")


def upload_of(filename: str) -> RequisitionUpload:
    return RequisitionUpload.objects.get(filename=filename)


def members_of(upload: RequisitionUpload) -> dict[str, Recording]:
    return {r.source_path.rsplit("] ", 1)[1]: r for r in Recording.objects.filter(bundle=upload.recording)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_folder_of_clips_with_a_csv_manifest_becomes_one_recording_per_clip(link, clips, local_store):
    manifest = (
        "File;Camera Name;Start Time;End Time;SHA256\r\n"
        f"export/Entree/cam1.mp4;Entrée niveau -1;2026-11-20T21:30:00+01:00;2026-11-20T21:30:03+01:00;{sha(clips['mp4'])}\r\n"
        f"export/Rampe/cam2.mkv;Rampe;20/11/2026 21:31:00;20/11/2026 21:31:02;{'ab' * 32}\r\n"
        f"export/Caisse/cam3.avi;Caisse;2026-11-20 21:32:00;;\r\n"
        "export/Caisse/cam4.avi;Caisse;2026-11-20 21:33:00;;\r\n"
    ).encode()
    bundle = make_zip({"export/Entree/cam1.mp4": clips["mp4"], "export/Rampe/cam2.mkv": clips["mkv"],
                       "export/Caisse/cam3.avi": clips["avi"], "export/manifest.csv": manifest,
                       "export/Player/SmartPlayer.exe": PLAYER, "export/Caisse/cam3.dav": b"DHAV" + b"\x01" * 500})
    send(Client(), link["upload_url"], bundle, filename="export-parking.zip", sha256=sha(bundle))

    upload = upload_of("export-parking.zip")
    bundle_rec = upload.recording
    # The bundle itself: stored write-once, verified, kept as it came.
    assert bundle_rec.sha256 == sha(bundle) and local_store.digest(bundle_rec.store_key) == (sha(bundle), len(bundle))
    assert bundle_rec.status == Recording.Status.UNPLAYABLE and "3 clip(s) unpacked" in bundle_rec.status_message
    members = members_of(upload)
    assert set(members) == {"export/Entree/cam1.mp4", "export/Rampe/cam2.mkv", "export/Caisse/cam3.avi"}
    for name, data in (("export/Entree/cam1.mp4", clips["mp4"]), ("export/Rampe/cam2.mkv", clips["mkv"]),
                       ("export/Caisse/cam3.avi", clips["avi"])):
        rec = members[name]
        assert (rec.source, rec.regime, rec.bundle_id) == ("requisition", "videoprotection", bundle_rec.pk)
        assert rec.sha256 == sha(data) and stored_bytes(local_store, rec.store_key) == data
        assert rec.retain_until == bundle_rec.retain_until and rec.time_attested is False
        # Real clips: the media step made a playback copy of each (MP4 remuxed, MKV, AVI transcoded).
        assert rec.status == Recording.Status.READY, rec.status_message
        actions = list(CustodyEvent.objects.filter(recording=rec).order_by("seq").values_list("action", flat=True))
        assert actions[:3] == ["recording.collected", "recording.stored", "recording.verified"]
    cam1, cam2, cam3 = (members[n] for n in ("export/Entree/cam1.mp4", "export/Rampe/cam2.mkv", "export/Caisse/cam3.avi"))
    assert cam1.started_at == dt.datetime(2026, 11, 20, 20, 30, tzinfo=UTC) and cam1.source_camera == "Entrée niveau -1"
    assert cam1.ended_at == dt.datetime(2026, 11, 20, 20, 30, 3, tzinfo=UTC) and cam1.time_source == "manifest"
    assert cam1.camera_hash_matches is True and cam1.camera_sha256 == sha(clips["mp4"])
    # A French day-first time without an offset: read in the organisation's zone, and flagged.
    assert cam2.started_at == dt.datetime(2026, 11, 20, 21, 31, tzinfo=PARIS)
    assert any("without an offset" in f for f in cam2.sidecar_errors)
    # The manifest's hash differs: flagged, kept (still evidence, still played).
    assert cam2.camera_hash_matches is False and any("differs" in f for f in cam2.sidecar_errors)
    assert cam3.camera_hash_matches is None and cam3.source_camera == "Caisse"
    verified = CustodyEvent.objects.get(recording=cam2, action="recording.verified")
    assert verified.details["manifest_hash_matches"] is False
    # Not clips: kept in the bundle, listed with the reason; a listed clip that is absent, flagged.
    ignored = {i["path"]: i["reason"] for i in upload.report["ignored"]}
    assert ignored["export/Player/SmartPlayer.exe"].startswith("unknown file type (.exe)")
    assert ignored["export/Caisse/cam3.dav"].startswith("unknown file type (.dav)")
    assert "missing from the bundle" in ignored["export/Caisse/cam4.avi"]
    assert upload.report["manifests"] == ["export/manifest.csv"]
    event = CustodyEvent.objects.get(action="recording.bundle_unpacked")
    assert event.recording_id == bundle_rec.pk and len(event.details["clips"]) == 3
    assert {i["path"] for i in event.details["ignored"]} == set(ignored)


def test_the_api_shows_the_bundle_its_clips_and_their_flags(link, clips, local_store, supervisor):
    manifest = f"filename,camera,sha256\ncam1.mp4,Hall,{'cd' * 32}\n".encode()
    bundle = make_zip({"cam1.mp4": clips["mp4"], "manifest.csv": manifest, "player.exe": PLAYER})
    send(Client(), link["upload_url"], bundle, filename="api.zip")
    upload = upload_of("api.zip")
    (clip,) = members_of(upload).values()
    files = api(supervisor).get(f"/api/requisitions/{link['id']}/").json()["files"]
    assert files[0]["recording"] == upload.recording_id and files[0]["report"]["kind"] == "bundle"
    assert [c["recording"] for c in files[0]["report"]["clips"]] == [clip.pk]
    detail = api(supervisor).get(f"/api/recordings/{clip.pk}/").json()
    assert (detail["bundle"], detail["source_camera"], detail["camera_hash_matches"]) == (upload.recording_id, "Hall", False)
    assert any("differs" in f for f in detail["flags"])
    listed = api(supervisor).get("/api/recordings/?source=requisition").json()["results"]
    assert {r["id"] for r in listed} == {upload.recording_id, clip.pk}


def test_a_single_clip_with_its_xml_sidecar_and_a_player(link, clips, local_store):
    sidecar = b"""<?xml version="1.0" encoding="UTF-8"?>
<ExportInfo><Camera>Bus 312 - avant</Camera><StartTime>2026-11-20T21:30:00Z</StartTime>
<EndTime>2026-11-20T21:30:03Z</EndTime><Checksum>sha256:""" + sha(clips["mp4"]).encode() + b"""</Checksum></ExportInfo>"""
    bundle = make_zip({"Bus312_20261120.mp4": clips["mp4"], "Bus312_20261120.xml": sidecar,
                       "Player.exe": PLAYER, "Player.ini": b"[player]\nlanguage=fr\n"},
                      compression=zipfile.ZIP_DEFLATED)
    send(Client(), link["upload_url"], bundle, filename="bus312.zip")
    upload = upload_of("bus312.zip")
    (rec,) = members_of(upload).values()
    assert rec.source_camera == "Bus 312 - avant" and rec.time_source == "sidecar"
    assert rec.started_at == dt.datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    assert rec.camera_hash_matches is True and rec.sidecar_sha256 == sha(sidecar)
    assert rec.status == Recording.Status.READY
    ignored = {i["path"] for i in upload.report["ignored"]}
    assert ignored == {"Player.exe", "Player.ini"}


def test_a_json_manifest_with_md5_hashes_and_a_camera_per_xml_group(link, clips, local_store):
    manifest = json.dumps({"export": "Hikvision", "files": [
        {"fileName": "ch01/a.mp4", "channelName": "Hall", "startTime": "2026-11-20T21:30:00+01:00",
         "md5": hashlib.md5(clips["mp4"]).hexdigest()},
        {"fileName": "ch02/b.avi", "channelName": "Escalier", "md5": "0" * 32}]}).encode()
    xml = b"""<Export><Camera name="Hall"><Clip file="ch01/a.mp4"/></Camera></Export>"""
    bundle = make_zip({"ch01/a.mp4": clips["mp4"], "ch02/b.avi": clips["avi"], "index.json": manifest,
                       "extra.xml": xml})
    send(Client(), link["upload_url"], bundle, filename="hik.zip")
    members = members_of(upload_of("hik.zip"))
    assert members["ch01/a.mp4"].camera_hash_matches is True and members["ch01/a.mp4"].source_camera == "Hall"
    assert members["ch02/b.avi"].camera_hash_matches is False
    assert any("MD5" in f and "differs" in f for f in members["ch02/b.avi"].sidecar_errors)


def test_member_names_with_path_characters_never_leave_the_store(link, clips, local_store, tmp_path):
    names = ["../../escaped.mp4", "/etc/cron.d/x.mp4", "..\\..\\windows.avi", "C:/temp/drive.mkv"]
    bundle = make_zip(dict(zip(names, (clips["mp4"], clips["mp4"] + b"\0", clips["avi"], clips["mkv"])))
                      | {"../../manifest.csv": b"file,camera\n../../escaped.mp4,Toit\n"})
    send(Client(), link["upload_url"], bundle, filename="../../slip.zip")
    upload = upload_of("../../slip.zip")
    members = members_of(upload)
    assert set(members) == {"../../escaped.mp4", "/etc/cron.d/x.mp4", "../../windows.avi", "C:/temp/drive.mkv"}
    for rec in members.values():
        assert ".." not in rec.store_key and rec.store_key.startswith(f"originals/{rec.organisation.slug}/")
        assert any("path characters" in f for f in rec.sidecar_errors)
    assert members["../../escaped.mp4"].source_camera == "Toit"
    # Nothing anywhere but the data folder (staging) and the store; nothing named by the partner.
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(p.parts[0] in ("data", "store") for p in written)
    assert not any(p.name in ("escaped.mp4", "x.mp4", "windows.avi", "drive.mkv") for p in written)
    assert not (tmp_path.parent / "escaped.mp4").exists() and not (tmp_path / "escaped.mp4").exists()


def test_a_zip_bomb_member_is_not_unpacked_and_the_bundle_is_kept(link, clips, local_store):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.mp4", "w") as fh:
            for _ in range(64):
                fh.write(b"\0" * (1 << 20))
        zf.writestr("ok.mp4", clips["mp4"])
    bundle = buffer.getvalue()
    assert len(bundle) < 1 << 20
    send(Client(), link["upload_url"], bundle, filename="bomb.zip")
    upload = upload_of("bomb.zip")
    assert set(members_of(upload)) == {"ok.mp4"}
    (flag,) = [i for i in upload.report["ignored"] if i["path"] == "bomb.mp4"]
    assert "zip bomb" in flag["reason"]
    assert upload.recording.sha256 == sha(bundle)  # kept as evidence, as it came


def test_too_many_members_or_too_much_unpacked_is_refused_clearly_and_the_bundle_kept(link, local_store, settings):
    settings.TEMOIN_BUNDLE_MAX_MEMBERS = 10
    bundle = make_zip({f"clip{i:02}.mp4": b"x" * 10 for i in range(11)})
    send(Client(), link["upload_url"], bundle, filename="many.zip")
    upload = upload_of("many.zip")
    assert "11 members exceed the limit of 10" in upload.report["refused"]
    assert not Recording.objects.filter(bundle=upload.recording).exists()
    assert upload.recording.status == Recording.Status.UNPLAYABLE and "not unpacked" in upload.recording.status_message
    assert upload.message.startswith("export bundle kept as evidence, not unpacked")
    event = CustodyEvent.objects.get(action="recording.bundle_unpacked", recording=upload.recording)
    assert "TEMOIN_BUNDLE_MAX_MEMBERS" in event.details["refused"]

    settings.TEMOIN_BUNDLE_MAX_MEMBERS, settings.TEMOIN_BUNDLE_MAX_UNPACKED = 10, 1000
    big = make_zip({"a.mp4": b"y" * 600, "b.mp4": b"z" * 600})
    send(Client(), link["upload_url"], big, filename="big.zip")
    assert "TEMOIN_BUNDLE_MAX_UNPACKED" in upload_of("big.zip").report["refused"]


def test_a_file_that_is_no_video_is_kept_and_flagged(link, local_store):
    send(Client(), link["upload_url"], PLAYER, filename="SmartPlayer.exe")
    upload = upload_of("SmartPlayer.exe")
    rec = upload.recording
    assert upload.status == "stored" and "unknown file type (.exe)" in upload.message
    assert rec.sha256 == sha(PLAYER) and rec.sidecar_errors == upload.report["flags"]
    # As the offload does with a file it cannot read: kept, original stored, marked unplayable.
    assert rec.status == Recording.Status.UNPLAYABLE
    assert CustodyEvent.objects.filter(recording=rec, action="recording.unplayable").exists()
    collected = CustodyEvent.objects.get(recording=rec, action="recording.collected")
    assert collected.details["kind"] == "other" and collected.details["flags"]


def test_a_clip_that_is_no_video_inside_a_bundle_is_kept_and_marked_unplayable(link, local_store):
    bundle = make_zip({"cam.mp4": b"not a video at all" * 100})
    send(Client(), link["upload_url"], bundle, filename="fake.zip")
    (rec,) = members_of(upload_of("fake.zip")).values()
    assert rec.status == Recording.Status.UNPLAYABLE and rec.sha256 == sha(b"not a video at all" * 100)


def test_an_unpacking_interrupted_by_the_store_resumes_without_a_second_copy(link, clips, local_store,
                                                                          monkeypatch, settings):
    bundle = make_zip({"a.mp4": clips["mp4"], "b.avi": clips["avi"]})
    calls = {"n": 0}
    real_put = unpack_module.stream_put

    def failing_put(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("store unreachable")
        return real_put(**kwargs)

    monkeypatch.setattr(unpack_module, "stream_put", failing_put)
    monkeypatch.setattr("evidence.requisitions.upload.bundle_enqueue_unpack", lambda **kw: None)
    send(Client(), link["upload_url"], bundle, filename="retry.zip")
    upload = upload_of("retry.zip")
    with pytest.raises(StoreError):
        bundle_unpack(recording_id=upload.recording_id, final_attempt=False)
    first = members_of(upload)
    assert first["a.mp4"].status in ("stored", "ready") and first["b.avi"].status == "receiving"
    bundle_unpack(recording_id=upload.recording_id, final_attempt=False)
    again = members_of(upload)
    assert again["b.avi"].pk == first["b.avi"].pk and again["b.avi"].sha256 == sha(clips["avi"])
    assert Recording.objects.filter(bundle=upload.recording).count() == 2
    assert CustodyEvent.objects.filter(recording=again["b.avi"], action="recording.collect_retried").exists()
    # Done once: a redelivered task changes nothing.
    bundle_unpack(recording_id=upload.recording_id)
    assert Recording.objects.filter(bundle=upload.recording).count() == 2
    assert CustodyEvent.objects.filter(action="recording.bundle_unpacked").count() == 1


def test_a_bundle_never_unpacked_is_queued_again_by_the_sweep(link, clips, local_store, monkeypatch):
    from evidence.requisitions.staging import bundles_requeue

    monkeypatch.setattr("evidence.requisitions.upload.bundle_enqueue_unpack", lambda **kw: None)  # broker down
    send(Client(), link["upload_url"], make_zip({"a.mp4": clips["mp4"]}), filename="late.zip")
    upload = upload_of("late.zip")
    assert not members_of(upload) and "unpacked_at" not in upload.report
    now = dt.datetime.now(UTC)
    assert bundles_requeue(now=now) == 0  # too recent: perhaps still queued
    assert bundles_requeue(now=now + dt.timedelta(minutes=11)) == 1
    assert set(members_of(upload)) == {"a.mp4"}
    assert bundles_requeue(now=now + dt.timedelta(minutes=11)) == 0


def test_the_audit_flags_a_clip_of_a_bundle_kept_past_its_regime(issue, clips, local_store, settings):
    import time_machine
    from django.utils import timezone

    from ..compliance.helpers import audit

    settings.TEMOIN_COMPLIANCE_GRACE = "PT0S"
    images_from = timezone.now() - dt.timedelta(days=1)
    link = issue(partner="Parking Indigo Gare", retention="P15D", period_start=images_from.isoformat(),
                 period_end=images_from.isoformat())
    send(Client(), link["upload_url"], make_zip({"a.mp4": clips["mp4"]}), filename="regime.zip")
    (clip,) = members_of(upload_of("regime.zip")).values()
    lawful_end = clip.retain_until
    assert lawful_end == upload_of("regime.zip").recording.retain_until
    # Planted: the clip's end a month later than the authorisation allows.
    Recording.objects.filter(pk=clip.pk).update(retain_until=lawful_end + dt.timedelta(days=30))
    with time_machine.travel(lawful_end + dt.timedelta(hours=1), tick=True):
        code, out = audit()
    assert code != 0 and "FAIL retention.regime" in out and f"recording {clip.pk} [" in out


# --- A clip and its sidecar sent as separate files through the page ------------------------------

def test_a_clip_then_its_xml_sidecar_sent_as_two_files_are_paired(link, clips, local_store):
    sidecar = (b"<Export><CameraName>Quai 2</CameraName><StartTime>2026-11-20T21:30:00Z</StartTime>"
               b"<SHA256>" + sha(clips["mp4"]).encode() + b"</SHA256></Export>")
    send(Client(), link["upload_url"], clips["mp4"], filename="Quai2_2130.mp4")
    send(Client(), link["upload_url"], sidecar, filename="Quai2_2130.xml")
    send(Client(), link["upload_url"], PLAYER, filename="Player.exe")
    clip = upload_of("Quai2_2130.mp4").recording
    clip.refresh_from_db()
    assert (clip.source_camera, clip.time_source, clip.camera_hash_matches) == ("Quai 2", "sidecar", True)
    assert clip.started_at == dt.datetime(2026, 11, 20, 21, 30, tzinfo=UTC) and clip.ended_at is not None
    assert clip.sidecar_sha256 == sha(sidecar) and clip.status == Recording.Status.READY
    event = CustodyEvent.objects.get(recording=clip, action="recording.metadata_updated")
    assert event.details["sidecar_filename"] == "Quai2_2130.xml" and event.details["hash_matches"] is True
    # The sidecar and the player are kept as evidence, each flagged with what it is.
    side = upload_of("Quai2_2130.xml")
    assert side.status == "stored" and "metadata file (.xml)" in side.message
    assert "unknown file type (.exe)" in upload_of("Player.exe").message


def test_a_text_sidecar_sent_before_its_clip_with_a_wrong_hash_is_flagged(link, clips, local_store):
    sidecar = f"Camera: Hall B\nStart = 20/11/2026 22:30:00\nMD5: {'1' * 32}\nSHA256 = {'2' * 64}\n".encode()
    send(Client(), link["upload_url"], sidecar, filename="hall-b.txt")
    send(Client(), link["upload_url"], clips["avi"], filename="hall-b.avi")
    clip = upload_of("hall-b.avi").recording
    clip.refresh_from_db()
    assert clip.source_camera == "Hall B" and clip.started_at == dt.datetime(2026, 11, 20, 22, 30, tzinfo=PARIS)
    assert clip.camera_hash_matches is False and clip.sha256 == sha(clips["avi"])  # kept as received
    assert any("differs" in f for f in clip.sidecar_errors) and any("without an offset" in f for f in clip.sidecar_errors)
    # A second sidecar of the same name changes nothing: one per clip.
    send(Client(), link["upload_url"], b"camera=Autre\n", filename="hall-b.ini")
    clip.refresh_from_db()
    assert clip.source_camera == "Hall B"
    assert CustodyEvent.objects.filter(recording=clip, action="recording.metadata_updated").count() == 1


def test_hostile_metadata_files_are_kept_in_the_bundle_and_the_clips_unpacked(link, clips, local_store):
    deep = b"[" * 100_000 + b"]" * 100_000  # nested beyond what a parser follows
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
              b'<clips><clip file="a.mp4" camera="&lol2;"/></clips>')
    bundle = make_zip({"a.mp4": clips["mp4"], "manifest.json": deep, "index.xml": laughs,
                       "big.csv": b"file,camera\n" + os.urandom(5 * 1024 * 1024)}, compression=zipfile.ZIP_DEFLATED)
    send(Client(), link["upload_url"], bundle, filename="hostile.zip")
    upload = upload_of("hostile.zip")
    (clip,) = members_of(upload).values()
    assert clip.status == Recording.Status.READY and clip.source_camera == ""
    reasons = {i["path"]: i["reason"] for i in upload.report["ignored"]}
    assert "manifest not readable" in reasons["manifest.json"]
    assert "DOCTYPE" in reasons["index.xml"] and "larger than 4194304 bytes: not read" in reasons["big.csv"]


def test_the_requisition_page_lists_the_bundles_clips_and_what_stayed_in_it(link, clips, local_store, supervisor):
    """The supervisor sees on the requisition's page what the API reports: each clip of the bundle
    with its recording and its manifest hash, and what was kept in the bundle only, with the reason."""
    from evidence.requisitions.models import Requisition
    from tests.auth import sign_in

    manifest = f"filename,camera,sha256\ncam1.mp4,Hall,{sha(clips['mp4'])}\ncam2.mkv,Rampe,{'cd' * 32}\n".encode()
    bundle = make_zip({"cam1.mp4": clips["mp4"], "cam2.mkv": clips["mkv"], "manifest.csv": manifest,
                       "player.exe": PLAYER})
    send(Client(), link["upload_url"], bundle, filename="page.zip")
    members = members_of(upload_of("page.zip"))
    requisition = Requisition.objects.get(pk=link["id"])
    page = sign_in(Client(), supervisor).get(f"/requisitions/{requisition.pk}/").content.decode()
    assert "Lot d'export : 2 clips devenus des enregistrements · 1 fichier gardé dans le lot seulement" in page
    for name in ("cam1.mp4", "cam2.mkv"):
        assert f'<a href="/enregistrements/{members[name].pk}/">{members[name].pk}</a>' in page
    assert page.count("<td>conforme</td>") == 1 and "différente : clip gardé et signalé" in page
    assert "<code>player.exe</code> — unknown file type (.exe)" in page
