"""Shared fixtures: real components (ffmpeg, local store on disk, moto's S3 server over HTTP).

Services that cannot be started by the tests themselves (PostgreSQL, Redis) come from the
environment. Under CI=true a test that needs a missing service fails instead of skipping.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from django.utils import timezone

from accounts.services import organisation_create, user_create
from devices.services import camera_assign, camera_register
from evidence.integrations import ffmpeg
from evidence.integrations import store as store_module

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_service(name: str, available: bool, how: str) -> None:
    if available:
        return
    message = f"{name} is not available ({how})"
    if IN_CI:
        pytest.fail(message + " — required under CI=true", pytrace=False)
    pytest.skip(message)


def migrate_to(*targets) -> None:
    """Move the test database's schema to ``targets`` ((app, migration) pairs); none: the latest.

    A test that migrates back must end with ``migrate_to()``: the tests after it on the same worker
    need the current schema.
    """
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(list(targets) or executor.loader.graph.leaf_nodes())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    """Users in tests have passwords only to sign in: PBKDF2's 1,000,000 rounds cost 0.3 s a user
    here, 8 s a test where a fixture makes a commune's thirteen accounts (the authorisation matrix:
    7 minutes of CI). The production hashers stay after it, so hashes made by a real process (the
    demo command, a server) still verify here; a test about hashing itself sets its own list."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                                 *[h for h in settings.PASSWORD_HASHERS if "MD5" not in h]]


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    # Unit and API tests run queued tasks inline; tests/integration runs a real worker.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield


@pytest.fixture
def local_store(tmp_path, settings):
    settings.STORE_BACKEND = "local"
    settings.STORE_LOCAL_ROOT = tmp_path / "store"
    store_module.reset_store()
    yield store_module.get_store()
    store_module.reset_store()


# --- S3: moto's standalone server over real HTTP ---------------------------------------------

class MotoS3:
    # moto takes any keys.
    access_key = secret_key = "testing"

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.stop()

    def restart(self):
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()


@pytest.fixture(scope="session")
def moto_s3():
    server = MotoS3()
    yield server
    server.stop()


# --- S3 with Object Lock enforced: Ceph's RADOS Gateway (deploy/ceph/rgw.sh) -----------------
# moto lets retention be shortened and COMPLIANCE be switched to GOVERNANCE; Ceph RGW refuses, as
# a production store must. .ci/run installs and starts it; here the script starts it when its
# packages are installed (idempotent, about 6 s when the cluster exists). Leave it running between
# runs, or stop it with `deploy/ceph/rgw.sh stop`.
CEPH_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "ceph" / "rgw.sh"


@dataclasses.dataclass(frozen=True)
class CephRGW:
    url: str
    access_key: str
    secret_key: str


def ceph_rgw_start() -> CephRGW:
    """The gateway started by deploy/ceph/rgw.sh; fails under CI=true when it cannot run, else skips."""
    if not shutil.which("radosgw"):
        require_service("Ceph RGW", False, "not installed: deploy/ceph/rgw.sh install, as root")
    try:
        proc = subprocess.run(["bash", str(CEPH_SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as exc:
        require_service("Ceph RGW", False, f"deploy/ceph/rgw.sh start took too long: {exc}")
    require_service("Ceph RGW", proc.returncode == 0, f"deploy/ceph/rgw.sh start failed: {proc.stderr[-2000:]}")
    values = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    return CephRGW(url=values["TEMOIN_CEPH_S3_URL"], access_key=values["TEMOIN_CEPH_ACCESS_KEY"],
                   secret_key=values["TEMOIN_CEPH_SECRET_KEY"])


@pytest.fixture(scope="session")
def ceph_rgw():
    return ceph_rgw_start()


S3_SERVERS = {"moto": "moto_s3", "ceph": "ceph_rgw"}


@pytest.fixture
def s3_store(settings, request):
    """The S3 store on a bucket of the test's own, with Object Lock. moto by default;
    ``@pytest.mark.parametrize("s3_store", ["moto", "ceph"], indirect=True)`` runs a test on both."""
    from evidence.integrations.s3 import S3Store

    import re
    import uuid

    server = request.getfixturevalue(S3_SERVERS[getattr(request, "param", "moto")])
    # One bucket per test: S3 names allow lowercase letters, digits and hyphens only.
    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:30].strip("-")
    bucket = f"ev-{slug}-{uuid.uuid4().hex[:8]}"
    settings.STORE_BACKEND = "s3"
    settings.S3_ENDPOINT_URL = server.url
    settings.S3_BUCKET = bucket
    settings.S3_ACCESS_KEY_ID = server.access_key
    settings.S3_SECRET_ACCESS_KEY = server.secret_key
    settings.S3_PART_SIZE = 5 * 1024 * 1024
    store_module.reset_store()
    store = store_module.get_store()
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    yield store
    store_module.reset_store()


# --- Domain objects --------------------------------------------------------------------------

@pytest.fixture
def org(db):
    from django.db import transaction

    with transaction.atomic():
        return organisation_create(slug="chambery", name="Police municipale de Chambéry")


@pytest.fixture
def make_user(db, org):
    from django.db import transaction

    def make(username, role="officer", matricule="", organisation=None, password="Témoin-demo-2026"):
        with transaction.atomic():
            user, token = user_create(username=username, organisation=organisation or org, role=role,
                                      matricule=matricule, password=password)
        user.api_token = token
        return user

    return make


@pytest.fixture
def officer(make_user):
    return make_user("agent.martin", matricule="M042")


@pytest.fixture
def camera(db, org, officer):
    from django.db import transaction

    with transaction.atomic():
        cam = camera_register(serial="BWC-0042", organisation=org, model="Demo")
        camera_assign(camera=cam, officer=officer, starts_at=timezone.now() - dt.timedelta(days=30))
    return cam


# --- Media: real clips generated by ffmpeg, once per test session ---------------------------

@pytest.fixture(scope="session")
def clip_library(tmp_path_factory):
    """Camera-like clips of every kind the bad-input list names, made once."""
    root = tmp_path_factory.mktemp("clips")
    created = dt.datetime(2026, 11, 20, 21, 30, tzinfo=dt.timezone.utc)
    lib = {
        "h264": ffmpeg.synthesize_clip(root / "h264.mp4", seconds=3, creation_time=created),
        "h264_noaudio": ffmpeg.synthesize_clip(root / "h264_noaudio.mp4", seconds=2, audio=False),
        "hevc": ffmpeg.synthesize_clip(root / "hevc.mp4", seconds=2, codec="hevc"),
        "mjpeg": ffmpeg.synthesize_clip(root / "mjpeg.avi", seconds=2, codec="mjpeg"),
    }
    # Battery died mid-recording: the camera never wrote the index (moov) at the end.
    data = lib["h264"].read_bytes()
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.6)])
    lib["truncated"] = truncated
    return lib


@pytest.fixture
def make_volume(tmp_path):
    """Build a docked camera volume: make_volume("BWC-0042", {"DCIM/a.mp4": path_or_bytes}, sidecars)."""
    counter = {"n": 0}

    def make(serial: str, files: dict, sidecars: dict | None = None, device: dict | None = None) -> Path:
        counter["n"] += 1
        vol = tmp_path / f"volume{counter['n']}"
        vol.mkdir()
        (vol / "DEVICE.json").write_text(json.dumps(device or {"serial": serial, "model": "Demo", "firmware": "1.0"}))
        for rel, content in files.items():
            path = vol / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, (bytes, bytearray)):
                path.write_bytes(content)
            else:
                shutil.copyfile(content, path)
        for rel, content in (sidecars or {}).items():
            path = vol / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        return vol

    return make


def database_url_for_subprocess() -> str:
    """DATABASE_URL pointing a child process (worker, CLI) at the test database in use."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or ""
    auth = f"{user}:{s['PASSWORD']}@" if s.get("PASSWORD") else (f"{user}@" if user else "")
    return f"postgres://{auth}{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def redis_url():
    """A Redis database of our own for real workers (CI: TEMOIN_TEST_REDIS_URL), emptied around the test."""
    url = os.environ.get("TEMOIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    # One database per pytest-xdist process, so that parallel tests never flush each other's queues.
    base, _, db = url.rpartition("/")
    if db.isdigit():
        url = f"{base}/{int(db) - int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:] or 0)}"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
    except redis.exceptions.RedisError as exc:
        require_service("Redis", False, f"{url}: {exc}")
    client.flushdb()
    yield url
    client.flushdb()


@pytest.fixture
def child_env(settings):
    """Environment for a child process sharing this test's database, store and broker settings."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_subprocess()
    env["TEMOIN_STORE"] = settings.STORE_BACKEND
    env["TEMOIN_STORE_ROOT"] = str(settings.STORE_LOCAL_ROOT)
    for name in ("S3_ENDPOINT_URL", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        env[name] = str(getattr(settings, name))
    env["S3_PART_SIZE"] = str(settings.S3_PART_SIZE)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env
