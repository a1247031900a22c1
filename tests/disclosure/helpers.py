"""Helpers shared by the disclosure tests."""
from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from rest_framework.test import APIClient

PLACE = [45.5646, 5.9178]  # Chambéry, place Saint-Léger


def api(user=None) -> APIClient:
    client = APIClient()
    client.raise_request_exception = False
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.api_token}")
    return client


def sidecar(start: dt.datetime, seconds: float, location=None, **extra) -> dict:
    data = {"started_at": start.isoformat(), "ended_at": (start + dt.timedelta(seconds=seconds)).isoformat(),
            "officer": "M042", "trigger_reason": "incident", "subject_notified": True, "purpose": "evidence"}
    if location is not None:
        data["location"] = location
    data.update(extra)
    return data


def stored_bytes(store, key, version="") -> bytes:
    with store.local_path(key, version) as p:
        return p.read_bytes()


def download(client, url) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


def extract_zip(data: bytes, dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(dest)
    (root,) = [p for p in dest.iterdir() if p.is_dir()]
    return root


def run_verify(root: Path) -> subprocess.CompletedProcess:
    """verify.py as a recipient runs it: isolated interpreter, no project on the path, cwd = package."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "", "LANG": "C.UTF-8", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-I", "verify.py"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def approved_copy(recording, mode: str, by):
    """A real redacted copy made and approved through the redaction engineer's services."""
    from evidence.redaction import services as redaction
    from evidence.redaction.models import Derivative, RedactionJob

    job = redaction.redaction_job_create(recording=recording, by=by, mode=mode, motif="copie pour les tests")
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.REVIEW, (job.status, job.status_message)
    if mode == "others":
        # The requester is the person kept sharp: a hand-drawn region marked as the subject.
        redaction.redaction_review_save(job=job, by=by, tracks=[
            {"number": None, "kind": "manual", "keyframes": [[0, 10, 10, 60, 60]]}])
        track = job.tracks.get(kind="manual")
        redaction.redaction_review_save(job=job, by=by, decisions={track.number: {"kept": True, "is_subject": True}})
    redaction.redaction_render_request(job=job, by=by)
    derivative = Derivative.objects.filter(job=job).latest("created_at")
    # Issue 15/16: approved by someone other than the requester, who played the copy through.
    from accounts.models import User
    from evidence.access.services import consultation_open

    approver = User.objects.create_user(username=f"approbateur.{job.pk}", organisation=by.organisation, role="legal")
    consultation, _ = consultation_open(recording=recording, by=approver, motif="relecture de la copie")
    redaction.derivative_watched(derivative=derivative, by=approver, consultation=consultation,
                                 played_seconds=job.duration)
    return redaction.derivative_approve(derivative=derivative, by=approver, motif="relu")


def redaction_ready() -> bool:
    import importlib.util

    return importlib.util.find_spec("evidence.redaction.services") is not None
