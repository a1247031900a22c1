"""Machine facts printed by every benchmark next to its results (shared by bench/*.py)."""
from __future__ import annotations

import platform
from pathlib import Path


def read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    return next((line.split(":", 1)[1].strip() for line in read_text("/proc/cpuinfo").splitlines()
                 if line.startswith("model name")), platform.processor() or "?")


def meminfo() -> dict[str, int]:
    """MemTotal and MemAvailable in bytes."""
    mem = {}
    for line in read_text("/proc/meminfo").splitlines():
        key, _, value = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            mem[key] = int(value.split()[0]) * 1024
    return mem
