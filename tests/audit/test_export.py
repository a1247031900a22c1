"""An export of the log checks out with the independent verifier printed in docs/custody.md (Python
and the `cryptography` package only), and that verifier catches tampering too."""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.utils import timezone

from audit.models import CustodyEvent
from audit.services import custody_checkpoint_create, custody_purge

from .helpers import append, guards_off, raw, sample_log

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parents[2] / "docs" / "custody.md"


@pytest.fixture
def verifier(tmp_path) -> Path:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- verifier:[^>]*-->\s*```python\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "verify_custody.py"
    path.write_text(block, encoding="utf-8")
    return path


def run_verifier(verifier: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    export, pem = tmp_path / "export.jsonl", tmp_path / "key.pem"
    call_command("custody", "export-log", str(export), stdout=io.StringIO())
    out = io.StringIO()
    call_command("custody", "export-key", stdout=out)
    pem.write_text(out.getvalue())
    return subprocess.run([sys.executable, str(verifier), str(export), str(pem)], capture_output=True, text=True,
                          timeout=60)


def test_the_documented_verifier_accepts_an_intact_export_with_purged_history(verifier, tmp_path):
    now = timezone.now()
    append(4, now=now - relativedelta(years=4))
    sample_log(5)
    custody_purge(now=now)
    custody_checkpoint_create()
    append(2)

    result = run_verifier(verifier, tmp_path)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "intact: entries #5–#" in result.stdout and "2 signed checkpoints" in result.stdout


def test_the_documented_verifier_catches_a_removed_entry(verifier, tmp_path):
    sample_log(6)
    custody_checkpoint_create()
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 4")

    result = run_verifier(verifier, tmp_path)

    assert result.returncode != 0 and "entry #4 missing" in result.stderr


def test_the_documented_verifier_catches_altered_signed_bytes(verifier, tmp_path):
    sample_log(6)
    custody_checkpoint_create()
    canonical = bytes(CustodyEvent.objects.get(seq=3).canonical).replace("Procédure".encode(), b"Procedure")
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET canonical = %s WHERE seq = 3", [canonical])

    result = run_verifier(verifier, tmp_path)

    assert result.returncode != 0 and "entry #3 altered" in result.stderr
