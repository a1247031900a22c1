"""Interventions on the embedded default (SQLite), in real `manage.py` processes (issue 21).

The rest of tests/interventions runs on the CI database (PostgreSQL); this test runs the same contract
on the database `make run` uses: a fresh data folder, `migrate`, `demo` (three clips offloaded from a
camera), then, in another process, the API and the page through Django's test client — creation,
link, detail with offsets, a hold covering exactly the recordings linked at that moment, the page,
unlink, and the list with its filters.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json
from django.test import Client
from rest_framework.authtoken.models import Token
from accounts.models import User
from evidence.media.services import recording_process_media
from evidence.models import Hold, Recording
from tests.auth import sign_in

for recording in Recording.objects.filter(status="stored"):  # what `make run`'s worker does
    recording_process_media(recording=recording)

sup = User.objects.get(username="chef.bernard")
api = Client(HTTP_AUTHORIZATION="Token " + Token.objects.get(user=sup).key)
ids = sorted(Recording.objects.exclude(status="duplicate").values_list("id", flat=True))
ref = "INT-2026/0042"
out = {"ids": ids}
created = api.post("/api/interventions/", {"reference": ref, "recordings": ids[:1], "notes": "Rixe"},
                   content_type="application/json")
out["created"] = [created.status_code, created.json()]
again = api.post("/api/interventions/", {"reference": ref, "recordings": ids[:1]}, content_type="application/json")
out["again"] = again.status_code
linked = api.post(f"/api/interventions/{ref}/recordings/", {"recordings": ids[1:2]}, content_type="application/json")
out["linked"] = [linked.status_code, [r["id"] for r in linked.json()["recordings"]]]
detail = api.get(f"/api/interventions/{ref}/").json()
out["detail"] = detail
hold = api.post(f"/api/interventions/{ref}/holds/", {"procedure": "judicial", "reference": "PV 2026/42"},
                content_type="application/json")
out["hold"] = [hold.status_code, sorted(Hold.objects.get(pk=hold.json()["id"]).covered.values_list("id", flat=True))]
browser = sign_in(Client(), sup)
page = browser.get(f"/interventions/{ref}/")
played = browser.post(f"/interventions/{ref}/consultation/", {"motif_choice": "Contrôle", "recordings": ids[:2]})
out["page"] = [page.status_code, page.content.decode(), played.status_code, played.content.decode().count("<video")]
unlinked = api.delete(f"/api/interventions/{ref}/recordings/{ids[1]}/")
out["unlinked"] = [unlinked.status_code, [r["id"] for r in api.get(f"/api/interventions/{ref}/").json()["recordings"]]]
out["list"] = api.get("/api/interventions/?q=0042&started_after=2000-01-01T00:00:00%2B00:00").json()
out["none"] = api.get("/api/interventions/?started_before=2000-01-01T00:00:00%2B00:00").json()["count"]
out["recording"] = api.get(f"/api/recordings/{ids[0]}/").json().get("interventions")
officer = User.objects.get(username="agent.durand")  # a camera of the demo that was not offloaded
out["outsider"] = Client(HTTP_AUTHORIZATION="Token " + Token.objects.get(user=officer).key).get(
    f"/api/interventions/{ref}/").status_code
print("RESULT " + json.dumps(out))
'''


def test_the_interventions_contract_holds_on_the_embedded_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "S3_", "TEMOIN_"))}
    env.update(TEMOIN_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="config.settings")

    def manage(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, input=stdin,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("migrate", "--noinput")
    manage("demo")
    assert (tmp_path / "data" / "temoin.sqlite3").exists()
    result = json.loads(manage("shell", stdin=SCRIPT).split("RESULT ", 1)[1])

    ids = result["ids"]
    assert len(ids) >= 2
    status, created = result["created"]
    assert status == 201 and created["reference"] == "INT-2026/0042" and created["notes"] == "Rixe"
    assert result["again"] == 400  # an existing reference
    assert result["linked"][0] == 200 and sorted(result["linked"][1]) == ids[:2]
    detail = result["detail"]
    assert sorted(r["id"] for r in detail["recordings"]) == ids[:2]
    first = min(detail["recordings"], key=lambda r: r["offset_seconds"])
    assert first["offset_seconds"] == 0 and all(r["offset_seconds"] >= 0 for r in detail["recordings"])
    assert {"camera", "officer", "started_at", "duration", "track"} <= set(first)
    assert result["hold"] == [201, ids[:2]]  # exactly the recordings linked at that moment
    page_status, page, played_status, videos = result["page"]
    assert page_status == 200 and "INT-2026/0042" in page and page.count('class="iv-clip"') == 2
    assert (played_status, videos) == (200, 2)  # one motif, the two recordings played together
    assert result["unlinked"] == [204, ids[:1]]
    assert [i["reference"] for i in result["list"]["results"]] == ["INT-2026/0042"]
    assert result["none"] == 0
    assert "INT-2026/0042" in result["recording"]  # beside the one the demo sidecar named
    assert result["outsider"] == 404  # visibility follows the recordings
