"""Fixtures of the operations tests: Celery pointed at a broker of the test's own."""
from __future__ import annotations

import os
import time

import pytest

from ..conftest import require_service
from ..workers import start_worker, stop_process

REDIS_URL = os.environ.get("TEMOIN_TEST_OPS_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture
def use_broker(settings):
    """use_broker(url, options): Celery (and so the health checks and metrics) on that broker, tasks queued."""
    from config.celery import app

    saved = (app.conf.broker_url, dict(app.conf.broker_transport_options or {}))

    def use(url: str, options: dict | None = None):
        settings.CELERY_TASK_ALWAYS_EAGER = False
        app.conf.task_always_eager = False
        app.conf.broker_url = url
        app.conf.broker_transport_options = options or {}
        _drop_connections(app)
        return app

    yield use
    app.conf.broker_url, app.conf.broker_transport_options = saved
    _drop_connections(app)


def _drop_connections(app) -> None:
    """Forget the pools bound to the previous broker (what Celery itself does after a fork)."""
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def filesystem_broker(use_broker, tmp_path):
    folders = {name: tmp_path / "broker" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    options = {"data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
               "processed_folder": str(folders["processed"]), "control_folder": str(folders["control"]),
               "store_processed": False}
    use_broker("filesystem://localhost/", options)
    return folders


@pytest.fixture
def redis_broker(use_broker):
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
    except redis.exceptions.RedisError as exc:
        require_service("Redis", False, f"{REDIS_URL}: {exc}")
    client.flushdb()
    use_broker(REDIS_URL)
    yield client
    client.flushdb()


@pytest.fixture
def celery_worker_process(tmp_path):
    """start(queues, env) → a real Celery worker process; stopped at the end of the test."""
    procs = []

    def start(queues: str, env: dict, name: str = "ops"):
        proc = start_worker(queues, env, tmp_path / f"worker-{name}.log", name)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")
