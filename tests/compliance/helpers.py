"""Docking clips through the real pipeline at a chosen time, and reading what the audit says."""
from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import CustodyEvent
from evidence.ingest.services import offload_item_pull, offload_session_finish, offload_session_start
from evidence.models import Recording

PARIS = ZoneInfo("Europe/Paris")


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def dock(make_volume, clips: dict, started_at: dt.datetime | dict, *, serial="BWC-0042", intervention="", keep=False,
         ingest_at: dt.datetime | None = None, mtime: dt.datetime | None = None, device: dict | None = None,
         sidecar: bool = True) -> list[Recording]:
    """One docking of ``clips`` ({name: path}) recorded at ``started_at`` (one time, a minute apart, or
    {name: time}), files written at ``mtime`` (one time or {name: time}), offloaded at ``ingest_at``
    (default: six hours after the last) through offload_session_start / offload_item_pull / finish."""
    starts = started_at if isinstance(started_at, dict) else {
        name: started_at + dt.timedelta(minutes=i) for i, name in enumerate(clips)}
    sidecars = {}
    if sidecar:
        for name in clips:
            sidecars[name.rsplit(".", 1)[0] + ".json"] = {
                "started_at": starts[name].isoformat(), "intervention": intervention,
                "officer": "M042", "trigger_reason": "incident", "subject_notified": True}
    volume = make_volume(serial, clips, sidecars, device=device)
    if mtime is not None:
        for name in clips:
            when = mtime[name] if isinstance(mtime, dict) else mtime
            os.utime(volume / name, (when.timestamp(), when.timestamp()))
    ingest_at = ingest_at or max(starts.values()) + dt.timedelta(hours=6)
    session = offload_session_start(volume=volume, now=ingest_at, keep=keep)
    recordings = []
    for item in session.items.order_by("path"):
        item = offload_item_pull(item=item, now=ingest_at)
        if item.recording_id:
            recordings.append(Recording.objects.get(pk=item.recording_id))
    offload_session_finish(session=session, now=ingest_at)
    return recordings


def actions(recording: Recording) -> list[str]:
    return list(CustodyEvent.objects.filter(recording=recording).order_by("seq").values_list("action", flat=True))


def audit(*args) -> tuple[int, str]:
    """`manage.py compliance audit` as an operator runs it: (exit code, output)."""
    import io

    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("compliance", "audit", *args, stdout=out, stderr=err)
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue() + err.getvalue() + str(exc)
    except SystemExit as exc:
        return exc.code, out.getvalue() + err.getvalue()


def violations(**kwargs) -> list:
    from audit.compliance.services import compliance_check

    found, _ctx = compliance_check(**kwargs)
    return found


def rules(found) -> set[str]:
    return {v.rule for v in found}
