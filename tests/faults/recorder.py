"""Collects what the reliability suites tried, how often and with what result, for docs/reliability.md.

Each test asks for the ``reliability`` fixture and describes itself (what was tried, how many
runs / Hypothesis examples / Schemathesis cases, which invariants were checked, figures measured).
The outcome (passed, failed, xfailed…) is taken from pytest's own report, never from the test.
At the end of the session the entries are merged into ``var/reliability/<suite>.json`` (entries
of tests that did not run this time are kept); ``python tools/reliability_report.py`` renders them.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path(os.environ.get("TEMOIN_RELIABILITY_DIR", ROOT / "var" / "reliability"))


@dataclass
class Entry:
    nodeid: str
    suite: str
    category: str = ""
    title: str = ""
    how: str = ""
    count: int = 0
    unit: str = "run"
    invariants: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    outcome: str = ""
    reason: str = ""
    seconds: float = 0.0
    finished_at: str = ""


class Recorder:
    def __init__(self, suite: str):
        self.suite = suite
        self.entries: dict[str, Entry] = {}

    def entry(self, nodeid: str) -> Entry:
        if nodeid not in self.entries:
            self.entries[nodeid] = Entry(nodeid=nodeid, suite=self.suite)
        return self.entries[nodeid]

    def outcome(self, report) -> None:
        for nodeid in [k for k in self.entries if k == report.nodeid or k.startswith(report.nodeid + "::")]:
            self._outcome(self.entries[nodeid], report)

    def _outcome(self, entry: Entry, report) -> None:
        if report.when == "setup" and report.outcome != "passed":
            entry.outcome = "skipped" if report.skipped else "error"
        elif report.when == "call":
            if hasattr(report, "wasxfail"):
                entry.outcome = "xfailed" if report.skipped else "xpassed"
                entry.reason = report.wasxfail
            else:
                entry.outcome = report.outcome
            if report.failed and not entry.reason:
                lines = [ln[1:].strip() for ln in str(report.longrepr or "").splitlines() if ln.startswith("E ")]
                entry.reason = " ".join(ln for ln in lines[:4] if ln)[:400]
        entry.seconds = round(entry.seconds + report.duration, 1)
        entry.finished_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def save(self) -> Path | None:
        done = {k: e for k, e in self.entries.items() if e.outcome}
        if not done:
            return None
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.suite}.json"
        try:
            previous = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            previous = {}
        entries = previous.get("entries", {})
        entries.update({k: asdict(e) for k, e in done.items()})
        doc = {
            "suite": self.suite,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
            "ci": os.environ.get("CI", "").lower() == "true",
            "hypothesis_profile": _hypothesis_profile(),
            "updated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "entries": entries,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        tmp.replace(path)
        return path


def _hypothesis_profile() -> str:
    try:
        from hypothesis import settings

        return getattr(settings, "_current_profile", "") or ""
    except ImportError:
        return ""


class Handle:
    """What a test writes about itself: ``reliability.describe(...)``, ``.count += 1``, ``.figure(...)``."""

    def __init__(self, entry: Entry, recorder: Recorder):
        self.entry, self.recorder = entry, recorder
        self._t0 = time.monotonic()

    def describe(self, *, category: str, title: str, how: str, invariants: list[str], unit: str = "run",
                 count: int | None = None) -> "Handle":
        self.entry.category, self.entry.title, self.entry.how = category, title, how
        self.entry.invariants, self.entry.unit = list(invariants), unit
        if count is not None:
            self.entry.count = count
        return self

    def tally(self, n: int = 1) -> None:
        self.entry.count += n

    def figure(self, name: str, value) -> None:
        self.entry.figures[name] = value

    def part(self, name: str) -> "Handle":
        """A separate row for one part of this test (same outcome), e.g. one role of a loop."""
        return Handle(self.recorder.entry(f"{self.entry.nodeid}::{name}"), self.recorder)

    def finding(self, text: str) -> None:
        if text not in self.entry.findings:
            self.entry.findings.append(text)


def install(suite: str):
    """Hooks and the ``reliability`` fixture for one suite's conftest.py (its module globals)."""
    recorder = Recorder(suite)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        recorder.outcome(outcome.get_result())

    def pytest_sessionfinish(session, exitstatus):
        path = recorder.save()
        if path is not None:
            print(f"\nreliability results written to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    @pytest.fixture
    def reliability(request):
        return Handle(recorder.entry(request.node.nodeid), recorder)

    return {"pytest_runtest_makereport": pytest_runtest_makereport,
            "pytest_sessionfinish": pytest_sessionfinish, "reliability": reliability}
