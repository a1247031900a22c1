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


def free_page_reporting() -> str:
    """Whether this (virtual) machine hands free memory back to its host, and from which order.

    With virtio-balloon free page reporting, memory freed for a moment is returned to the host and
    the next write into it faults on the host first: a phase that follows another one's deletions
    pays more per byte than one that runs on memory still backed (docs/benchmarks.md, Axis).
    """
    order = read_text("/sys/module/page_reporting/parameters/page_reporting_order").strip()
    for device in sorted(Path("/sys/bus/virtio/devices").glob("*")):
        if read_text(str(device / "device")).strip() == "0x0005":  # virtio-balloon
            features = read_text(str(device / "features")).strip()
            if len(features) > 5 and features[5] == "1":  # VIRTIO_BALLOON_F_REPORTING
                return f"on (order {order or '?'})"
            return "off"
    return "no balloon device"


class PageCache:
    """sync + drop the page cache before a timed phase, so that it reads from the disk (needs root).

    ``all_dropped`` says whether every drop succeeded; the first failure is reported once.
    """

    def __init__(self, warn=print):
        self.warn = warn
        self.all_dropped: bool | None = None

    def drop(self) -> bool:
        import os

        os.sync()
        try:
            with open("/proc/sys/vm/drop_caches", "w") as fh:
                fh.write("3\n")
            ok = True
        except OSError as exc:
            if self.all_dropped is None:
                self.warn(f"WARNING: cannot drop the page cache ({exc}); timed phases may read from memory")
            ok = False
        self.all_dropped = ok if self.all_dropped is None else (self.all_dropped and ok)
        return ok
