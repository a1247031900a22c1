"""The partner page's Uppy bundle (issue 22): config/static/vendor/uppy is what `make assets` built
with esbuild from the packages package-lock.json pins, as tests/daily/test_maps.py checks Leaflet's:
SOURCE names the locked packages, SHA256SUMS the files, and a rebuild from the installed packages
(`npm ci`) gives the same bytes. Under CI (which runs `npm ci`) a missing install is a failure."""
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

from django.contrib.staticfiles import finders

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "config" / "static" / "vendor" / "uppy"
PACKAGES = ["@uppy/core", "@uppy/dashboard", "@uppy/tus", "@uppy/locales", "esbuild"]
FILES = {"LICENSE", "uppy.css", "uppy.js"}


def _lock() -> dict:
    return json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))["packages"]


def _sums(folder: Path) -> dict[str, str]:
    lines = (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def test_the_bundle_names_the_locked_packages_and_its_files_are_unedited():
    lock = _lock()
    dev = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["devDependencies"]
    assert {name: dev[name] for name in PACKAGES} == {name: lock[f"node_modules/{name}"]["version"] for name in PACKAGES}
    assert (BUNDLE / "SOURCE").read_text(encoding="utf-8").splitlines() == [
        f"{name}@{lock[f'node_modules/{name}']['version']} {lock[f'node_modules/{name}']['integrity']}"
        for name in PACKAGES]  # the lock moved: run `make assets`
    sums = _sums(BUNDLE)
    assert set(sums) == FILES
    assert {p.name for p in BUNDLE.iterdir()} == FILES | {"SOURCE", "SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256((BUNDLE / name).read_bytes()).hexdigest() == digest, f"{name} edited by hand"
    assert finders.find("vendor/uppy/uppy.js") and finders.find("requisitions/depot.js")
    script = (BUNDLE / "uppy.js").read_text(encoding="utf-8")
    assert "TemoinUppy" in script  # what depot.js starts


def test_a_rebuild_from_the_installed_locked_packages_gives_the_same_bytes(tmp_path):
    installed_lock = ROOT / "node_modules" / ".package-lock.json"
    # .ci/run runs `npm ci`: under CI=true a missing install fails instead of skipping.
    require_service("the locked npm packages (node_modules, make, node)",
                    installed_lock.is_file() and bool(shutil.which("make")) and bool(shutil.which("node")),
                    "run `npm ci` or `make assets`")
    installed = json.loads(installed_lock.read_text(encoding="utf-8"))["packages"]
    lock = _lock()
    # `npm ci` checked every tarball against the lock: the same packages, esbuild's binary included.
    for name, entry in lock.items():
        if name.startswith("node_modules/") and name in installed:
            assert installed[name].get("integrity") == entry.get("integrity"), name
    out = tmp_path / "uppy"
    subprocess.run(["make", "--no-print-directory", "-s", "uppy-build", f"UPPY_OUT={out}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    for name in FILES:
        assert (out / name).read_bytes() == (BUNDLE / name).read_bytes(), f"{name} differs from a rebuild"
