import hashlib
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run_offload(volume: Path, *args) -> tuple[int, str]:
    """Run `manage.py offload` as a user would; returns (exit code, output)."""
    import io

    out = io.StringIO()
    try:
        call_command("offload", str(volume), *args, "--no-progress", stdout=out, stderr=io.StringIO())
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)


def stored_bytes(store, key, version_id=""):
    import contextlib

    with contextlib.closing(store.open(key, version_id)) as fh:
        return fh.read()
