"""verify.html, the browser verifier of export packages (issue 20): a real package built by the export
task, its own verify.html opened from file:// in headless Chromium with every non-file request aborted,
the package ZIP given to the page as a recipient would. The page must print what verify.py prints on
the same bytes (its text report is compared line by line), say OK on an intact package — ZIP stored as
built, re-zipped with deflate, or as an unzipped folder — and NOT OK naming the file or the signature
when one byte of a recording or of the manifest is changed."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import zipfile

import pytest

from ..browser.test_flow import SHOTS, browser  # noqa: F401  (fixture)
from .helpers import manifest, run_verify
from .test_package import package  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _zip_tree(root, dest, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(dest, "w", compression=compression) as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"{root.name}/{p.relative_to(root)}")
    return dest


def _flip_in_zip(data: bytes, name: str, offset_in_file: int) -> bytes:
    """The received ZIP with one byte of the stored entry ``name`` flipped (its CRC left as it was)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    assert info.compress_type == zipfile.ZIP_STORED  # zipstream.py stores entries: bytes are at a fixed place
    header = data[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    out = bytearray(data)
    out[start + offset_in_file] ^= 0x01
    return bytes(out)


class Page:
    """verify.html opened from file://, offline: every request that is not file:// is aborted and recorded."""

    def __init__(self, browser, html, fragment=""):  # noqa: F811
        self.context = browser.new_context(viewport={"width": 1100, "height": 900})
        self.blocked = []

        def refuse(route):
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                self.blocked.append(route.request.url)
                route.abort()

        self.context.route("**/*", refuse)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(html.as_uri() + fragment)

    def check(self, selector, files) -> dict:
        self.page.evaluate("document.body.dataset.state = ''")
        if selector == "#drop":  # a ZIP dropped on the page, as a file manager would
            data = base64.b64encode(files.read_bytes()).decode()
            transfer = self.page.evaluate_handle("""([data, name]) => {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], name, {type: "application/zip"}));
                return dt;
            }""", [data, files.name])
            self.page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
        else:
            self.page.set_input_files(selector, str(files))
        self.page.wait_for_selector("body[data-state=done] #verdict[data-verdict]", timeout=60_000)
        return {
            "verdict": self.page.get_attribute("#verdict", "data-verdict"),
            "banner": self.page.inner_text("#verdict"),
            "failures": self.page.locator("li.bad").all_inner_texts(),
            "transcript": self.page.text_content("#transcript").splitlines(),
        }

    def close(self):
        self.context.close()


def _same_as_verify_py(result, root):
    """The page's text report is verify.py's output on the same files, but for the first line (the place)."""
    expected = run_verify(root).stdout.splitlines()
    assert result["transcript"][1:] == expected[1:]


@pytest.fixture
def received(package, tmp_path):  # noqa: F811
    """The ZIP as downloaded, and verify.html taken out of it, in a folder of their own."""
    zip_path = tmp_path / "received" / f"temoin-export-{package['export'].pk}.zip"
    zip_path.parent.mkdir()
    zip_path.write_bytes(package["zip"])
    html = tmp_path / "received" / "verify.html"
    html.write_bytes((package["root"] / "verify.html").read_bytes())
    return {**package, "zip_path": zip_path, "html": html}


def test_package_carries_verify_html_listed_in_its_signed_manifest(package):  # noqa: F811
    root = package["root"]
    m = manifest(root)
    html = (root / "verify.html").read_bytes()

    assert m["files"]["verify.html"] == {"sha256": hashlib.sha256(html).hexdigest(), "size": len(html)}
    from evidence.disclosure.zipstream import VERIFY_PAGE

    assert html == VERIFY_PAGE.read_bytes()
    text = html.decode()
    # Self-contained: inline script and style only, nothing fetched, no network allowed by its policy.
    assert "<script src" not in text and "<link" not in text and "://" not in text and "@import" not in text
    assert "connect-src 'none'" in text or "default-src 'none'" in text
    readme = (root / "LISEZMOI.txt").read_text()
    assert "verify.html" in readme and "python3 verify.py" in readme


def test_verify_html_says_ok_on_an_intact_package_offline(received, browser, tmp_path, monkeypatch):  # noqa: F811
    page = Page(browser, received["html"])
    result = page.check("#zip-input", received["zip_path"])

    assert result["verdict"] == "ok", result
    assert "✔ OK" in result["banner"] and "RÉSULTAT : tout concorde" in result["banner"]
    assert "RESULT: everything matches" in result["banner"] and not result["failures"]
    assert page.page.locator("li.ok", has_text="recordings/").count() == 2
    assert page.page.locator("li.ok", has_text="verify.html concorde").count() == 1
    assert page.page.inner_text("#fingerprint") == manifest(received["root"])["public_key"]["key_id"]
    _same_as_verify_py(result, received["root"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(SHOTS / "verify-html.png"), full_page=True)

    # The same ZIP re-compressed with deflate (DecompressionStream), and the unzipped folder.
    deflated = _zip_tree(received["root"], tmp_path / "deflated.zip", zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(deflated) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_DEFLATED}
    result = page.check("#zip-input", deflated)
    assert result["verdict"] == "ok", result
    _same_as_verify_py(result, received["root"])
    result = page.check("#folder-input", received["root"])
    assert result["verdict"] == "ok", result
    _same_as_verify_py(result, received["root"])
    result = page.check("#drop", received["zip_path"])
    assert result["verdict"] == "ok", result
    assert result["transcript"][0].endswith(received["zip_path"].name)
    # ZIP64 records (what a package of several GiB carries), made here with a tiny ZIP64 threshold.
    with monkeypatch.context() as m:
        m.setattr(zipfile, "ZIP64_LIMIT", 1000)
        zip64 = _zip_tree(received["root"], tmp_path / "zip64.zip")
    assert b"PK\x06\x06" in zip64.read_bytes() and b"PK\x06\x07" in zip64.read_bytes()
    result = page.check("#zip-input", zip64)
    assert result["verdict"] == "ok", result
    _same_as_verify_py(result, received["root"])
    assert page.blocked == [] and page.errors == []
    page.close()

    # The other code paths: SHA-256 computed piece by piece by the page, Ed25519 by its RFC 8032 code.
    page = Page(browser, received["html"], "#stream-above=0&ed25519=js")
    result = page.check("#zip-input", received["zip_path"])
    assert result["verdict"] == "ok", result
    assert "Ed25519 : RFC 8032 (JavaScript)" in result["banner"]
    # The progress line named the last file hashed, and the whole.
    progress = page.page.text_content("#progress-text")
    assert "Empreinte de verify.py — 100 %" in progress and "overall 100 %" in progress, progress
    _same_as_verify_py(result, received["root"])
    assert page.blocked == [] and page.errors == []
    page.close()


@pytest.mark.parametrize("fragment", ["", "#stream-above=0"])
def test_one_flipped_byte_in_a_recording_is_not_ok_and_named(received, browser, tmp_path, fragment):  # noqa: F811
    m = manifest(received["root"])
    path = m["recordings"][1]["file"]
    size = m["files"][path]["size"]
    prefix = f"temoin-export-{received['export'].pk}/"
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(_flip_in_zip(received["zip"], prefix + path, size // 2))
    copy = tmp_path / "copy" / received["root"].name
    shutil.copytree(received["root"], copy)
    data = bytearray((copy / path).read_bytes())
    data[size // 2] ^= 0x01
    (copy / path).write_bytes(bytes(data))

    page = Page(browser, received["html"], fragment)
    result = page.check("#zip-input", tampered)

    assert result["verdict"] == "not-ok", result
    assert "✘ NOT OK" in result["banner"] and "NE CONCORDE PAS" in result["banner"]
    assert "DOES NOT MATCH" in result["banner"] and path in result["banner"]
    assert len(result["failures"]) == 1 and path in result["failures"][0]
    assert "fichier modifié" in result["failures"][0] and "file altered" in result["failures"][0]
    _same_as_verify_py(result, copy)
    if not fragment:
        page.page.screenshot(path=str(SHOTS / "verify-html-not-ok.png"), full_page=True)
    assert page.blocked == [] and page.errors == []
    page.close()


@pytest.mark.parametrize("fragment", ["", "#ed25519=js"])
def test_a_tampered_manifest_has_its_signature_refused(received, browser, tmp_path, fragment):  # noqa: F811
    root = tmp_path / "copy" / received["root"].name
    shutil.copytree(received["root"], root)
    data = bytearray((root / "manifest.json").read_bytes())
    data[data.index(b'"recipient": "Parquet') + len(b'"recipient": "P')] ^= 0x01  # stays valid JSON
    (root / "manifest.json").write_bytes(bytes(data))
    tampered = _zip_tree(root, tmp_path / "tampered.zip")

    page = Page(browser, received["html"], fragment)
    result = page.check("#zip-input", tampered)

    assert result["verdict"] == "not-ok", result
    assert any("manifest.json / manifest.sig" in f and "la signature Ed25519 du manifeste ne correspond pas" in f
               and "the manifest's Ed25519 signature does not match" in f for f in result["failures"]), result
    assert "manifest.json / manifest.sig" in result["banner"]
    assert ("RFC 8032 (JavaScript)" if fragment else "Ed25519 : WebCrypto") in result["banner"]
    _same_as_verify_py(result, root)
    page.close()


def test_a_forged_custody_event_is_caught_by_the_signed_tree_in_the_browser(received, browser, tmp_path):  # noqa: F811
    """Rewrite an event and recompute its hash (test_package's forger), manifest left unsigned-over:
    the page names the event and the signature, as verify.py does."""
    root = tmp_path / "copy" / received["root"].name
    shutil.copytree(received["root"], root)
    m = manifest(root)
    event = next(e for e in m["custody"]["events"] if e["action"] == "recording.extracted")
    signed = json.loads(base64.b64decode(event["canonical_b64"]))
    signed["motif"] = event["motif"] = "forgé"
    event["canonical_b64"] = base64.b64encode(json.dumps(signed, sort_keys=True, separators=(",", ":")).encode()).decode()
    event["hash"] = hashlib.sha256(event["prev_hash"].encode() + b"\n" + base64.b64decode(event["canonical_b64"])).hexdigest()
    (root / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True, ensure_ascii=False))

    page = Page(browser, received["html"])
    result = page.check("#folder-input", root)

    assert result["verdict"] == "not-ok"
    assert any(f"custody event #{event['seq']}" in f and "not in the signed tree of segment" in f
               for f in result["failures"]), result
    _same_as_verify_py(result, root)
    page.close()


def test_the_pages_piecewise_sha256_agrees_with_hashlib_whatever_the_pieces(browser):  # noqa: F811
    """The SHA-256 the page computes piece by piece for big files, on lengths around the block and
    padding boundaries, fed in pieces of awkward sizes."""
    from evidence.disclosure.zipstream import VERIFY_PAGE

    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    page.goto(VERIFY_PAGE.as_uri())
    lengths = [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 65537, 300_001]
    got = page.evaluate("""(lengths) => lengths.map((n) => {
        const data = new Uint8Array(n);
        for (let i = 0; i < n; i++) data[i] = (i * 31 + (i >> 8)) & 255;
        const sha = new Sha256();
        for (let o = 0, step = 1; o < n; o += step, step = (step * 7 + 3) % 4099 + 1) sha.update(data.subarray(o, o + step));
        return sha.hexdigest();
    })""", lengths)
    for n, digest in zip(lengths, got):
        data = bytes(((i * 31 + (i >> 8)) & 255) for i in range(n))
        assert digest == hashlib.sha256(data).hexdigest(), n
    page.close()


def test_a_share_recipient_is_told_to_open_verify_html_and_it_verifies_what_they_download(
        package, users, browser, live_server, tmp_path):  # noqa: F811
    """The court clerk's path: the share page (no account) explains verify.html; the ZIP downloaded
    from it holds a verify.html that, opened offline, says OK on that very ZIP."""
    import datetime as dt

    from django.utils import timezone

    from .helpers import api

    response = api(users["legal"]).post(f"/api/exports/{package['export'].pk}/shares/", {
        "recipient": "Greffe du tribunal judiciaire de Chambéry", "max_downloads": 2,
        "expires_at": (timezone.now() + dt.timedelta(days=3)).isoformat()}, format="json")
    assert response.status_code == 201, response.content
    url = live_server.url + response.json()["url"].split("testserver", 1)[1]
    context = browser.new_context(viewport={"width": 1000, "height": 900}, accept_downloads=True)
    share = context.new_page()
    share.goto(url)
    steps = share.inner_text("#verifier")
    assert "verify.html" in steps and "NOT OK" in steps and "python3 verify.py" in steps
    share.screenshot(path=str(SHOTS / "share-public.png"), full_page=True)
    with share.expect_download() as download:
        share.click("text=Télécharger (ZIP)")
    received = tmp_path / "telechargement.zip"
    download.value.save_as(received)
    context.close()
    assert received.read_bytes() == package["zip"]
    html = tmp_path / "verify.html"
    with zipfile.ZipFile(received) as zf:
        html.write_bytes(zf.read(f"temoin-export-{package['export'].pk}/verify.html"))

    page = Page(browser, html)
    result = page.check("#zip-input", received)

    assert result["verdict"] == "ok", result
    assert page.blocked == [] and page.errors == []
    page.close()


@pytest.mark.parametrize("purpose, redaction, section", [
    ("judicial", "others", "copie floutée (others) issue de l'original"),
    ("training", "all", "3. Copies de formation anonymisées / Anonymised training copies"),
])
def test_a_redacted_copy_and_a_training_package_verify_in_the_browser(recordings, users, local_store, browser,
                                                                      tmp_path, purpose, redaction, section):  # noqa: F811
    """The other package shapes: an approved redacted copy (its SHA-256 in a redaction event) and an
    anonymised training package (no custody proof, the stated sound of each video)."""
    from .helpers import api, approved_copy, download, extract_zip, redaction_ready

    if not redaction_ready():
        pytest.fail("evidence.redaction.services is missing: the redacted path cannot be tested")
    rec = recordings[0]
    approved_copy(rec, redaction, users["legal"])
    response = api(users["legal"]).post("/api/exports/", {
        "recordings": [rec.pk], "purpose": purpose, "recipient": "Tribunal judiciaire de Chambéry",
        "motif": "Communication", "redaction": redaction}, format="json")
    assert response.status_code == 201, response.content
    detail = api(users["legal"]).get(f"/api/exports/{response.json()['id']}/").json()
    assert detail["status"] == "ready", detail
    data = download(api(users["legal"]), detail["download_url"])
    root = extract_zip(data, tmp_path / "unzipped")
    received = tmp_path / "received.zip"
    received.write_bytes(data)

    page = Page(browser, root / "verify.html")
    result = page.check("#zip-input", received)

    assert result["verdict"] == "ok", result
    assert any(section in line for line in result["transcript"]), result["transcript"]
    _same_as_verify_py(result, root)
    assert page.blocked == [] and page.errors == []
    page.close()
