"""What the code imports is declared, and what is declared is locked (requirements*.lock)."""
from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "accounts", "devices", "evidence", "audit")


def _declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def _pins(lock: str) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==([^ \\;\n]+)", (ROOT / lock).read_text(), re.M):
        pins.setdefault(canonicalize_name(name), set()).add(version)
    return pins


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported by the project's code (tests excluded) → the files importing them."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_package_the_code_imports_is_a_declared_runtime_dependency():
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {}
    for module, files in _third_party_imports().items():
        owners = {canonicalize_name(d) for d in distributions.get(module, [])}
        if not owners & set(declared):
            undeclared[module] = sorted(files)
    assert not undeclared, f"imported but not in pyproject.toml's dependencies: {undeclared}"


def test_every_runtime_dependency_is_locked_at_a_version_pyproject_allows():
    pins = _pins("requirements.lock")
    for name, requirement in _declared().items():
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert any(requirement.specifier.contains(v, prereleases=True) for v in pins[name]), (
            f"requirements.lock pins {name} {pins[name]}, outside {requirement.specifier}: run `make lock`")


def test_the_test_lock_installs_the_very_versions_of_the_runtime_lock():
    runtime, test = _pins("requirements.lock"), _pins("requirements-test.lock")
    assert {name: test.get(name) for name in runtime} == runtime


def test_every_locked_package_carries_hashes():
    for lock in ("requirements.lock", "requirements-test.lock"):
        text = (ROOT / lock).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry), lock


def test_the_image_and_make_install_from_the_locks():
    dockerfile = (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "--require-hashes --no-deps -r requirements-test.lock" in makefile
