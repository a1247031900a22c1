"""Backup and restore of a deployment: database, write-once store, signing key (docs/operations.md).

A backup is a directory::

    manifest.json                 format, dates, engine, store, custody head, key id, and the
                                  SHA-256 and size of every other file (written last: a directory
                                  without it is an unfinished backup)
    database/temoin.sqlite3       SQLite: a consistent copy made with SQLite's online backup API
    database/temoin.pgdump        PostgreSQL: ``pg_dump --format=custom``
    store/objects/…, store/meta/… local store: the files as they are (objects and their retention)
    store/objects.jsonl           S3: every object version (key, version id, size, ETag, SHA-256 when
                                  Témoin knows it); the bytes are copied by bucket replication
    keys/custody-ed25519.pub.pem  the public key that verifies the signed checkpoints
    keys/custody-ed25519.pem      the private key, only with ``--with-private-key``

Restore goes into a fresh instance only (an empty database and an empty store) unless forced,
checks every file against the manifest before touching anything, and ends by verifying the custody
chain and the SHA-256 of every recording's original in the store.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

FORMAT = "temoin-backup/1"
MANIFEST = "manifest.json"
SQLITE_FILE = "database/temoin.sqlite3"
PG_FILE = "database/temoin.pgdump"
S3_LIST = "store/objects.jsonl"
PUBLIC_KEY = "keys/custody-ed25519.pub.pem"
PRIVATE_KEY = "keys/custody-ed25519.pem"
CHUNK = 8 * 1024 * 1024


class BackupError(Exception):
    """The backup or the restore cannot go on; the message tells the operator why and what to do."""


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    files: int
    bytes: int


@dataclass
class RestoreResult:
    manifest: dict
    files_restored: int
    custody_ok: bool
    custody_summary: str
    recordings_checked: int
    recordings_bad: list[str] = field(default_factory=list)
    overdue: int = 0
    pending_migrations: int = 0

    @property
    def ok(self) -> bool:
        return self.custody_ok and not self.recordings_bad


# --- Small helpers -----------------------------------------------------------------------------

def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (which must not exist) in one read, returning (sha256, size)."""
    digest, size = hashlib.sha256(), 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while data := fin.read(CHUNK):
            digest.update(data)
            size += len(data)
            fout.write(data)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while data := fh.read(CHUNK):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


def _pg_env_args(settings_dict: dict) -> tuple[dict, list[str]]:
    """Connection of ``pg_dump``/``pg_restore``: the password in the environment, never in argv."""
    env = dict(os.environ)
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    args = []
    if settings_dict.get("HOST"):
        args += ["--host", str(settings_dict["HOST"])]
    if settings_dict.get("PORT"):
        args += ["--port", str(settings_dict["PORT"])]
    if settings_dict.get("USER"):
        args += ["--username", str(settings_dict["USER"])]
    return env, args


def _run(cmd: list[str], env: dict, what: str) -> None:
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise BackupError(f"{cmd[0]} is not installed: install the PostgreSQL client tools of the server's "
                          f"major version (Debian: postgresql-client)") from exc
    if proc.returncode != 0:
        raise BackupError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")


def _custody_head() -> dict:
    from audit.models import CustodyEvent

    head = CustodyEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    return {"seq": head[0], "hash": head[1]} if head else {"seq": 0, "hash": ""}


def _signing_key_id() -> tuple[str, str]:
    """(key id, public PEM) of the deployment's signing key, or ("", "") when none was ever created."""
    from audit.integrations import signing

    key = signing.public_key()
    if key is None:
        return "", ""
    return signing.key_id(key), signing.public_key_pem(key)


# --- Backup ---------------------------------------------------------------------------------------

def backup_create(*, dest: str | os.PathLike, include_private_key: bool = False,
                  database_dump: str | os.PathLike | None = None,
                  now: dt.datetime | None = None, progress=None) -> BackupResult:
    """Back up the database, the store (or its object list for S3) and the public key into ``dest``.

    The database is copied first, then the store: the store only grows between the two (objects
    are written before their rows commit), except for erasures, which restore reports.
    ``database_dump``: a ``pg_dump --format=custom`` file made just before by the database's own
    container (compose: its pg_dump matches the server's version), taken instead of running pg_dump.
    """
    from evidence.models import Recording

    now = now or timezone.now()
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} exists and is not an empty directory: a backup never overwrites another")
    dest.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    files: dict[str, dict] = {}

    def _add(rel: str, sha: str, size: int) -> None:
        files[rel] = {"sha256": sha, "size": size}

    head = _custody_head()
    vendor = connection.vendor
    db = {"engine": vendor}
    if vendor == "sqlite":
        target = dest / SQLITE_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        say(f"database: SQLite online backup of {settings.DATABASES['default']['NAME']}")
        source = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]), timeout=60)
        try:
            copy = sqlite3.connect(str(target))
            with copy:
                source.backup(copy)
            copy.close()
        finally:
            source.close()
        _add(SQLITE_FILE, *_hash_file(target))
        db["file"] = SQLITE_FILE
    elif vendor == "postgresql":
        target = dest / PG_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        if database_dump:
            with open(database_dump, "rb") as fh:
                if fh.read(5) != b"PGDMP":
                    raise BackupError(f"{database_dump} is not a pg_dump custom-format file (pg_dump --format=custom)")
            say(f"database: the dump {database_dump}")
            _add(PG_FILE, *_copy_hashing(Path(database_dump), target))
            db["made_by"] = "pg_dump outside Témoin"
        else:
            s = connection.settings_dict
            env, args = _pg_env_args(s)
            say(f"database: pg_dump of {s['NAME']}")
            _run(["pg_dump", "--format=custom", "--no-password", *args, "--file", str(target), str(s["NAME"])],
                 env, "pg_dump")
            _add(PG_FILE, *_hash_file(target))
        db["file"] = PG_FILE
    else:
        raise BackupError(f"database engine {vendor!r} is not supported by backup (SQLite or PostgreSQL)")
    if database_dump and vendor != "postgresql":
        raise BackupError("--database-dump is for PostgreSQL (a pg_dump file); SQLite is copied by the command")

    store = {"backend": settings.STORE_BACKEND}
    if settings.STORE_BACKEND == "s3":
        store.update(_backup_s3_list(dest, _add, say))
    else:
        store.update(_backup_local_store(dest, _add, say))

    key_id, public_pem = _signing_key_id()
    if key_id:
        path = dest / PUBLIC_KEY
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(public_pem)
        _add(PUBLIC_KEY, *_hash_file(path))
        if include_private_key:
            path = dest / PRIVATE_KEY
            os.chmod(path.parent, 0o700)
            _add(PRIVATE_KEY, *_copy_hashing(Path(settings.CUSTODY_SIGNING_KEY), path))
            os.chmod(path, 0o600)

    manifest = {
        "format": FORMAT,
        "created_at": now.isoformat(),
        "database": db,
        "store": store,
        "custody_head": head,
        "recordings": Recording.objects.count(),
        "signing_key_id": key_id,
        "private_key_included": bool(key_id and include_private_key),
        "files": dict(sorted(files.items())),
    }
    body = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
    tmp = dest / f".{MANIFEST}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, dest / MANIFEST)
    total = sum(f["size"] for f in files.values())

    from audit.services import custody_event_append

    # A backup copies every recording: the journal says when, where to and what (CSI R241-14).
    with transaction.atomic():
        custody_event_append(
            action="backup.created", subject_type="ops.backup", subject_id=now.strftime("%Y%m%dT%H%M%SZ"),
            actor_label="system:backup",
            details={"path": str(dest.resolve()), "files": len(files), "bytes": total,
                     "manifest_sha256": hashlib.sha256(body).hexdigest(), "custody_head": head,
                     "store": settings.STORE_BACKEND, "private_key_included": manifest["private_key_included"]},
        )
    return BackupResult(path=dest, manifest=manifest, files=len(files), bytes=total)


def _backup_local_store(dest: Path, add, say) -> dict:
    root = Path(settings.STORE_LOCAL_ROOT)
    say(f"store: copying the local store {root}")
    count = 0
    for part in ("objects", "meta"):
        base = root / part
        if not base.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(base):
            for name in sorted(names):
                if name.startswith("."):
                    continue  # a metadata file being replaced (temporary name)
                src = Path(dirpath) / name
                rel = f"store/{part}/{src.relative_to(base).as_posix()}"
                try:
                    add(rel, *_copy_hashing(src, dest / rel))
                except FileNotFoundError:
                    # Erased by the retention sweep while the backup ran (CSI R241-13): not copied.
                    (dest / rel).unlink(missing_ok=True)
                    continue
                count += 1
    return {"files": count}


def _backup_s3_list(dest: Path, add, say) -> dict:
    """The bucket's bytes are copied by replication (docs/operations.md); this keeps the list of
    every version, with the SHA-256 Témoin recorded for it, to check a replica against."""
    from evidence.integrations.store import get_store
    from evidence.models import Recording

    store = get_store()
    known = {}
    for key, vid, sha, sc_key, sc_sha in Recording.objects.values_list(
            "store_key", "store_version_id", "sha256", "sidecar_key", "sidecar_sha256"):
        if key and sha:
            known[(key, vid or "")] = sha
        if sc_key and sc_sha:
            known[(sc_key, "")] = sc_sha
    say(f"store: listing every version of bucket {store.bucket}")
    path = dest / S3_LIST
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    kwargs = {"Bucket": store.bucket}
    with open(path, "w", encoding="utf-8") as out:
        while True:
            resp = store.client.list_object_versions(**kwargs)
            for v in resp.get("Versions", []):
                row = {"key": v["Key"], "version_id": v.get("VersionId", ""), "size": v.get("Size", 0),
                       "etag": v.get("ETag", "").strip('"'), "latest": v.get("IsLatest", False),
                       "last_modified": v["LastModified"].isoformat() if v.get("LastModified") else None}
                sha = known.get((v["Key"], v.get("VersionId", ""))) or known.get((v["Key"], ""))
                if sha:
                    row["sha256"] = sha
                out.write(json.dumps(row, sort_keys=True) + "\n")
                count += 1
            if not resp.get("IsTruncated"):
                break
            kwargs.update(KeyMarker=resp["NextKeyMarker"], VersionIdMarker=resp["NextVersionIdMarker"])
    add(S3_LIST, *_hash_file(path))
    return {"bucket": store.bucket, "versions": count}


# --- Restore --------------------------------------------------------------------------------------

def backup_read(src: str | os.PathLike) -> dict:
    """The manifest, after checking every file it lists against its SHA-256 and size."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise BackupError(f"{src} has no {MANIFEST}: not a Témoin backup, or an unfinished one") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src}: unknown backup format {manifest.get('format')!r} (expected {FORMAT})")
    for rel, expected in manifest["files"].items():
        path = src / rel
        if not path.is_file():
            raise BackupError(f"backup damaged: {rel} is missing")
        sha, size = _hash_file(path)
        if (sha, size) != (expected["sha256"], expected["size"]):
            raise BackupError(f"backup damaged: {rel} does not match its SHA-256 in the manifest")
    return manifest


def _database_is_empty() -> bool:
    return not connection.introspection.table_names()


def _install_signing_key(src: Path, manifest: dict, signing_key: str | None) -> None:
    """The restored checkpoints verify only with the key that signed them."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from audit.integrations import signing

    wanted = manifest.get("signing_key_id", "")
    if not wanted:
        return
    target = Path(settings.CUSTODY_SIGNING_KEY)
    current = signing.public_key()
    if current is not None:
        if signing.key_id(current) != wanted:
            raise BackupError(f"the signing key at {target} ({signing.key_id(current)[:16]}…) is not the one that "
                              f"signed the backup's checkpoints ({wanted[:16]}…): put the backed-up key there")
        return
    candidate = Path(signing_key) if signing_key else (src / PRIVATE_KEY if manifest.get("private_key_included")
                                                       else None)
    if candidate is None:
        raise BackupError(f"the backup's checkpoints were signed by key {wanted[:16]}…, which is not in the backup: "
                          f"give it with --signing-key FILE (the key kept from the keys volume), or the restored "
                          f"log could not be verified and new checkpoints would be signed by another key")
    data = candidate.read_bytes()
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey) or signing.key_id(key.public_key()) != wanted:
        raise BackupError(f"{candidate} is not the key that signed the backup's checkpoints ({wanted[:16]}…)")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _restore_local_store(src: Path, manifest: dict, force: bool, say) -> int:
    root = Path(settings.STORE_LOCAL_ROOT)
    objects = root / "objects"
    if objects.is_dir() and any(objects.iterdir()) and not force:
        raise BackupError(f"the store {root} already holds objects: restore goes into a fresh store "
                          f"(--force adds the missing objects and keeps the identical ones)")
    say(f"store: restoring into {root}")
    count = 0
    for rel, expected in manifest["files"].items():
        if not rel.startswith(("store/objects/", "store/meta/")):
            continue
        target = root / rel[len("store/"):]
        if target.exists():
            if _hash_file(target)[0] != expected["sha256"]:
                if rel.startswith("store/objects/"):
                    raise BackupError(f"{target} exists with other content: the write-once store keeps it, "
                                      f"restore stops")
                target.unlink()  # metadata (retention, hold) comes from the backup
            else:
                continue
        _copy_hashing(src / rel, target)
        if rel.startswith("store/objects/"):
            os.chmod(target, stat.S_IRUSR | stat.S_IRGRP)  # as LocalStore.put leaves it
        count += 1
    for d in ("objects", "meta", "staging"):
        (root / d).mkdir(parents=True, exist_ok=True)
    return count


def _check_s3_replica(src: Path, say) -> int:
    """Every listed version must be in the configured bucket (restored by replication)."""
    from evidence.integrations.store import ObjectMissing, get_store

    store = get_store()
    say(f"store: checking the object list against bucket {store.bucket}")
    missing, n = [], 0
    with open(src / S3_LIST, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            n += 1
            try:
                info = store.head(row["key"], row["version_id"])
                if info.size != row["size"]:
                    missing.append(f"{row['key']} ({row['version_id']}): size differs")
            except ObjectMissing:
                missing.append(f"{row['key']} ({row['version_id']})")
    if missing:
        raise BackupError(f"{len(missing)} of {n} object versions are not in bucket {store.bucket}, e.g. "
                          f"{', '.join(missing[:5])}: restore the bucket by replication first (docs/operations.md)")
    return n


def _restore_database(src: Path, manifest: dict, force: bool, say) -> None:
    vendor = connection.vendor
    if manifest["database"]["engine"] != vendor:
        raise BackupError(f"the backup holds a {manifest['database']['engine']} database and DATABASE_URL points "
                          f"at {vendor}: restore into the same engine")
    if vendor == "sqlite":
        name = str(settings.DATABASES["default"]["NAME"])
        connections.close_all()
        say(f"database: SQLite restore into {name}")
        source = sqlite3.connect(str(src / SQLITE_FILE))
        try:
            target = sqlite3.connect(name, timeout=60)
            with target:
                source.backup(target)
            target.close()
        finally:
            source.close()
        return
    s = connection.settings_dict
    env, args = _pg_env_args(s)
    connections.close_all()
    say(f"database: pg_restore into {s['NAME']}")
    clean = ["--clean", "--if-exists"] if force else []
    _run(["pg_restore", "--exit-on-error", "--single-transaction", "--no-owner", "--no-password", *clean, *args,
          "--dbname", str(s["NAME"]), str(src / PG_FILE)], env, "pg_restore")


def _verify_recordings(say, now: dt.datetime) -> tuple[int, list[str]]:
    """Read back every recording's original from the store and compare its SHA-256 (CSI R241-11 V).

    An original missing because it was past its erasure date and erased while the backup ran
    (the database was copied first) is not a fault: the next sweep writes its tombstone again.
    """
    from evidence.integrations.store import ObjectMissing, StoreError, get_store, reset_store
    from evidence.models import Recording
    from evidence.retention.holds import active_holds_q

    reset_store()
    store = get_store()
    bad, n = [], 0
    qs = (Recording.objects.exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.DUPLICATE,
                                                Recording.Status.FAILED, Recording.Status.RECEIVING])
          .exclude(sha256="").order_by("pk"))
    due = set(qs.filter(retain_until__lte=now).exclude(active_holds_q()).values_list("pk", flat=True))
    say("verifying the SHA-256 of every recording's original in the store")
    for pk, key, vid, sha in qs.values_list("pk", "store_key", "store_version_id", "sha256").iterator():
        n += 1
        try:
            digest, _size = store.digest(key, vid)
        except ObjectMissing as exc:
            if pk not in due:
                bad.append(f"recording {pk}: {exc}")
            continue
        except StoreError as exc:
            bad.append(f"recording {pk}: {exc}")
            continue
        if digest != sha:
            bad.append(f"recording {pk}: stored bytes hash to {digest[:16]}…, expected {sha[:16]}…")
    return n, bad


def backup_restore(*, src: str | os.PathLike, force: bool = False, signing_key: str | None = None,
                   database_restored: bool = False, now: dt.datetime | None = None, progress=None) -> RestoreResult:
    """Restore ``src`` into this (fresh) instance, then verify the custody chain and every recording.

    ``database_restored``: the database was already restored with pg_restore in the database's own
    container (compose); only the signing key and the store are restored here, then all is verified.
    """
    from django.db.migrations.executor import MigrationExecutor

    from audit.services import custody_event_append, custody_verify
    from evidence.models import Recording
    from evidence.retention.holds import active_holds_q

    say = progress or (lambda _msg: None)
    src = Path(src)
    say(f"checking {src} against its manifest")
    manifest = backup_read(src)
    if manifest["database"]["engine"] != connection.vendor:
        raise BackupError(f"the backup holds a {manifest['database']['engine']} database and DATABASE_URL points "
                          f"at {connection.vendor}: restore into the same engine")
    if manifest["store"]["backend"] != settings.STORE_BACKEND:
        raise BackupError(f"the backup's store is {manifest['store']['backend']} and this instance's is "
                          f"{settings.STORE_BACKEND}")
    if database_restored:
        if "audit_custodyevent" not in connection.introspection.table_names():
            raise BackupError("--database-restored, but the database holds no Témoin tables: restore the dump "
                              "first (docs/operations.md)")
    elif not _database_is_empty() and not force:
        raise BackupError("the database is not empty: restore goes into a fresh instance (an empty database); "
                          "--force replaces its content")
    _install_signing_key(src, manifest, signing_key)
    if settings.STORE_BACKEND == "s3":
        files = _check_s3_replica(src, say)
    else:
        files = _restore_local_store(src, manifest, force, say)
    if not database_restored:
        _restore_database(src, manifest, force, say)
    connections.close_all()

    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    say("verifying the custody chain")
    report, _ = custody_verify(triggered_by="restore")
    now = now or timezone.now()
    checked, bad = _verify_recordings(say, now)
    # CSI R241-13: what the backup still holds past its erasure date goes at the next sweep.
    overdue = (Recording.objects.filter(retain_until__lte=now)
               .exclude(status__in=[Recording.Status.ERASED, Recording.Status.ERASING, Recording.Status.DUPLICATE])
               .exclude(active_holds_q()).count())
    with transaction.atomic():
        custody_event_append(
            action="backup.restored", subject_type="ops.backup", subject_id=manifest["created_at"][:32],
            actor_label="system:restore", now=now,
            details={"backup_created_at": manifest["created_at"], "custody_head": manifest["custody_head"],
                     "chain_intact": report.ok, "recordings_checked": checked, "recordings_bad": len(bad),
                     "overdue_for_erasure": overdue},
        )
    return RestoreResult(manifest=manifest, files_restored=files, custody_ok=report.ok,
                         custody_summary=report.summary(), recordings_checked=checked, recordings_bad=bad,
                         overdue=overdue, pending_migrations=pending)
