"""compose.yaml rehearsed without Docker: each Témoin service's command runs as a process.

No Docker engine runs here, so the rehearsal does what compose would, one step at a time:
the image is the runtime-only install of requirements.lock (tests/deploy/runtime.py) plus the
Dockerfile's build steps (data and keys directories owned by uid 10001, collectstatic); every
service runs its compose command as uid 10001, with exactly the environment compose gives it
(the image's ENV, ``env_file: temoin.env`` copied from deploy/temoin.env.example, ``environment``
interpolated from a ``.env`` written like deploy/env.example says), against PostgreSQL, Redis and
Ceph RGW (moto outside CI when Ceph is not installed); the backing services themselves are this
machine's. Only what one shared host forces is translated (tests/deploy/compose.py): container
paths to directories of the rehearsal, and published ports to free ones.

Then it checks what an operator would: ``migrate`` exits 0 and leaves the signing key in the keys
volume, every healthcheck passes, and a camera docked into dockd's folder ends verified (wiped),
played (through the TLS proxy, HTTP Range) and erasable at its retention end.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ..conftest import IN_CI, ceph_rgw_start, free_port, require_service
from .compose import Compose, Host, argv, healthcheck_argv, image_env, image_workdir, read_env_file
from .runtime import ROOT, base_env, drop_database, runtime_venv, scratch_database

pytestmark = pytest.mark.services

UID = 10001  # the image's user (Dockerfile)
TEMOIN_SERVICES = ("web", "worker-media", "dock-worker", "beat", "dockd")
HOST_NAME = "temoin.test"
IMAGE_DATA_DIR = "/var/lib/temoin"
CADDY_IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "XDG_CONFIG_HOME": "/config", "XDG_DATA_HOME": "/data"}


def _ensure_image_user() -> None:
    try:
        import pwd

        pwd.getpwuid(UID)
    except KeyError:
        subprocess.run(["groupadd", "--system", "--gid", str(UID), "temoin"], check=False)
        subprocess.run(["useradd", "--system", "--uid", str(UID), "--gid", str(UID), "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "temoin"], check=True)


def _object_store(request):
    """Ceph RGW; outside CI, moto when Ceph is not installed."""
    if shutil.which("radosgw") or IN_CI:
        return ceph_rgw_start()
    return request.getfixturevalue("moto_s3")


def _certificate(directory: Path) -> Path:
    """A self-signed certificate for HOST_NAME in fullchain.pem / privkey.pem (deploy/tls/)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST_NAME)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST_NAME)]), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True)
    (directory / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "fullchain.pem"


def _chown(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, UID, UID)
        for name in dirs + files:
            os.chown(os.path.join(root, name), UID, UID, follow_symlinks=False)


class Rehearsal:
    def __init__(self, project: Path, compose: Compose, host: Host, image: dict[str, str], logs: Path):
        self.project, self.compose, self.host, self.image, self.logs = project, compose, host, image, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.workdir = host.paths[image_workdir()]

    def env(self, service: str) -> dict[str, str]:
        # The proxy runs Caddy's image, whose ENV puts its state in its two volumes.
        image = CADDY_IMAGE_ENV if service == "proxy" else self.image
        env = self.compose.environment(service, image=image)
        env = {key: self.host.value(value) for key, value in env.items()}
        # What Docker adds: the container's host name and the user's home (the image's /var/lib/temoin).
        env.setdefault("HOSTNAME", os.uname().nodename)
        env.setdefault("HOME", str(self.host.paths[IMAGE_DATA_DIR]))
        return env

    def command(self, service: str) -> list[str]:
        return [self.host.word(word) for word in argv(self.compose.services[service]["command"])]

    def start(self, service: str, *, extra_env: dict[str, str] | None = None) -> None:
        log = open(self.logs / f"{service}.log", "wb")
        self.processes[service] = subprocess.Popen(
            self.command(service), cwd=self.workdir, env=self.env(service) | (extra_env or {}), user=UID, group=UID,
            extra_groups=[], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def run(self, service: str, words: list[str], *, timeout: float = 300, check: bool = True,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``docker compose run``/``exec``: a command with the service's environment, as its user."""
        proc = subprocess.run([self.host.word(w) for w in words], cwd=self.workdir,
                              env=self.env(service) | (extra_env or {}), user=UID, group=UID, extra_groups=[],
                              capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, self.explain(f"{service}: {' '.join(words)} exited {proc.returncode}\n"
                                                      f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def healthy(self, service: str, *, deadline: float, extra_env: dict[str, str] | None = None) -> str:
        """Run the service's healthcheck until it passes (compose would run it every interval)."""
        test = healthcheck_argv(self.compose.services[service]["healthcheck"]["test"])
        last = ""
        while time.monotonic() < deadline:
            self.alive(service)
            proc = self.run(service, test, check=False, timeout=60, extra_env=extra_env)
            if proc.returncode == 0:
                return proc.stdout
            last = f"exit {proc.returncode}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
            time.sleep(1)
        pytest.fail(self.explain(f"{service}'s healthcheck never passed: {last}"))

    def alive(self, service: str) -> None:
        proc = self.processes.get(service)
        if proc is not None and proc.poll() is not None:
            pytest.fail(self.explain(f"{service} exited with {proc.returncode}"))

    def explain(self, message: str) -> str:
        tails = [f"--- {log.name}\n{log.read_text(errors='replace')[-2500:]}" for log in sorted(self.logs.glob("*.log"))]
        return message + "\n" + "\n".join(tails)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class HTTPS:
    """Requests to the proxy as a browser would send them: https://temoin.test, on this machine."""

    def __init__(self, port: int, cafile: Path):
        import urllib3

        self.pool = urllib3.HTTPSConnectionPool("127.0.0.1", port, server_hostname=HOST_NAME,
                                                assert_hostname=HOST_NAME, ca_certs=str(cafile),
                                                cert_reqs=ssl.CERT_REQUIRED, retries=False, timeout=60)
        self.token = ""

    def request(self, method: str, path: str, *, body: dict | None = None, headers: dict | None = None):
        headers = {"Host": HOST_NAME, **(headers or {})}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self.pool.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers,
                                 redirect=False, preload_content=True, decode_content=False)

    def json(self, method: str, path: str, *, body: dict | None = None, expect: int = 200):
        response = self.request(method, path, body=body)
        assert response.status == expect, f"{method} {path}: {response.status} {response.data[:1000]!r}"
        return json.loads(response.data)


@pytest.fixture
def rehearsal(request, redis_url, clip_library):
    require_service("root", os.geteuid() == 0, "the rehearsal runs the services as uid 10001")
    require_service("Caddy", bool(shutil.which("caddy")), "the TLS proxy: apt-get install caddy (.ci/run does)")
    require_service("faketime", bool(shutil.which("faketime")), "apt-get install faketime (.ci/run does)")
    _ensure_image_user()
    store = _object_store(request)
    venv = runtime_venv()
    database = scratch_database("compose")
    project = Path(tempfile.mkdtemp(prefix="temoin-compose-"))
    project.chmod(0o755)
    processes: Rehearsal | None = None
    try:
        (project / "deploy").symlink_to(ROOT / "deploy")  # bind mounts ./deploy/… resolve here
        cafile = _certificate(project / "tls")
        docks = project / "docks"
        docks.mkdir()
        _chown(docks)
        db = urlsplit(database)
        web_port, https_port, http_port, admin_port = (free_port() for _ in range(4))
        bucket = f"temoin-compose-{secrets.token_hex(4)}"
        # .env as deploy/env.example says, pointed at this machine's services.
        dotenv = {
            "COMPOSE_PROFILES": "proxy",
            "TEMOIN_HOST": HOST_NAME,
            "DJANGO_ALLOWED_HOSTS": HOST_NAME,
            "DJANGO_CSRF_TRUSTED_ORIGINS": f"https://{HOST_NAME}",
            "TEMOIN_TLS_DIR": str(project / "tls"),
            "DJANGO_SECRET_KEY": secrets.token_hex(32),
            "POSTGRES_USER": db.username or "postgres",
            "POSTGRES_PASSWORD": db.password or "trust-authentication-ignores-it",
            "POSTGRES_HOST": db.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(db.port or 5432),
            "POSTGRES_DB": db.path.lstrip("/"),
            "CELERY_BROKER_URL": redis_url,
            "S3_ENDPOINT_URL": store.url,
            "S3_ACCESS_KEY_ID": store.access_key,
            "S3_SECRET_ACCESS_KEY": store.secret_key,
            "S3_BUCKET": bucket,
            "MINIO_ROOT_USER": "unused-without-minio",
            "MINIO_ROOT_PASSWORD": "unused-without-minio",
            "TEMOIN_DOCK_NAME": "rehearsal",
            "TEMOIN_DOCK_ROOT": str(docks),
            "TEMOIN_UPSTREAM": f"127.0.0.1:{web_port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "TEMOIN_MEDIA_CONCURRENCY": "1",
        }
        shutil.copyfile(ROOT / "deploy" / "temoin.env.example", project / "temoin.env")
        compose = Compose(project, dotenv)

        # The image: its data directory and keys directory owned by its user, as the Dockerfile makes them.
        data = project / "image" / IMAGE_DATA_DIR.lstrip("/")
        (data / "keys").mkdir(parents=True)
        data.chmod(0o750)
        (data / "keys").chmod(0o700)
        host = Host(paths={image_workdir(): ROOT, IMAGE_DATA_DIR: data},
                    ports={"0.0.0.0:8000": f"127.0.0.1:{web_port}", "127.0.0.1:8000": f"127.0.0.1:{web_port}",
                           "127.0.0.1:2019": f"127.0.0.1:{admin_port}"})
        for service in ("migrate", *TEMOIN_SERVICES, "proxy"):
            for source, target in compose.mounts(service):
                if target.startswith(IMAGE_DATA_DIR + "/"):
                    continue  # a named volume inside the image's data directory: it is that directory here
                if source.startswith("/"):
                    host.paths[target] = Path(source)
                else:
                    host.paths[target] = project / "volumes" / source
                    host.paths[target].mkdir(parents=True, exist_ok=True)
        image = image_env() | {"PATH": base_env(venv)["PATH"]}
        logs = project / "logs"
        logs.mkdir()
        processes = Rehearsal(project, compose, host, image, logs)
        # The Dockerfile's collectstatic, as root at build time, then everything handed to the user.
        build_env = {key: host.value(value) for key, value in image.items()} | {
            "DJANGO_SECRET_KEY": "build-only-not-a-secret", "DJANGO_DEBUG": "false"}
        subprocess.run([str(venv / "bin" / "python"), "manage.py", "collectstatic", "--noinput"], cwd=ROOT,
                       env=build_env, check=True, capture_output=True, timeout=300)
        _chown(project / "image")
        _chown(project / "volumes")
        _chown(project / "tls")
        processes.ports = {"https": https_port, "http": http_port, "admin": admin_port}
        processes.cafile, processes.docks, processes.store, processes.bucket = cafile, docks, store, bucket
        yield processes
    finally:
        if processes is not None:
            processes.stop()
        drop_database(database)
        shutil.rmtree(project, ignore_errors=True)


def test_compose_as_shipped_starts_and_a_docked_camera_ends_verified_played_and_erasable(rehearsal, clip_library):
    r = rehearsal
    deadline = time.monotonic() + 300

    # --- migrate: migrations, the custody key in the keys volume, the locked bucket -------------------
    migrate = r.run("migrate", r.command("migrate"))
    assert "Object Lock enabled" in migrate.stdout, migrate.stdout
    key = r.host.paths[IMAGE_DATA_DIR] / "keys" / "custody-ed25519.pem"
    assert key.is_file() and key.stat().st_uid == UID

    # --- every long-running service, and its healthcheck -------------------------------------------
    for service in TEMOIN_SERVICES:
        r.start(service)
    # Ports inside the proxy's container, moved to free ones: one network namespace here.
    proxy_env = {"CADDY_HTTP_PORT": str(r.ports["http"]), "CADDY_HTTPS_PORT": str(r.ports["https"]),
                 "CADDY_ADMIN": f"127.0.0.1:{r.ports['admin']}"}
    r.start("proxy", extra_env=proxy_env)
    for service in TEMOIN_SERVICES:
        r.healthy(service, deadline=deadline)
    r.healthy("proxy", deadline=deadline, extra_env=proxy_env)

    # --- the first organisation, its officer and camera (docker compose exec web …) ----------------
    manage = ["python", "manage.py"]
    r.run("web", manage + ["addorg", "ville-test", "Police municipale de Ville-Test"])
    token = r.run("web", manage + ["adduser", "agent.durand", "--org", "ville-test", "--role", "officer",
                                   "--matricule", "M042"]).stdout.strip().splitlines()[-1]
    r.run("web", manage + ["addcamera", "BWC-0042", "--org", "ville-test", "--officer", "M042"])

    # --- through the TLS proxy: HTTPS, HSTS from Témoin (it trusts X-Forwarded-Proto), HTTP redirected
    https = HTTPS(r.ports["https"], r.cafile)
    # The workers' health is recorded by a beat-queued task (issue 17), first queued when beat starts.
    page = https.request("GET", "/sante/", headers={"Accept": "application/json"})
    while page.status != 200 and time.monotonic() < deadline:
        time.sleep(1)
        page = https.request("GET", "/sante/", headers={"Accept": "application/json"})
    assert page.status == 200, page.data[:500]
    assert page.headers.get("Strict-Transport-Security", "").startswith("max-age=")
    import urllib3

    plain = urllib3.HTTPConnectionPool("127.0.0.1", r.ports["http"], retries=False, timeout=30).request(
        "GET", "/sante/", headers={"Host": HOST_NAME}, redirect=False)
    assert plain.status in (301, 308) and plain.headers["Location"].startswith(f"https://{HOST_NAME}")

    # --- static files: hashed names, gzip, cached for good ------------------------------------------
    login = https.request("GET", "/", headers={"Accept": "text/html"})
    while login.status in (301, 302):
        login = https.request("GET", login.headers["Location"].replace(f"https://{HOST_NAME}", ""))
    found = re.search(r'href="(/static/temoin/temoin\.[0-9a-f]{12}\.css)"', login.data.decode())
    assert found, f"no hashed stylesheet in the login page: {login.data[:2000]!r}"
    css = found.group(1)
    static = https.request("GET", css, headers={"Accept-Encoding": "gzip"})
    assert static.status == 200
    assert static.headers.get("Content-Encoding") == "gzip"
    assert "immutable" in static.headers.get("Cache-Control", "")

    # --- a camera docked into dockd's folder ---------------------------------------------------------
    slot = r.docks / "slot-1"
    (slot / "DCIM").mkdir(parents=True)
    shutil.copyfile(clip_library["h264"], slot / "DCIM" / "clip-0001.mp4")
    (slot / "DCIM" / "clip-0001.json").write_text(json.dumps({
        "officer": "M042", "trigger_reason": "incident", "subject_notified": True, "purpose": "evidence"}))
    (slot / "DEVICE.json").write_text(json.dumps({"serial": "BWC-0042", "model": "Demo", "firmware": "1.0"}))
    _chown(slot)

    https.token = token
    recording = None
    ready_deadline = time.monotonic() + 180
    while time.monotonic() < ready_deadline:
        for service in TEMOIN_SERVICES:
            r.alive(service)
        listed = https.json("GET", "/api/recordings/")
        if listed["count"] and listed["results"][0]["status"] in ("ready", "unplayable", "failed"):
            recording = listed["results"][0]
            break
        time.sleep(1)
    assert recording is not None, r.explain("the docked clip never became ready")
    assert recording["status"] == "ready", r.explain(f"the clip ended {recording['status']}")

    # Verified: stored, read back and locked, then wiped from the camera (only then).
    custody = https.json("GET", f"/api/recordings/{recording['id']}/custody/")
    actions = [event["action"] for event in (custody["results"] if isinstance(custody, dict) else custody)]
    assert {"recording.stored", "recording.verified"} <= set(actions), actions
    wipe_deadline = time.monotonic() + 60
    while (slot / "DCIM" / "clip-0001.mp4").exists() and time.monotonic() < wipe_deadline:
        time.sleep(0.5)
    assert not (slot / "DCIM" / "clip-0001.mp4").exists(), "the verified clip is still on the camera"

    # Played: a consultation with a motif, then the playback copy, by HTTP Range, through the proxy.
    consultation = https.json("POST", f"/api/recordings/{recording['id']}/consultations/",
                              body={"motif": "Vérification du déploiement"}, expect=201)
    media = urlsplit(consultation["media_url"])
    part = https.request("GET", media.path + (f"?{media.query}" if media.query else ""),
                         headers={"Range": "bytes=0-1023"})
    assert part.status == 206, part.data[:300]
    assert part.data[4:8] == b"ftyp" and len(part.data) == 1024

    # Erasable at its retention end: locked in the store exactly until then, due then, and not before.
    from evidence.integrations.s3 import S3Store

    store = S3Store(endpoint_url=r.store.url, bucket=r.bucket, access_key=r.store.access_key,
                    secret_key=r.store.secret_key)
    detail = https.json("GET", f"/api/recordings/{recording['id']}/")
    retain_until = dt.datetime.fromisoformat(detail["retain_until"])
    versions = {key: store.versions(key) for key in _store_keys(r, recording["id"])}
    assert all(len(found) == 1 for found in versions.values()), versions
    for key, (version,) in versions.items():
        info = store.head(key, version)
        assert (info.mode, info.legal_hold) == ("COMPLIANCE", False), (key, info)
        assert retain_until <= info.retain_until <= retain_until + dt.timedelta(days=1), (key, info)
    # The sweep refuses a clock in its future: it runs here at the retention end, under faketime.
    at = (retain_until + dt.timedelta(minutes=1)).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    due = r.run("web", ["faketime", at] + manage + ["retention", "sweep", "--dry-run"],
                extra_env={"TZ": "UTC", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}).stdout
    assert "would erase 1" in due, due
    now = r.run("web", manage + ["retention", "sweep"]).stdout
    assert "erased 0" in now, now
    # The law holds over the whole deployment (database, store, custody log): docs/compliance.md.
    audit = r.run("web", manage + ["compliance", "audit", "--no-record"]).stdout
    assert " 0 violation(s)" in audit and "FAIL" not in audit, audit


def _store_keys(r: Rehearsal, recording_id: int) -> list[str]:
    code = ("import django; django.setup(); from evidence.models import Recording; "
            f"rec = Recording.objects.get(pk={int(recording_id)}); "
            "print('\\n'.join(k for k in (rec.store_key, rec.playback_key, rec.poster_key, rec.sidecar_key) if k))")
    return r.run("web", ["python", "-c", code]).stdout.split()
