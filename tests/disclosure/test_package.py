"""Export packages: built by a Celery task, stored write-once, verified offline by their own verify.py
(Python standard library only), and any change to any file or custody event is caught and named."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
import io

import pytest

from audit.models import CustodyEvent
from evidence.disclosure.models import Export

from .helpers import api, download, extract_zip, manifest, run_verify, stored_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _export(user, recordings, **extra):
    body = {"recordings": [r.pk for r in recordings], "purpose": "judicial", "recipient": "Parquet de Chambéry",
            "motif": "Réquisition PV 2026/01234", "redaction": "none", **extra}
    return api(user).post("/api/exports/", body, format="json")


@pytest.fixture
def package(recordings, users, tmp_path, local_store):
    response = _export(users["legal"], recordings)
    assert response.status_code == 201, response.content
    export_id = response.json()["id"]
    detail = api(users["legal"]).get(f"/api/exports/{export_id}/").json()
    assert detail["status"] == "ready", detail
    data = download(api(users["legal"]), detail["download_url"])
    return {"export": Export.objects.get(pk=export_id), "detail": detail, "zip": data,
            "root": extract_zip(data, tmp_path / "unzipped"), "recordings": recordings}


def test_export_is_registered_before_anything_is_produced_then_built_and_ready(recordings, users, local_store):
    response = _export(users["supervisor"], recordings)

    assert response.status_code == 201 and set(response.json()) == {"id", "status"}
    export = Export.objects.get(pk=response.json()["id"])
    extracted = list(CustodyEvent.objects.filter(action="recording.extracted").order_by("seq"))
    created = CustodyEvent.objects.get(action="export.created")
    ready = CustodyEvent.objects.get(action="export.ready")
    assert [e.recording_id for e in extracted] == [r.pk for r in recordings]
    assert all(e.motif == "Réquisition PV 2026/01234" and e.recipients == ["Parquet de Chambéry"] for e in extracted)
    assert extracted[-1].seq < created.seq < ready.seq
    assert export.status == "ready" and export.progress == 100
    # The ZIP is in the write-once store, and its SHA-256 is on the row and in the custody event.
    data = stored_bytes(local_store, export.store_key)
    assert hashlib.sha256(data).hexdigest() == export.sha256 == ready.details["sha256"]
    assert local_store.head(export.store_key).mode == "COMPLIANCE"
    with pytest.raises(Exception):
        local_store.put(export.store_key, io.BytesIO(b"x"), retain_until=export.retain_until)


def test_package_holds_originals_reports_key_verifier_and_signed_manifest(package, local_store):
    root, recs = package["root"], package["recordings"]
    m = manifest(root)

    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert names == sorted([*m["files"], "manifest.json", "manifest.sig"])
    for r, meta in zip(recs, m["recordings"]):
        assert (root / meta["file"]).read_bytes() == stored_bytes(local_store, r.store_key)
        assert meta["original"]["sha256"] == r.sha256 and meta["original"]["stream_hashes"] == r.stream_hashes
        assert (root / f"reports/tracabilite-{r.pk}.pdf").read_bytes().startswith(b"%PDF")
    actions = {e["action"] for e in m["custody"]["events"]}
    assert {"recording.collected", "recording.stored", "recording.verified", "recording.extracted",
            "export.created"} <= actions
    assert m["checkpoints"] and all(c["algorithm"] == "Ed25519" for c in m["checkpoints"])
    assert (root / "public_key.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_package_verifies_with_its_own_verify_py_in_a_clean_directory(package):
    result = run_verify(package["root"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "RÉSULTAT : tout concorde" in result.stdout and "RESULT: everything matches" in result.stdout
    assert "ÉCHEC" not in result.stdout


# Every file of the package, by role (the test below fails if the package gains a file not listed here).
FILE_ROLES = ["recording-1", "recording-2", "report-1", "report-2", "public_key.pem", "verify.py", "LISEZMOI.txt",
              "manifest.json", "manifest.sig"]


def _path_for(role: str, root, m) -> str:
    if role.startswith("recording-"):
        return m["recordings"][int(role[-1]) - 1]["file"]
    if role.startswith("report-"):
        return f"reports/tracabilite-{m['recordings'][int(role[-1]) - 1]['id']}.pdf"
    return role


def test_the_flip_list_covers_every_file_of_the_package(package):
    m = manifest(package["root"])
    assert sorted(_path_for(r, package["root"], m) for r in FILE_ROLES) == sorted(
        [*m["files"], "manifest.json", "manifest.sig"])


@pytest.mark.parametrize("role", FILE_ROLES)
def test_flipping_one_byte_of_any_file_fails_and_names_it(package, role, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    path = _path_for(role, root, m)
    target = root / path
    data = bytearray(target.read_bytes())
    if path == "verify.py":
        # A verifier edited in its code could say anything (docs/disclosure.md): flip a byte of its
        # docstring, which leaves it runnable, and it must notice its own change.
        offset = data.index(b"Offline verification") + 3
    elif path == "manifest.json":
        offset = data.index(b'"recipient": "Parquet') + len(b'"recipient": "P')  # stays valid JSON
    else:
        offset = len(data) // 2
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))

    result = run_verify(root)

    assert result.returncode == 1, result.stdout
    failures = [line for line in result.stdout.splitlines() if line.startswith(("  ÉCHEC", "  FAIL"))]
    assert any(path in line for line in failures), result.stdout
    assert "NE CONCORDE PAS" in result.stdout and "DOES NOT MATCH" in result.stdout


def test_editing_one_custody_event_in_the_manifest_fails_and_names_the_event(package, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    event = next(e for e in m["custody"]["events"] if e["action"] == "recording.extracted")
    event["motif"] = "Motif réécrit après coup"
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    result = run_verify(root)

    assert result.returncode == 1
    assert f"ÉCHEC custody event #{event['seq']} : champ(s) motif" in result.stdout
    assert f"FAIL  custody event #{event['seq']}: field(s) motif" in result.stdout


def test_rewriting_an_event_in_its_chain_segment_breaks_its_hash(package, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    seq = next(e["seq"] for e in m["custody"]["events"] if e["action"] == "recording.stored")
    entry = next(x for s in m["custody"]["segments"] for x in s["entries"] if x["seq"] == seq)
    signed = json.loads(base64.b64decode(entry["canonical_b64"]))
    signed["details"]["sha256"] = "0" * 64
    entry["canonical_b64"] = base64.b64encode(json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()).decode()
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    result = run_verify(root)

    assert result.returncode == 1
    assert f"custody event #{seq}: recomputed hash" in result.stdout


def test_a_forger_relinking_the_chain_is_caught_at_the_checkpoint(package, tmp_path):
    """Rewrite an event AND recompute every hash after it: the signed checkpoint no longer matches."""
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    segment = m["custody"]["segments"][0]
    first = segment["entries"][0]
    signed = json.loads(base64.b64decode(first["canonical_b64"]))
    signed["motif"] = "forgé"
    first["canonical_b64"] = base64.b64encode(json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()).decode()
    prev = first["prev_hash"]
    for entry in segment["entries"]:
        entry["prev_hash"] = prev
        entry["hash"] = prev = hashlib.sha256(prev.encode() + b"\n" + base64.b64decode(entry["canonical_b64"])).hexdigest()
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    result = run_verify(root)

    assert result.returncode == 1
    assert "does not match signed checkpoint" in result.stdout


def test_export_download_is_logged_with_range_support(package, users):
    export = package["export"]
    client = api(users["legal"])
    part = client.get(f"/api/exports/{export.pk}/download/", HTTP_RANGE="bytes=0-99")

    assert part.status_code == 206 and b"".join(part.streaming_content) == package["zip"][:100]
    downloads = CustodyEvent.objects.filter(action="export.downloaded", subject_id=str(export.pk))
    assert downloads.count() == 2  # the fixture's full download, then this range
    assert downloads.last().recipients == ["Parquet de Chambéry"]


def test_zip_is_a_plain_archive_any_tool_opens(package, tmp_path):
    with zipfile.ZipFile(io.BytesIO(package["zip"])) as zf:
        assert zf.testzip() is None
    archive = tmp_path / "package.zip"
    archive.write_bytes(package["zip"])
    result = subprocess.run(["unzip", "-t", str(archive)], capture_output=True, text=True)
    assert result.returncode == 0 and "No errors detected" in result.stdout, result.stdout + result.stderr


def test_package_built_on_the_s3_store_verifies(s3_store, make_volume, clip_library, camera, users, tmp_path,
                                                clip_start):
    """The same package over S3 (moto's server over HTTP): originals read from the bucket, ZIP uploaded
    (multipart) while being built, locked in COMPLIANCE mode."""
    from evidence.models import Recording
    from tests.evidence.helpers import run_offload

    from .helpers import sidecar

    volume = make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}, {"a.json": sidecar(clip_start, 3)})
    assert run_offload(volume)[0] == 0
    rec = Recording.objects.get()
    response = _export(users["legal"], [rec])
    export = Export.objects.get(pk=response.json()["id"])

    assert export.status == "ready", export.status_message
    assert s3_store.head(export.store_key, export.store_version_id).mode == "COMPLIANCE"
    detail = api(users["legal"]).get(f"/api/exports/{export.pk}/").json()
    data = download(api(users["legal"]), detail["download_url"])
    assert hashlib.sha256(data).hexdigest() == export.sha256
    result = run_verify(extract_zip(data, tmp_path / "z"))
    assert result.returncode == 0, result.stdout
