"""Fixtures of the fault-injection suite: private PostgreSQL, Redis and S3, and the 8-camera rig.

Each test gets a fresh PostgreSQL database (cloned from a migrated template) on a private
cluster, a private Redis, a store (local directory or S3 on a private moto server), real Celery
workers and ``manage.py dockd``: the system runs as in production, and the fault is real (SIGKILL,
server restarts, a full filesystem, files changed or unplugged under the reader).

The machine's shared PostgreSQL and Redis are never used. Under CI=true missing binaries fail.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ..conftest import require_service
from . import invariants, recorder
from .rig import (
    ROOT,
    CameraVolume,
    Clip,
    PrivatePostgres,
    PrivateRedis,
    Proc,
    celery_worker,
    payload,
    pg_bindir,
    python_env,
    sha256_file,
    start_process,
    wait_until,
    write_volume,
)

globals().update(recorder.install("faults"))

TEMPLATE = "temoin_faults_template"
CAMERAS = 8
_db_names = itertools.count(1)


class OffloadStuck(AssertionError):
    """The offload did not settle after recovery (clips safe on the cameras, but never pulled)."""


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    # Overrides tests/conftest.py: here tasks go to the private Redis and real workers run them.
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    yield


@pytest.fixture(scope="session")
def private_pg():
    if pg_bindir() is None:
        require_service("PostgreSQL binaries", False, "initdb/pg_ctl not found in /usr/lib/postgresql/*/bin")
    base = Path(tempfile.mkdtemp(prefix="temoin-faults-pg-"))
    pg = PrivatePostgres(base)
    try:
        pg.sql(f"CREATE DATABASE {TEMPLATE}")
        env = python_env(os.environ)
        env["DATABASE_URL"] = pg.url(TEMPLATE)
        result = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"migrate on the private cluster failed:\n{result.stderr[-3000:]}"
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="session")
def private_redis_binary():
    import shutil

    if shutil.which("redis-server") is None:
        require_service("redis-server", False, "the redis-server binary is not on PATH")


@pytest.fixture
def private_redis(private_redis_binary, tmp_path):
    redis = PrivateRedis(tmp_path / "redis")
    yield redis
    redis.close()


@pytest.fixture
def private_s3():
    from tests.conftest import MotoS3

    server = MotoS3()
    yield server
    server.stop()


@contextlib.contextmanager
def database(url: str, blocker):
    """Point this process's default connection at ``url`` (another engine if need be), then back."""
    import environ
    from django.db import connections

    saved = connections.settings["default"]
    old = connections["default"]
    old.close()
    cfg = connections.configure_settings({"default": environ.Env.db_url_config(url)})["default"]
    connections.settings["default"] = cfg
    connections["default"] = connections.create_connection("default")
    with blocker.unblock():
        try:
            yield
        finally:
            connections["default"].close()
            connections.settings["default"] = saved
            connections["default"] = old


class FaultRig:
    """8 cameras docked in dock slots; dockd and Celery workers; the store; the invariants."""

    def __init__(self, *, pg: PrivatePostgres, redis: PrivateRedis, tmp: Path, store_kind: str,
                 store_root: Path | None, s3=None, env_extra: dict | None = None):
        self.pg, self.redis, self.tmp = pg, redis, tmp
        self.docks = tmp / "docks"
        self.docks.mkdir()
        self.dock_name = "faults"
        self.store_kind = store_kind
        self.cameras: list[CameraVolume] = []
        self.procs: list[Proc] = []
        self.db_name = f"faults_{os.getpid()}_{next(_db_names)}"
        pg.sql(f"CREATE DATABASE {self.db_name} TEMPLATE {TEMPLATE}")
        env = python_env(os.environ)
        env.update({
            "DATABASE_URL": pg.url(self.db_name),
            "CELERY_BROKER_URL": redis.url,
            # Redelivery of a pull whose worker died, within seconds rather than hours. The time limit
            # leaves room for a pull on a loaded machine: at 8 s, a CI run with other work beside it
            # had a pull killed by the limit, acknowledged as failed, and its clip never pulled.
            "TEMOIN_TASK_TIME_LIMIT": "25",
            "TEMOIN_BROKER_VISIBILITY_TIMEOUT": "30",
            "TEMOIN_TIME_ZONE": "Europe/Paris",
        })
        if store_kind == "s3":
            import uuid

            from evidence.integrations.s3 import S3Store

            self.bucket = f"faults-{uuid.uuid4().hex[:12]}"
            env.update({"TEMOIN_STORE": "s3", "S3_ENDPOINT_URL": s3.url, "S3_BUCKET": self.bucket,
                        "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing",
                        "S3_PART_SIZE": str(5 * 1024 * 1024)})
            self.store = S3Store(endpoint_url=s3.url, bucket=self.bucket, access_key="testing",
                                 secret_key="testing", part_size=5 * 1024 * 1024)
            self.store.ensure_bucket()
        else:
            from evidence.integrations.store import LocalStore

            env.update({"TEMOIN_STORE": "local", "TEMOIN_STORE_ROOT": str(store_root)})
            self.store = LocalStore(store_root)
        env.update(env_extra or {})
        self.env = env

    # -- set-up -----------------------------------------------------------------------------------
    def register(self, clip_library, *, clips_per_camera: int = 3, payload_size: int = 3 * 1024 * 1024,
                 sidecar_for=None, extra_files=None) -> None:
        """Register 8 cameras and dock them, each with a real H.264 clip and camera-sized payloads."""
        from django.db import transaction
        from django.utils import timezone

        from accounts.services import organisation_create, user_create
        from devices.services import camera_assign, camera_register

        with transaction.atomic():
            org = organisation_create(slug="chambery", name="Police municipale de Chambéry")
        for i in range(CAMERAS):
            serial = f"BWC-{100 + i}"
            with transaction.atomic():
                officer, _token = user_create(username=f"agent.{i}", organisation=org, role="officer",
                                              matricule=f"M{100 + i}")
                cam = camera_register(serial=serial, organisation=org, model="Demo")
                camera_assign(camera=cam, officer=officer, starts_at=timezone.now() - dt.timedelta(days=400))
            files: dict = {"DCIM/0001.mp4": clip_library["h264"]}
            for n in range(2, clips_per_camera + 1):
                files[f"DCIM/{n:04d}.mp4"] = payload(f"{serial}/{n}", payload_size)
            files.update((extra_files or {}).get(serial, {}))
            sidecars = {}
            for rel in files:
                sidecar = sidecar_for(serial, rel) if sidecar_for else None
                if sidecar is not None:
                    sidecars[rel.rsplit(".", 1)[0] + ".json"] = sidecar
            slot = f"slot{i + 1}"
            path = self.docks / slot
            write_volume(path, serial, files, sidecars)
            vol = CameraVolume(serial=serial, slot=slot, path=path)
            for rel in files:
                p = path / rel
                vol.clips[rel] = Clip(serial, rel, sha256_file(p), p.stat().st_size)
            self.cameras.append(vol)
        self.organisation = org

    def camera(self, serial: str) -> CameraVolume:
        return next(c for c in self.cameras if c.serial == serial)

    # -- processes ------------------------------------------------------------------------------------
    def worker(self, queues: str, name: str, concurrency: int = 1) -> Proc:
        proc = celery_worker(queues, self.env, self.tmp / f"{name}.log", name, concurrency)
        self.procs.append(proc)
        return proc

    def dock_worker(self, name: str = "dock") -> Proc:
        return self.worker(f"dock.{self.dock_name}", name)

    def media_worker(self) -> Proc:
        return self.worker("media", "media")

    def dockd_once(self) -> None:
        result = subprocess.run([sys.executable, "manage.py", "dockd", str(self.docks), "--dock", self.dock_name,
                                 "--once"], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr[-3000:]
        self.dockd_output = result.stdout

    def dockd(self) -> Proc:
        proc = start_process([sys.executable, "manage.py", "dockd", str(self.docks), "--dock", self.dock_name,
                              "--interval", "0.5"], self.env, self.tmp / "dockd.log", "dockd")
        self.procs.append(proc)
        return proc

    # -- observation ----------------------------------------------------------------------------------
    def query(self, fn, retries: int = 60):
        """Run an ORM read; across a PostgreSQL restart, reconnect and try again."""
        from django.db import InterfaceError, OperationalError, connection

        for attempt in range(retries):
            try:
                return fn()
            except (OperationalError, InterfaceError):
                connection.close()
                if attempt == retries - 1:
                    raise
                time.sleep(0.5)

    def items(self, **filters) -> int:
        from devices.models import OffloadItem

        return self.query(lambda: OffloadItem.objects.filter(**filters).count())

    def progress(self) -> dict:
        from devices.models import OffloadItem, OffloadSession

        from django.db.models import Count

        def read():
            items = dict(OffloadItem.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
            sessions = dict(OffloadSession.objects.values_list("status").annotate(n=Count("pk"))
                            .values_list("status", "n"))
            return {"items": items, "sessions": sessions}

        return self.query(read)

    def wait_for(self, predicate, timeout: float, what: str) -> float:
        t0 = time.monotonic()
        if not wait_until(lambda: self.query(predicate), timeout):
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; progress {self.progress()}\n{self.logs()}")
        return time.monotonic() - t0

    def wait_settled(self, timeout: float) -> tuple[bool, float]:
        """Every docking's session finished (complete, or incomplete with the failed clips left on the camera)."""
        from devices.models import OffloadSession

        t0 = time.monotonic()
        ok = wait_until(lambda: self.query(
            lambda: OffloadSession.objects.count() >= len(self.cameras)
            and not OffloadSession.objects.filter(status=OffloadSession.Status.RUNNING).exists()), timeout, 0.5)
        return ok, round(time.monotonic() - t0, 1)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({'alive' if p.alive() else p.popen.returncode})\n{p.tail()}" for p in self.procs)

    def check_invariants(self, reliability) -> dict:
        figures = self.query(lambda: invariants.check(self))
        for k, v in figures.items():
            reliability.figure(k, v)
        return figures

    def recover_and_check(self, reliability, timeout: float, after: str) -> dict:
        """Wait for every session to settle, check the invariants (settled or not), then require settling."""
        settled, seconds = self.wait_settled(timeout)
        reliability.figure("settled_after_recovery_s", seconds if settled else f"not within {timeout:.0f}")
        figures = self.check_invariants(reliability)
        if not settled:
            from devices.models import OffloadItem

            pending = self.query(lambda: list(OffloadItem.objects.filter(status=OffloadItem.Status.PENDING)
                                              .values_list("session__camera__serial", "path", "message")[:10]))
            raise OffloadStuck(f"{after}: offload did not settle within {timeout:.0f} s; clips left pending "
                               f"(safe on the cameras, but never pulled): {pending}")
        return figures

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()


@pytest.fixture
def make_rig(private_pg, private_redis, tmp_path, django_db_blocker, request):
    rigs: list[FaultRig] = []
    stack = contextlib.ExitStack()

    def make(*, store: str = "local", store_root: Path | None = None, s3=None, env: dict | None = None) -> FaultRig:
        rig = FaultRig(pg=private_pg, redis=private_redis, tmp=tmp_path, store_kind=store,
                       store_root=store_root or tmp_path / "store", s3=s3, env_extra=env)
        stack.enter_context(database(private_pg.url(rig.db_name), django_db_blocker))
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
    stack.close()
    for rig in rigs:
        with contextlib.suppress(Exception):
            private_pg.sql(f"DROP DATABASE IF EXISTS {rig.db_name} WITH (FORCE)")
