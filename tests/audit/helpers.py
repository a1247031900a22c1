"""Building custody logs for the tests, and tampering with them the way an attacker with database
superuser rights would: raw SQL, with the database's guards switched off first."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit import guards
from audit.chain import custody_event_canonical, custody_event_hash
from audit.models import CustodyEvent
from audit.services import custody_event_append
from evidence.models import Recording

UTC = dt.timezone.utc
_numbers = itertools.count(1)


def append(n: int = 1, *, action: str = "test.event", now=None, **fields) -> list[CustodyEvent]:
    """n entries, each in its own transaction as a service would write them."""
    fields.setdefault("subject_type", "test.subject")
    events = []
    for _ in range(n):
        with transaction.atomic():
            events.append(custody_event_append(action=action, subject_id=str(next(_numbers)), now=now, **fields))
    return events


def sample_log(n: int = 8) -> list[CustodyEvent]:
    """Entries with every kind of field filled in: motif, recipients, nested details, accents."""
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(custody_event_append(
                action="recording.consulted" if i % 2 else "recording.extracted", subject_type="test.subject",
                subject_id=str(i), actor_label=f"user:agent{i}", motif=f"Procédure n° {i} — « vérification »",
                recipients=[f"Tribunal judiciaire de Chambéry #{i}"] if i % 3 == 0 else [],
                details={"index": i, "nested": {"b": [1, 2.5, None], "a": "é"}, "flag": i % 2 == 0}))
    return events


def make_recording(*, camera, wearer=None, **extra) -> Recording:
    n = next(_numbers)
    started_at = dt.datetime(2026, 11, 20, 21, 30, tzinfo=UTC) + dt.timedelta(minutes=n)
    sha = hashlib.sha256(f"clip {n}".encode()).hexdigest()
    fields = dict(
        organisation=camera.organisation, camera=camera, wearer=wearer, wearer_source="assignment" if wearer else "",
        source_path=f"DCIM/100/CLIP{n:04d}.MP4", source_size=1_000_000 + n, source_mtime_ns=n,
        store_key=f"originals/{camera.serial}/{sha}.mp4", ingested_at=started_at + dt.timedelta(hours=2),
        sha256=sha, size=1_000_000 + n, started_at=started_at, ended_at=started_at + dt.timedelta(seconds=90),
        duration=90.0, time_source="sidecar", time_attested=True, trigger_reason="incident", subject_notified=True,
        purpose="evidence", status=Recording.Status.READY, retain_until=started_at + dt.timedelta(days=31),
        verified_at=started_at + dt.timedelta(hours=2),
    )
    fields.update(extra)
    return Recording.objects.create(**fields)


def verify_cli(*args) -> tuple[int, str]:
    """``manage.py custody verify`` as an operator runs it: (exit code, output)."""
    out = io.StringIO()
    try:
        call_command("custody", "verify", *args, stdout=out, stderr=io.StringIO())
        return 0, out.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue() + "\n" + str(exc)


@contextlib.contextmanager
def guards_off(*, drop_check: bool = False):
    """What a database superuser can do: PostgreSQL ``ALTER TABLE … DISABLE TRIGGER ALL`` (and drop the
    CHECK tying columns to the signed bytes, which triggers do not cover); SQLite: drop the triggers.
    Put back afterwards, so that only the tampering itself remains for the verifier to find."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Django's foreign keys are deferred: run their pending checks, or ALTER TABLE refuses.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {guards.EVENTS} DISABLE TRIGGER ALL")
            cursor.execute(f"ALTER TABLE {guards.CHECKPOINTS} DISABLE TRIGGER ALL")
            if drop_check:
                cursor.execute(f"ALTER TABLE {guards.EVENTS} DROP CONSTRAINT {guards.CONSTRAINT}")
        else:
            for name in guards._sqlite_triggers(settings.CUSTODY_RETENTION_YEARS):
                cursor.execute(f"DROP TRIGGER {name}")
    yield
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {guards.EVENTS} ENABLE TRIGGER ALL")
            cursor.execute(f"ALTER TABLE {guards.CHECKPOINTS} ENABLE TRIGGER ALL")
        else:
            for sql in guards._sqlite_triggers(settings.CUSTODY_RETENTION_YEARS).values():
                cursor.execute(sql)


def raw(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def forged_row(*, seq: int, prev_hash: str, occurred_at: dt.datetime, motif: str) -> dict:
    """A complete entry an attacker who knows the format computes: canonical bytes and a valid hash."""
    canonical = custody_event_canonical(
        seq=seq, occurred_at=occurred_at, organisation_id=None, actor_id=None, actor_label="user:intrus",
        action="recording.consulted", subject_type="test.subject", subject_id="forged", recording_id=None,
        motif=motif, recipients=[], details={})
    return {"seq": seq, "occurred_at": occurred_at, "actor_label": "user:intrus", "action": "recording.consulted",
            "subject_type": "test.subject", "subject_id": "forged", "motif": motif, "recipients": "[]",
            "details": "{}", "prev_hash": prev_hash, "hash": custody_event_hash(prev_hash, canonical),
            "canonical": canonical}


def insert_raw(row: dict) -> None:
    columns = ", ".join(row)
    placeholders = ", ".join(["%s"] * len(row))
    values = [v if not isinstance(v, dt.datetime) or connection.vendor == "postgresql"
              else v.astimezone(UTC).replace(tzinfo=None).isoformat(" ") for v in row.values()]
    raw(f"INSERT INTO {guards.EVENTS} ({columns}) VALUES ({placeholders})", values)


def canonical_of(seq: int) -> dict:
    """The stored canonical bytes of entry ``seq``, decoded."""
    return json.loads(bytes(CustodyEvent.objects.get(seq=seq).canonical))


def dumps(payload: dict) -> bytes:
    """Canonical bytes as the application writes them."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rewrite_with_recomputed_hashes(first: int, last: int, motif: str = "Aucune consultation") -> None:
    """What an attacker who knows the format does: change entry ``first``'s motif and recompute
    every hash from there to ``last``, so that the chain alone still verifies."""
    with guards_off():
        prev = CustodyEvent.objects.get(seq=first - 1).hash
        for seq in range(first, last + 1):
            payload = canonical_of(seq)
            if seq == first:
                payload["motif"] = motif
            canonical = dumps(payload)
            new_hash = custody_event_hash(prev, canonical)
            raw("UPDATE audit_custodyevent SET motif = %s, canonical = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                [payload["motif"], canonical, prev, new_hash, seq])
            prev = new_hash


def insert_forgery_at(seq: int, *, motif: str, careless: bool = False) -> None:
    """Slip a forged entry in at ``seq``, renumbering every entry from there: chained onto entry
    ``seq - 1`` as an attacker who knows the format would, or (``careless``) with a hash that is
    not the chain's."""
    before = CustodyEvent.objects.get(seq=seq - 1)
    row = forged_row(seq=seq, prev_hash=before.hash, occurred_at=before.occurred_at, motif=motif)
    if careless:
        row["hash"] = "f" * 64
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET seq = -seq - 1 WHERE seq >= %s", [seq])
        raw("UPDATE audit_custodyevent SET seq = -seq WHERE seq < 0")
        insert_raw(row)
