"""The runtime-only install, as the image makes it, for the deployment tests.

A virtualenv with exactly requirements.lock (``pip install --require-hashes --no-deps``, the
Dockerfile's command) and nothing of the test extras, cached under var/runtime-venv/<hash of the
lock and the Python version>: built once (about a minute) and reused until the lock changes.
The project itself runs from the checkout, as the image runs it from /app (its WORKDIR).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from ..conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
VENVS = ROOT / "var" / "runtime-venv"


def runtime_python() -> str:
    """Python 3.11 of the system when there is one: the compose rehearsal runs the install as an
    unprivileged user, who may not reach an interpreter under root's home (pyenv)."""
    for candidate in ("/usr/local/bin/python3.11", "/usr/bin/python3.11"):
        if os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


def runtime_venv() -> Path:
    python = runtime_python()
    version = subprocess.run([python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                             check=True).stdout
    digest = hashlib.sha256(LOCK.read_bytes() + python.encode() + version.encode()).hexdigest()[:16]
    venv = VENVS / digest
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one build for all pytest-xdist workers
        if not (venv / ".complete").exists():
            for old in VENVS.iterdir():
                if old.is_dir():
                    shutil.rmtree(old)
            subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
            proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                   "--disable-pip-version-check", "--require-hashes", "--no-deps", "-r", str(LOCK)],
                                  capture_output=True, text=True, timeout=1200)
            if proc.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                pytest.fail(f"pip install -r requirements.lock failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
            (venv / ".complete").touch()
    return venv


def base_env(venv: Path) -> dict[str, str]:
    """What the image gives every process before compose adds its own: a clean environment, with
    the runtime virtualenv first on PATH (the image's pip installs into /usr/local/bin)."""
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def scratch_database(suffix: str) -> str:
    """A new, empty PostgreSQL database beside the one of DATABASE_URL; its URL."""
    url = os.environ.get("DATABASE_URL", "")
    require_service("PostgreSQL", url.startswith(("postgres://", "postgresql://")),
                    "set DATABASE_URL=postgres://… (the runtime install runs on PostgreSQL)")
    parts = urlsplit(url)
    # Unique: pytest-xdist may run two tests of a module in two processes at once.
    name = f"{parts.path.lstrip('/') or 'temoin'}_{suffix}_{secrets.token_hex(3)}"
    import psycopg

    try:
        with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        require_service("PostgreSQL", False, str(exc))
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def secret_key() -> str:
    return secrets.token_hex(32)
