"""A month later, from outside: `manage.py retention sweep` and `compliance audit` run as an operator
runs them, their clock moved forward by libfaketime (Debian's faketime), on the suite's database."""
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import CustodyEvent
from evidence.retention.holds import hold_place, hold_release
from evidence.retention.objects import recording_store_keys
from evidence.models import Recording
from tests.conftest import require_service

from .helpers import dock

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]


def manage(env, at: dt.datetime, *args) -> subprocess.CompletedProcess:
    """`manage.py ARGS` with its clock starting at ``at`` (libfaketime; the database's clock is not moved)."""
    when = at.astimezone(dt.timezone.utc).strftime("@%Y-%m-%d %H:%M:%S")
    return subprocess.run(["faketime", "-f", when, sys.executable, "manage.py", *args], cwd=REPO,
                          env={**env, "TZ": "UTC"}, capture_output=True, text=True, timeout=300)


def test_a_month_later_one_sweep_erases_exactly_what_is_due_with_one_intent_and_one_completion_each(
    make_volume, clip_library, camera, make_user, local_store, child_env
):
    require_service("faketime", shutil.which("faketime") is not None, "apt-get install faketime")
    supervisor, lawyer = make_user("chef", role="supervisor"), make_user("juriste", role="legal")
    yesterday = timezone.now() - dt.timedelta(days=2)  # two calendar days before `recent` in any time zone
    # A camera docked twice before its wipe finished: the second docking brings the same bytes again.
    [original, held, released] = dock(
        make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"],
                      "c.avi": clip_library["mjpeg"]}, yesterday, keep=True)
    [duplicate] = dock(make_volume, {"a.mp4": clip_library["h264"]}, yesterday, mtime=yesterday)
    [recent] = dock(make_volume, {"d.mp4": clip_library["h264_noaudio"]}, timezone.now() - dt.timedelta(hours=1),
                    ingest_at=timezone.now())
    assert duplicate.status == Recording.Status.DUPLICATE and duplicate.duplicate_of_id == original.pk
    hold_place(by=lawyer, procedure="judicial", reference="PV 2026/412", recording=held)
    hold = hold_place(by=supervisor, procedure="disciplinary", reference="CD 3", recording=released)
    hold_release(hold=hold, by=lawyer, motif="procédure close")

    later = original.retain_until + dt.timedelta(hours=1)  # just past the month, not past `recent`'s
    assert recent.retain_until > later
    before = manage(child_env, later, "retention", "sweep", "--dry-run")
    assert before.returncode == 0 and "would erase 3, held 1" in before.stdout, before.stdout + before.stderr
    swept = manage(child_env, later, "retention", "sweep")

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "erased 3, held 1, refused 0" in swept.stdout
    erased = {original.pk, duplicate.pk, released.pk}
    for rec in Recording.objects.filter(pk__in=[original.pk, duplicate.pk, released.pk, held.pk, recent.pk]):
        assert (rec.status == Recording.Status.ERASED) == (rec.pk in erased), (rec.pk, rec.status)
    for pk in erased:
        log = list(CustodyEvent.objects.filter(recording_id=pk, action__startswith="recording.eras")
                   .values_list("action", flat=True))
        assert log == ["recording.erasure_started", "recording.erased"]
        assert not any(local_store.exists(k) for k, _ in recording_store_keys(Recording.objects.get(pk=pk)))
    again = manage(child_env, later, "retention", "sweep")
    assert "erased 0, held 1" in again.stdout  # a second run erases nothing more
    assert CustodyEvent.objects.filter(action="recording.erased").count() == 3

    audit = manage(child_env, later + dt.timedelta(hours=3), "compliance", "audit")
    assert audit.returncode == 0 and "0 violation(s)" in audit.stdout, audit.stdout + audit.stderr
