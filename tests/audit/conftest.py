"""Custody tests: a signing key and a write-once store of their own, and a local RFC 3161 authority."""
from __future__ import annotations

import http.server
import subprocess
import threading
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _custody_env(settings, tmp_path, local_store):
    settings.CUSTODY_SIGNING_KEY = tmp_path / "keys" / "custody-ed25519.pem"
    settings.CUSTODY_TSA_URL = ""
    settings.CUSTODY_TSA_CA_FILE = ""
    yield


# --- A local time-stamping authority: openssl ts -reply behind http.server ---------------------

TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class LocalTSA:
    def __init__(self, root: Path):
        self.root = root
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
                 "-subj", "/CN=Temoin test time-stamping CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
        (root / "tsa.ext").write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"
                                      "extendedKeyUsage=critical,timeStamping\n")
        _openssl("req", *ec, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Temoin test TSA", cwd=root)
        _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", "tsa.crt", "-days", "30", "-extfile", "tsa.ext", cwd=root)
        (root / "serial").write_text("01\n")
        (root / "tsa.cnf").write_text(TSA_CONFIG.format(dir=root))
        self.ca_file = str(root / "ca.crt")
        self.requests = 0
        lock = threading.Lock()
        tsa = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    tsa.requests += 1
                    (root / "query.tsq").write_bytes(body)
                    result = subprocess.run(["openssl", "ts", "-reply", "-config", "tsa.cnf", "-queryfile",
                                             "query.tsq", "-out", "reply.tsr"], cwd=root, capture_output=True)
                    reply = (root / "reply.tsr").read_bytes() if result.returncode == 0 else b""
                self.send_response(200 if reply else 500)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory):
    tsa = LocalTSA(tmp_path_factory.mktemp("tsa"))
    yield tsa
    tsa.stop()


@pytest.fixture
def with_tsa(local_tsa, settings):
    settings.CUSTODY_TSA_URL = local_tsa.url
    settings.CUSTODY_TSA_CA_FILE = local_tsa.ca_file
    return local_tsa
