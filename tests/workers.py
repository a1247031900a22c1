"""Real Celery workers for the tests that must not run the pipeline eagerly."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def start_process(args, env, log: Path) -> subprocess.Popen:
    fh = open(log, "wb")
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def start_worker(queues: str, env, log: Path, name: str) -> subprocess.Popen:
    return start_process([sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-c", "1",
                          "-n", f"{name}@%h", "--without-heartbeat", "--without-gossip", "--without-mingle",
                          "-l", "info"], env, log)


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate, timeout, what, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n" + p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")
