"""The ZIP of an export package, streamed straight into the write-once store: a pipe the store reads
while a thread writes the archive (no temporary copy of the package), each file hashed as it is
written (the manifest lists every file's SHA-256)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 8 * 1024 * 1024
VERIFY_SCRIPT = Path(__file__).with_name("verifier") / "verify.py"  # shipped in every package
VERIFY_PAGE = Path(__file__).with_name("verifier") / "verify.html"  # the same checks in a browser, offline


@dataclass
class Built:
    key: str
    version_id: str
    sha256: str
    size: int
    manifest_sha256: str
    retain_until: dt.datetime
    files: int
    checkpoints: list[int]


class ZipPipe:
    """A readable end of a pipe into which ``produce(writable)`` writes, in a thread.

    The store reads the ZIP from here. If the producer fails, the read at the end of the stream
    raises instead of returning EOF, so that the store never commits a truncated package.
    """

    def __init__(self, produce):
        import os
        import threading

        r, w = os.pipe()
        try:  # Linux: a 1 MiB pipe instead of 64 KiB, fewer context switches
            import fcntl

            fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
        except (ImportError, OSError):
            pass
        self.reader = os.fdopen(r, "rb", buffering=0)
        self.writer = os.fdopen(w, "wb", buffering=CHUNK)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(produce,), name="export-zip", daemon=True)

    def _run(self, produce) -> None:
        try:
            produce(self.writer)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self.error = exc
        finally:
            try:
                self.writer.close()
            except OSError as exc:  # the consumer went away (broken pipe)
                self.error = self.error or exc

    def __enter__(self):
        self.thread.start()
        return self

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = CHUNK
        parts, want = [], n
        while want > 0:
            data = self.reader.read(want)
            if not data:
                break
            parts.append(data)
            want -= len(data)
        data = b"".join(parts)
        if not data:
            self.thread.join()
            if self.error is not None:
                raise RuntimeError(f"export package not built: {self.error}") from self.error
        return data

    def __exit__(self, *exc_info) -> None:
        self.reader.close()  # a producer still writing gets a broken pipe and stops
        self.thread.join()


class ZipWriter:
    """Adds files to the ZIP, hashing each one as it is written."""

    def __init__(self, zf: zipfile.ZipFile, when: dt.datetime):
        self.zf = zf
        self.date_time = when.astimezone(dt.timezone.utc).timetuple()[:6]
        self.files: dict[str, dict] = {}

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def add_bytes(self, name: str, data: bytes, listed: bool = True) -> str:
        self.zf.writestr(self._info(name), data)
        digest = hashlib.sha256(data).hexdigest()
        if listed:
            self.files[name] = {"sha256": digest, "size": len(data)}
        return digest

    def add_stream(self, name: str, source, progress=None) -> tuple[str, int]:
        sha, size = hashlib.sha256(), 0
        with self.zf.open(self._info(name), "w", force_zip64=True) as out:
            while data := source.read(CHUNK):
                sha.update(data)
                out.write(data)
                size += len(data)
                if progress:
                    progress(len(data))
        self.files[name] = {"sha256": sha.hexdigest(), "size": size}
        return sha.hexdigest(), size

    def add_verifiers(self, prefix: str) -> None:
        """verify.py and verify.html, listed in the manifest like every other file: the recipient runs
        the one they prefer (Python 3.8+, or a browser opened on the file, offline)."""
        self.add_bytes(prefix + "verify.py", VERIFY_SCRIPT.read_bytes())
        self.add_bytes(prefix + "verify.html", VERIFY_PAGE.read_bytes())

    def add_signed_manifest(self, prefix: str, manifest: dict) -> str:
        """manifest.json (every file listed before it) and manifest.sig, its Ed25519 signature with
        the deployment's key; returns the manifest's SHA-256."""
        from audit.integrations import signing

        body = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False).encode()
        self.add_bytes(prefix + "manifest.json", body, listed=False)
        signature, _public = signing.sign(body)
        self.add_bytes(prefix + "manifest.sig", (signature + "\n").encode(), listed=False)
        return hashlib.sha256(body).hexdigest()
