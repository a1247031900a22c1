"""The custody signing key is created once, whole, even when many processes need it at once."""
import stat
import subprocess
import sys
from pathlib import Path

from audit.integrations import signing

ROOT = Path(__file__).resolve().parents[2]

# Each child is a fresh interpreter (not a fork of the test worker, whose threads may hold locks a
# forked child would wait on forever); all wait for the same start file, then race for the key.
CHILD = """
import os, sys, time
from django.conf import settings
settings.configure(CUSTODY_SIGNING_KEY=sys.argv[1])
from audit.integrations import signing
go = sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
print(signing.public_key_raw(signing.private_key().public_key()).hex())
"""


def test_concurrent_first_uses_share_one_whole_key(tmp_path, settings):
    path = tmp_path / "keys" / "custody-ed25519.pem"
    go = tmp_path / "go"
    settings.CUSTODY_SIGNING_KEY = path
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(go)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(12)]
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 12, [err for _, err in results]  # no half-written key read
    keys = {out.strip() for out, _ in results}
    assert len(keys) == 1 and keys == {signing.public_key_raw(signing.public_key()).hex()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["custody-ed25519.pem"]  # no temporary left
