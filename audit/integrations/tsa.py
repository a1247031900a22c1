"""RFC 3161 time-stamping of custody checkpoints, through the ``openssl ts`` command line.

``settings.CUSTODY_TSA_URL`` names the authority (empty: no timestamp). Verification needs the
authority's CA certificate: ``settings.CUSTODY_TSA_CA_FILE`` (PEM). The request asks the authority to
include its certificate in the reply (``-cert``), so the CA file is all a verifier needs.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

TIMEOUT = 30


class TimestampError(Exception):
    pass


@dataclass(frozen=True)
class Timestamp:
    token: bytes  # DER TimeStampToken (the reply's token, without the status)
    time: dt.datetime  # genTime, UTC
    url: str


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=TIMEOUT)


def ca_file() -> str:
    return str(getattr(settings, "CUSTODY_TSA_CA_FILE", "") or "")


def timestamp(data: bytes, *, url: str | None = None) -> Timestamp:
    """Ask the authority at ``url`` to timestamp ``data`` (its SHA-256); check the reply."""
    url = url if url is not None else settings.CUSTODY_TSA_URL
    if not url:
        raise TimestampError("no time-stamping authority configured (TEMOIN_TSA_URL)")
    with tempfile.TemporaryDirectory(prefix="temoin-tsa-") as tmp:
        d = Path(tmp)
        (d / "data").write_bytes(data)
        q = _openssl("ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "request.tsq", cwd=d)
        if q.returncode != 0:
            raise TimestampError(f"openssl ts -query failed: {q.stderr.decode(errors='replace').strip()}")
        request = urllib.request.Request(url, data=(d / "request.tsq").read_bytes(), method="POST",
                                         headers={"Content-Type": "application/timestamp-query"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                (d / "reply.tsr").write_bytes(response.read())
        except OSError as exc:
            raise TimestampError(f"time-stamping authority {url} unreachable: {exc}") from exc
        # The reply must answer this request (same digest, same nonce) and be granted.
        args = ["ts", "-verify", "-in", "reply.tsr", "-queryfile", "request.tsq"]
        if ca_file():
            args += ["-CAfile", ca_file()]
            v = _openssl(*args, cwd=d)
            if v.returncode != 0:
                raise TimestampError(f"the authority's reply does not verify: "
                                     f"{v.stderr.decode(errors='replace').strip()}")
        t = _openssl("ts", "-reply", "-in", "reply.tsr", "-token_out", "-out", "token.der", cwd=d)
        if t.returncode != 0:
            raise TimestampError(f"unreadable reply from {url}: {t.stderr.decode(errors='replace').strip()}")
        token = (d / "token.der").read_bytes()
        return Timestamp(token=token, time=token_time(token), url=url)


_TIME = re.compile(r"^Time stamp: (.+)$", re.M)


def token_time(token: bytes) -> dt.datetime:
    with tempfile.TemporaryDirectory(prefix="temoin-tsa-") as tmp:
        d = Path(tmp)
        (d / "token.der").write_bytes(token)
        r = _openssl("ts", "-reply", "-in", "token.der", "-token_in", "-text", cwd=d)
        if r.returncode != 0:
            raise TimestampError(f"unreadable timestamp token: {r.stderr.decode(errors='replace').strip()}")
    m = _TIME.search(r.stdout.decode(errors="replace"))
    if not m:
        raise TimestampError("timestamp token without a time")
    text = re.sub(r"\.\d+", "", m.group(1).strip())  # "Nov 26 18:00:00.123 2026 GMT" (with accuracy)
    text = re.sub(r"\s+", " ", text)
    return dt.datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.timezone.utc)


def verify(token: bytes, data: bytes) -> tuple[bool | None, str]:
    """(True, "") when the token timestamps ``data`` and chains to the configured CA; (None, why)
    when it cannot be checked here (no CA file); (False, why) when it does not verify."""
    if not ca_file():
        return None, "no CA certificate configured for the time-stamping authority (CUSTODY_TSA_CA_FILE)"
    with tempfile.TemporaryDirectory(prefix="temoin-tsa-") as tmp:
        d = Path(tmp)
        (d / "token.der").write_bytes(token)
        (d / "data").write_bytes(data)
        r = _openssl("ts", "-verify", "-token_in", "-in", "token.der", "-data", "data", "-CAfile", ca_file(), cwd=d)
    if r.returncode == 0:
        return True, ""
    out = (r.stdout + r.stderr).decode(errors="replace").strip()
    return False, " ".join(out.split()) or "verification failed"
