"""Private services the fault suite may kill and restart, and the rig that offloads 8 cameras.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379): each service is a
private instance on a free port in a temporary directory (initdb/pg_ctl, redis-server, moto's
server), started by the fixtures in conftest.py and stopped at the end of the session.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(1 << 20):
            h.update(data)
    return h.hexdigest()


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


# --- PostgreSQL --------------------------------------------------------------------------------

def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PrivatePostgres:
    """A throw-away cluster: trust authentication on 127.0.0.1:<free port>, superuser ``postgres``.

    PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
    ``postgres`` system user (created by the Debian package) and owns the temporary directory.
    """

    def __init__(self, base: Path):
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin")
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
        base.mkdir(parents=True, exist_ok=True)
        if self.user:
            os.chown(base, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        self.start()

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.user:
            kwargs = dict(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return subprocess.run([str(self.bindir / program), *args], cwd=self.base, capture_output=True, text=True,
                              check=check, timeout=120, **kwargs)

    def start(self) -> None:
        # fsync=off: the operating system does not crash in these tests, only the server does.
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c full_page_writes=off -c max_connections=60 -c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def restart(self, mode: str = "immediate") -> None:
        """``immediate``: the server dies as in a crash and replays its WAL on start."""
        self.stop(mode)
        self.start()

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def sql(self, statement: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=db, autocommit=True) as conn:
            conn.execute(statement)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


# --- Redis -------------------------------------------------------------------------------------

class PrivateRedis:
    """redis-server configured as in compose.yaml (append-only file), on a free port."""

    def __init__(self, base: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH")
        self.binary, self.base, self.port = binary, base, free_port()
        base.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2, socket_timeout=5)

    def start(self) -> None:
        log = open(self.base / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.base),
             "--appendonly", "yes", "--save", "", "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_until(self._ping, 20):
            raise RuntimeError(f"private redis-server did not start: {(self.base / 'redis.log').read_text()[-2000:]}")

    def _ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        """SIGTERM, as ``docker restart`` does: Redis flushes its append-only file and exits."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.base, ignore_errors=True)


# --- Processes -----------------------------------------------------------------------------------

@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()

    def tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""


# --- Cameras -------------------------------------------------------------------------------------

@dataclass
class Clip:
    serial: str
    rel: str
    sha256: str
    size: int


@dataclass
class CameraVolume:
    serial: str
    slot: str
    path: Path          # where the camera is now (in the dock, or elsewhere when unplugged)
    clips: dict[str, Clip] = field(default_factory=dict)

    def current_files(self) -> dict[str, str]:
        """rel → sha256 of each clip file now on the camera."""
        out = {}
        for rel in self.clips:
            p = self.path / rel
            if p.is_file():
                out[rel] = sha256_file(p)
        return out


def write_volume(path: Path, serial: str, files: dict[str, bytes | Path], sidecars: dict[str, dict]) -> None:
    path.mkdir(parents=True)
    (path / "DEVICE.json").write_text(json.dumps({"serial": serial, "model": "Demo", "firmware": "1.0"}))
    for rel, content in files.items():
        p = path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, (bytes, bytearray)):
            p.write_bytes(content)
        else:
            shutil.copyfile(content, p)
    for rel, data in sidecars.items():
        (path / rel).write_text(json.dumps(data))


def payload(seed: str, size: int) -> bytes:
    """Deterministic bytes standing in for a long clip (the media worker files it as unplayable)."""
    return random.Random(seed).randbytes(size)


def python_env(base: dict) -> dict:
    env = dict(base)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_process(args: list[str], env: dict, log: Path, name: str) -> Proc:
    fh = open(log, "ab")
    popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(name, popen, log)


def celery_worker(queues: str, env: dict, log: Path, name: str, concurrency: int = 1) -> Proc:
    return start_process([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues,
                          "-c", str(concurrency), "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip",
                          "--without-mingle", "-l", "info"], env, log, name)


@contextlib.contextmanager
def suppressed(*exceptions):
    try:
        yield
    except exceptions:
        pass
