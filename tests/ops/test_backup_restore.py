"""Backup and restore rehearsal: a real instance (real clips offloaded through the CLI), backed up,
restored into a fresh database and a fresh store in other processes, then verified there.

Both instances are separate processes with their own TEMOIN_DATA_DIR and DATABASE_URL, as an
operator would run them; nothing here uses the pytest database.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
PROJECT_ENV = ("TEMOIN_", "DATABASE_URL", "S3_", "CELERY_", "DJANGO_")
PG_ADMIN_URL = os.environ.get("TEMOIN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def _env(data_dir: Path, database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_ENV)}
    env.update(TEMOIN_DATA_DIR=str(data_dir), DATABASE_URL=database_url, CELERY_TASK_ALWAYS_EAGER="true")
    return env


def manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    if check and proc.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recordings_of(env: dict) -> list[dict]:
    code = ("import json; from evidence.models import Recording; print(json.dumps(list(Recording.objects.order_by("
            "'source_path').values('source_path', 'store_key', 'sha256', 'size', 'status'))))")
    return json.loads(manage(env, "shell", "-c", code).stdout.strip().splitlines()[-1])


@pytest.fixture
def postgres_databases():
    """Two fresh PostgreSQL databases of this test's own (source and restore target)."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        require_service("PostgreSQL", False, f"{PG_ADMIN_URL}: {exc}")
    # One pair per xdist worker: two workers may run these tests at the same time.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    names = [f"ops_backup_source_{worker}", f"ops_restore_{worker}"]
    base = PG_ADMIN_URL.rsplit("/", 1)[0]

    def drop():
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    for name in names:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield [f"{base}/{name}" for name in names]
    drop()
    admin.close()


def _rehearse(tmp_path, make_volume, clip_library, source_url: str, target_url: str):
    src_dir, dst_dir, backup_dir = tmp_path / "instance-a", tmp_path / "instance-b", tmp_path / "backup"
    src = _env(src_dir, source_url)
    # An instance with real recordings: an organisation, an officer, a camera and one docking.
    manage(src, "migrate", "--noinput")
    manage(src, "addorg", "chambery", "Police municipale de Chambéry")
    manage(src, "adduser", "agent.martin", "--org", "chambery", "--role", "officer", "--matricule", "M042")
    manage(src, "addcamera", "BWC-0042", "--org", "chambery", "--officer", "M042")
    volume = make_volume("BWC-0042", {
        "DCIM/100/CLIP0001.MP4": clip_library["h264"],
        "DCIM/100/CLIP0002.MP4": clip_library["hevc"],
        "DCIM/100/CLIP0003.AVI": clip_library["mjpeg"],
        "DCIM/100/CLIP0004.MP4": clip_library["truncated"],
    }, {"DCIM/100/CLIP0001.json": {"started_at": "2026-11-20T22:30:00+01:00", "officer": "M042",
                                   "trigger_reason": "incident", "subject_notified": True}})
    manage(src, "offload", str(volume), "--no-progress")
    manage(src, "custody", "checkpoint")
    before = recordings_of(src)
    assert len(before) == 4 and {r["status"] for r in before} <= {"ready", "unplayable"}

    out = manage(src, "backup", str(backup_dir)).stdout
    assert "private key NOT included" in out
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    # Every file of the backup is in the manifest with its SHA-256; the private key is not in it.
    listed = {p.relative_to(backup_dir).as_posix() for p in backup_dir.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == set(manifest["files"])
    assert all(sha256_file(backup_dir / rel) == f["sha256"] for rel, f in manifest["files"].items())
    assert "keys/custody-ed25519.pub.pem" in listed and "keys/custody-ed25519.pem" not in listed
    for rec in before:
        assert manifest["files"][f"store/objects/{rec['store_key']}"]["sha256"] == rec["sha256"]

    dst = _env(dst_dir, target_url)
    # Without the signing key the restored checkpoints could not be verified: refused, nothing written.
    refused = manage(dst, "restore", str(backup_dir), check=False)
    assert refused.returncode == 1 and "--signing-key" in refused.stderr
    assert not (dst_dir / "store" / "objects").exists() or not any((dst_dir / "store" / "objects").iterdir())

    out = manage(dst, "restore", str(backup_dir), "--signing-key", str(src_dir / "keys" / "custody-ed25519.pem")).stdout
    assert "restore verified" in out and "4 recordings checked" in out

    verify = manage(dst, "custody", "verify", "--full")
    assert "intact" in verify.stdout
    after = recordings_of(dst)
    assert after == before
    for rec in after:
        stored = dst_dir / "store" / "objects" / rec["store_key"]
        assert sha256_file(stored) == rec["sha256"], rec["source_path"]
        assert not os.access(stored, os.W_OK) or os.geteuid() == 0
        assert (stored.stat().st_mode & 0o222) == 0  # read-only, as the write-once store leaves it

    # A second restore over the now populated instance is refused.
    again = manage(dst, "restore", str(backup_dir), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr
    return backup_dir, dst


def test_backup_restores_into_a_fresh_sqlite_instance_that_verifies(tmp_path, make_volume, clip_library):
    _rehearse(tmp_path, make_volume, clip_library, f"sqlite:///{tmp_path / 'a.sqlite3'}",
              f"sqlite:///{tmp_path / 'b.sqlite3'}")


def test_backup_restores_into_a_fresh_postgresql_database_that_verifies(tmp_path, make_volume, clip_library,
                                                                      postgres_databases):
    _rehearse(tmp_path, make_volume, clip_library, *postgres_databases)


def test_restore_refuses_a_damaged_backup(tmp_path, make_volume, clip_library):
    src = _env(tmp_path / "a", f"sqlite:///{tmp_path / 'a.sqlite3'}")
    manage(src, "migrate", "--noinput")
    manage(src, "addorg", "chambery", "Police municipale de Chambéry")
    manage(src, "addcamera", "BWC-0042", "--org", "chambery")
    manage(src, "offload", str(make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})), "--no-progress")
    backup_dir = tmp_path / "backup"
    manage(src, "backup", str(backup_dir))
    (key,) = [r["store_key"] for r in recordings_of(src)]
    original = backup_dir / "store" / "objects" / key
    os.chmod(original, 0o600)
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    original.write_bytes(bytes(data))

    dst = _env(tmp_path / "b", f"sqlite:///{tmp_path / 'b.sqlite3'}")
    refused = manage(dst, "restore", str(backup_dir), check=False)
    assert refused.returncode == 1
    assert "backup damaged" in refused.stderr and original.relative_to(backup_dir).as_posix() in refused.stderr
    # Nothing was restored: the new instance's store is still empty.
    assert not (tmp_path / "b" / "store").exists()


def test_compose_procedure_with_the_database_dumped_and_restored_by_the_database_container(
        tmp_path, make_volume, clip_library, postgres_databases):
    """docs/operations.md, compose: pg_dump/pg_restore run in the postgres container (same version as
    the server), `backup --database-dump` and `restore --database-restored` do the rest."""
    source_url, target_url = postgres_databases
    src, dst = _env(tmp_path / "a", source_url), _env(tmp_path / "b", target_url)
    manage(src, "migrate", "--noinput")
    manage(src, "addorg", "chambery", "Police municipale de Chambéry")
    manage(src, "addcamera", "BWC-0042", "--org", "chambery")
    manage(src, "offload", str(make_volume("BWC-0042", {"a.mp4": clip_library["h264"]})), "--no-progress")
    manage(src, "custody", "checkpoint")
    dump = tmp_path / "temoin.pgdump"
    subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), source_url], check=True)

    out = manage(src, "backup", str(tmp_path / "backup"), "--database-dump", str(dump), "--with-private-key").stdout
    assert "private key NOT included" not in out
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["database"]["made_by"] == "pg_dump outside Témoin" and manifest["private_key_included"]

    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--dbname", target_url,
                    str(tmp_path / "backup" / "database" / "temoin.pgdump")], check=True)
    out = manage(dst, "restore", str(tmp_path / "backup"), "--database-restored").stdout
    assert "restore verified" in out and "1 recordings checked" in out
    assert "intact" in manage(dst, "custody", "verify").stdout
    (rec,) = recordings_of(dst)
    assert sha256_file(tmp_path / "b" / "store" / "objects" / rec["store_key"]) == rec["sha256"]
    key = tmp_path / "b" / "keys" / "custody-ed25519.pem"
    assert key.read_bytes() == (tmp_path / "a" / "keys" / "custody-ed25519.pem").read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600


def test_backup_refuses_a_file_that_is_not_a_pg_dump(tmp_path, postgres_databases):
    src = _env(tmp_path / "a", postgres_databases[0])
    manage(src, "migrate", "--noinput")
    bogus = tmp_path / "dump.sql"
    bogus.write_text("-- plain SQL, not the custom format\n")

    proc = manage(src, "backup", str(tmp_path / "backup"), "--database-dump", str(bogus), check=False)

    assert proc.returncode == 1 and "not a pg_dump custom-format file" in proc.stderr
    assert not (tmp_path / "backup" / "manifest.json").exists()


def test_s3_backup_lists_every_version_and_restore_checks_the_replica(tmp_path, make_volume, clip_library, s3_store,
                                                                      settings):
    """On S3 the bytes are copied by bucket replication; the backup keeps the list of versions with
    their SHA-256, and restore refuses a bucket that misses any of them."""
    def s3_env(data_dir: Path, database: Path, bucket: str) -> dict:
        env = _env(data_dir, f"sqlite:///{database}")
        env.update(TEMOIN_STORE="s3", S3_ENDPOINT_URL=settings.S3_ENDPOINT_URL, S3_BUCKET=bucket,
                   S3_ACCESS_KEY_ID="testing", S3_SECRET_ACCESS_KEY="testing", S3_PART_SIZE=str(settings.S3_PART_SIZE))
        return env

    src = s3_env(tmp_path / "a", tmp_path / "a.sqlite3", s3_store.bucket)
    manage(src, "migrate", "--noinput")
    manage(src, "addorg", "chambery", "Police municipale de Chambéry")
    manage(src, "addcamera", "BWC-0042", "--org", "chambery")
    manage(src, "offload", str(make_volume("BWC-0042", {"a.mp4": clip_library["h264"], "b.avi": clip_library["mjpeg"]})),
           "--no-progress")
    manage(src, "custody", "checkpoint")
    manage(src, "backup", str(tmp_path / "backup"), "--with-private-key")

    listed = [json.loads(line) for line in (tmp_path / "backup" / "store" / "objects.jsonl").read_text().splitlines()]
    assert not list((tmp_path / "backup").glob("store/objects/*"))  # no bytes: replication copies them
    by_key = {row["key"]: row for row in listed}
    code = ("import json; from evidence.models import Recording; print(json.dumps(list(Recording.objects.values("
            "'store_key', 'store_version_id', 'sha256', 'playback_key'))))")
    recs = json.loads(manage(src, "shell", "-c", code).stdout.strip().splitlines()[-1])
    assert len(recs) == 2
    for rec in recs:
        assert by_key[rec["store_key"]]["version_id"] == rec["store_version_id"] != ""
        assert by_key[rec["store_key"]]["sha256"] == rec["sha256"]
        assert rec["playback_key"] in by_key
    assert any(k.startswith("custody/checkpoints/") for k in by_key)

    # A bucket that did not receive the replicated objects is refused, naming what is missing.
    from evidence.integrations.s3 import S3Store

    empty = f"{s3_store.bucket}-replica"
    S3Store(endpoint_url=settings.S3_ENDPOINT_URL, bucket=empty, access_key="testing", secret_key="testing").ensure_bucket()
    refused = manage(s3_env(tmp_path / "b", tmp_path / "b.sqlite3", empty), "restore", str(tmp_path / "backup"),
                     check=False)
    assert refused.returncode == 1 and f"{len(listed)} of {len(listed)} object versions are not in bucket" in refused.stderr

    # The replicated bucket (here: the same one) passes, and every original is read back and hashed.
    out = manage(s3_env(tmp_path / "c", tmp_path / "c.sqlite3", s3_store.bucket), "restore",
                 str(tmp_path / "backup")).stdout
    assert "restore verified" in out and "2 recordings checked" in out


AGE_ONE_RECORDING = """
import datetime as dt, json
from pathlib import Path
from django.conf import settings
from evidence.models import Recording
past = dt.datetime(2026, 10, 2, tzinfo=dt.timezone.utc)
rec = Recording.objects.get(source_path="old.mp4")
Recording.objects.filter(pk=rec.pk).update(retain_until=past)
for key in (rec.store_key, rec.playback_key, rec.poster_key, rec.sidecar_key):
    if key:
        meta = Path(settings.STORE_LOCAL_ROOT) / "meta" / f"{key}.json"
        data = json.loads(meta.read_text())
        data["retain_until"] = past.isoformat()
        meta.write_text(json.dumps(data))
"""


def test_a_restore_reports_recordings_past_their_erasure_date_and_the_sweep_erases_them(
        tmp_path, make_volume, clip_library):
    """CSI R241-13: a backup may bring back a recording whose erasure date has passed since."""
    src = _env(tmp_path / "a", f"sqlite:///{tmp_path / 'a.sqlite3'}")
    manage(src, "migrate", "--noinput")
    manage(src, "addorg", "chambery", "Police municipale de Chambéry")
    manage(src, "addcamera", "BWC-0042", "--org", "chambery")
    volume = make_volume("BWC-0042", {"old.mp4": clip_library["h264"], "new.avi": clip_library["mjpeg"]})
    manage(src, "offload", str(volume), "--no-progress")
    # Time passes for one recording: its erasure date, in the database and in the store's lock, is
    # now behind us (ingest never accepts an erasure date in the past, so the data is moved instead).
    manage(src, "shell", "-c", AGE_ONE_RECORDING)
    manage(src, "backup", str(tmp_path / "backup"))

    dst = _env(tmp_path / "b", f"sqlite:///{tmp_path / 'b.sqlite3'}")
    out = manage(dst, "restore", str(tmp_path / "backup")).stdout
    assert "1 recording(s) are past their erasure date" in out and "restore verified" in out

    manage(dst, "retention", "sweep")
    statuses = {r["source_path"]: r["status"] for r in recordings_of(dst)}
    assert statuses == {"old.mp4": "erased", "new.avi": "ready"}
    assert "intact" in manage(dst, "custody", "verify").stdout
