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

from django.db import transaction

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
FILE_ROLES = ["recording-1", "recording-2", "report-1", "report-2", "public_key.pem", "verify.py", "verify.html",
              "LISEZMOI.txt", "manifest.json", "manifest.sig"]


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


def _rewrite(event: dict, **changes) -> None:
    signed = json.loads(base64.b64decode(event["canonical_b64"]))
    for k, v in changes.items():
        if isinstance(v, dict):
            signed[k].update(v)
        else:
            signed[k] = v
    event["canonical_b64"] = base64.b64encode(json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()).decode()


def test_rewriting_an_event_in_its_canonical_bytes_breaks_its_hash(package, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    event = next(e for e in m["custody"]["events"] if e["action"] == "recording.stored")
    _rewrite(event, details={"sha256": "0" * 64})
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    result = run_verify(root)

    assert result.returncode == 1
    assert f"custody event #{event['seq']}: recomputed hash" in result.stdout


def test_a_forger_recomputing_the_event_hash_is_caught_by_the_signed_tree(package, tmp_path):
    """Rewrite an event AND recompute its hash: it is no longer a leaf of its segment's signed tree."""
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    event = next(e for e in m["custody"]["events"] if e["action"] == "recording.extracted")
    _rewrite(event, motif="forgé")
    event["motif"] = "forgé"
    event["hash"] = hashlib.sha256(event["prev_hash"].encode() + b"\n"
                                   + base64.b64decode(event["canonical_b64"])).hexdigest()
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    result = run_verify(root)

    assert result.returncode == 1
    assert f"FAIL  custody event #{event['seq']}: not in the signed tree of segment" in result.stdout


def test_a_forger_replacing_a_segment_root_is_caught_at_the_checkpoint(package, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(package["root"], root)
    m = manifest(root)
    segment = m["custody"]["segments"][0]
    segment["root"] = hashlib.sha256(b"forged").hexdigest()
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    result = run_verify(root)

    assert result.returncode == 1
    assert f"segment #{segment['from_seq']}–#{segment['to_seq']}: the Merkle tree does not match signed checkpoint" \
        in result.stdout


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


def _pdf_text(data: bytes) -> str:
    """The text a reader sees in a reportlab PDF drawn with the standard fonts (WinAnsi strings)."""
    import re
    import zlib

    text = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        stream = stream.strip()
        try:  # reportlab: /Filter [/ASCII85Decode /FlateDecode]
            content = zlib.decompress(base64.a85decode(stream.removesuffix(b"~>")))
        except ValueError:
            try:
                content = zlib.decompress(stream)
            except zlib.error:  # an image or a font program
                continue
        for s in re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", content, re.S):
            s = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), s)
            text.append(re.sub(rb"\\(.)", rb"\1", s).decode("cp1252", "replace"))
    return " ".join(text)


def test_a_package_discloses_no_other_organisation_nor_unrelated_access_request(
        recordings, users, make_user, tmp_path, local_store, monkeypatch):
    """Issue 15: built while a second organisation and an unrelated data subject's request are active,
    the package names none of them (files, file names, decoded custody bytes, PDF text), and verifies."""
    from accounts.services import organisation_create
    from audit import pdf
    from django.utils import timezone

    monkeypatch.setattr(pdf, "_fonts", ("Helvetica", "Helvetica-Bold", "Courier"))  # text readable in the PDF
    with transaction.atomic():
        other = organisation_create(slug="voisinville-pm", name="Police municipale de Voisinville")
    make_user("voisin.superviseur", role="supervisor", organisation=other)
    today = timezone.localdate().isoformat()
    unrelated = api(users["dpo"]).post("/api/access-requests/", {
        "requester_name": "Ginette Sansrapport", "requester_contact": "ginette@example.org", "identity_checked": True,
        "identity_check_method": "carte d'identité présentée au guichet", "received_on": today,
        "description": "Contrôle ailleurs"}, format="json")
    assert unrelated.status_code == 201, unrelated.content
    base = f"/api/access-requests/{unrelated.json()['id']}/"
    assert api(users["dpo"]).post(base + "decision/", {"decision": "refused", "legal_ground": "inquiries"},
                                  format="json").status_code == 200
    assert api(users["dpo"]).post(base + "delivery/", {"delivered_on": today, "means": "courrier"},
                                  format="json").status_code == 200
    assert CustodyEvent.objects.filter(action="access_request.delivered", recipients=["Ginette Sansrapport"]).exists()
    assert CustodyEvent.objects.filter(action="role.granted", organisation=other).exists()

    response = _export(users["legal"], recordings)
    detail = api(users["legal"]).get(f"/api/exports/{response.json()['id']}/").json()
    assert detail["status"] == "ready", detail
    root = extract_zip(download(api(users["legal"]), detail["download_url"]), tmp_path / "unzipped")

    m = manifest(root)
    seen = {e["seq"] for e in m["custody"]["events"]}
    decoded = []

    def walk(node):  # every canonical entry the manifest carries, wherever it is
        if isinstance(node, dict):
            decoded.extend(base64.b64decode(v).decode() for k, v in node.items() if k == "canonical_b64")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(m)
    texts = {"<names>": " ".join(str(p.relative_to(root)) for p in root.rglob("*")), "<events>": " ".join(decoded)}
    for p in root.rglob("*"):
        if p.is_file():
            texts[str(p.relative_to(root))] = p.read_bytes().decode("utf-8", "replace")
            if p.suffix == ".pdf":
                texts[f"{p.name} (text)"] = _pdf_text(p.read_bytes())
    pdf_text = texts[f"tracabilite-{recordings[0].pk}.pdf (text)"]
    assert "Parquet de Chambéry" in pdf_text  # the extractor reads the text
    for secret in ("Ginette", "Sansrapport", "ginette@example.org", "Voisinville", "voisinville-pm",
                   "voisin.superviseur"):
        leaks = [name for name, text in texts.items() if secret.lower() in text.lower()]
        assert not leaks, (secret, leaks)
    # Only the items' own events are disclosed: every other entry is a hash on an audit path.
    own = set(CustodyEvent.objects.filter(recording__in=recordings).values_list("seq", flat=True)) | set(
        CustodyEvent.objects.filter(subject_type="disclosure.export", subject_id=str(detail["id"]))
        .values_list("seq", flat=True))
    assert seen <= own and {e.seq for e in CustodyEvent.objects.filter(action="recording.stored")} <= seen

    result = run_verify(root)
    assert result.returncode == 0, result.stdout + result.stderr
