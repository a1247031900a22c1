"""The WSGI entry point (gunicorn loads it once per worker) prepares the worker before requests."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import gc, json, sys
import config.wsgi
print(json.dumps({"urls": "config.urls" in sys.modules, "axis_views": "devices.axis.views" in sys.modules,
                  "frozen": gc.get_freeze_count()}))
"""


def test_the_worker_imports_every_view_before_its_first_request(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TEMOIN_DATA_DIR": str(tmp_path), "DJANGO_SECRET_KEY": "test-wsgi",
           "DJANGO_DEBUG": "false"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    # Django would import the URLconf (and the views) on the first request, with the worker's
    # other request threads waiting on the import lock meanwhile.
    assert probe["urls"] and probe["axis_views"]
    assert probe["frozen"] > 10_000  # the startup objects are out of the garbage collector's sight
