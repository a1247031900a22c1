"""The code stays findable (issue 23): no import cycle between project modules, no module of
evidence/, devices/ or audit/ over 500 lines. Read from the source (tests/architecture/imports.py)."""
from __future__ import annotations

from .imports import ROOT, cycles, import_graph, project_modules

MAX_LINES = 500

# Known exceptions (none left): a cycle or a long module added here must say why and be temporary.
KNOWN_CYCLES: list[list[str]] = []
KNOWN_LONG: set[str] = set()


def test_no_import_cycle_between_project_modules():
    found = cycles(import_graph())
    assert [c for c in found if c not in KNOWN_CYCLES] == []


def test_known_import_cycles_still_exist_or_are_dropped_from_the_list():
    found = cycles(import_graph())
    assert [c for c in KNOWN_CYCLES if c not in found] == []


def test_the_checker_finds_a_cycle_through_a_function_level_import():
    graph = {"a.services": {"a.dispatch"}, "a.dispatch": {"a.tasks"}, "a.tasks": {"a.services"}, "b": {"a.tasks"}}
    assert cycles(graph) == [["a.dispatch", "a.services", "a.tasks"]]


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    # evidence/media/views.py imports ``..access.services`` at module level; audit/verification.py
    # imports ``.models`` inside its functions.
    assert "evidence.access.services" in graph["evidence.media.views"]
    assert "audit.models" in graph["audit.verification"]


def _long_modules() -> set[str]:
    long = set()
    for path in project_modules().values():
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] not in ("evidence", "devices", "audit"):
            continue
        with path.open(encoding="utf-8") as fh:
            if sum(1 for _ in fh) > MAX_LINES:
                long.add(rel)
    return long


def test_no_module_of_evidence_devices_audit_exceeds_500_lines():
    assert sorted(_long_modules() - KNOWN_LONG) == []


def test_known_long_modules_are_dropped_from_the_list_once_split():
    assert sorted(KNOWN_LONG - _long_modules()) == []
