"""What the database itself enforces on the custody log, installed by migration 0005.

CSI R241-14 and LIL art. 101: the log must be tamper-evident and kept three years. The hash chain
makes changes detectable; these guards make them impossible for anyone short of a database
superuser, on PostgreSQL and on the embedded SQLite default alike:

- UPDATE, DELETE and TRUNCATE on ``audit_custodyevent`` and ``audit_checkpoint`` are refused by
  triggers. The one exception is the purge: a DELETE of entries older than the retention period,
  covered by a signed purge checkpoint, inside ``custody_purge`` (PostgreSQL: the SECURITY DEFINER
  function ``audit_custody_purge`` sets a transaction-local flag the trigger checks; SQLite: a row in
  the guard table ``audit_custodyguard``). The age floor is the retention period at migration time.
- PostgreSQL: a CHECK constraint ties every entry's columns to its stored canonical bytes, so that
  what pages and filters read is what the hash covers. Verification reads the catalog to make sure
  the constraint is still there and validated, instead of rebuilding a million entries.

docs/custody.md gives the production role setup on top of this (an application role without
UPDATE, DELETE or TRUNCATE on these tables). Changing the SQL here needs a new migration.
"""
from __future__ import annotations

import contextlib
import re

from django.conf import settings
from django.db import DatabaseError, connection, transaction

EVENTS = "audit_custodyevent"
CHECKPOINTS = "audit_checkpoint"
GUARD_TABLE = "audit_custodyguard"
PURGE_FLAG = "temoin.custody_purge"
CONSTRAINT = "audit_custodyevent_matches_record"

# --- PostgreSQL ----------------------------------------------------------------------------------

PG_REFUSE_BODY = """
BEGIN
  -- CSI R241-14: entries of the journal de traçabilité and its checkpoints are never changed.
  RAISE EXCEPTION 'custody log is append-only: % on % refused (CSI R241-14)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'restrict_violation';
END
"""

PG_CUSTODY_BODY = """
BEGIN
  -- CSI R241-14: kept three years, then purged; nothing else may change or remove an entry.
  -- The purge (audit_custody_purge) may delete entries older than the retention period that a
  -- signed purge checkpoint covers.
  IF TG_OP = 'DELETE'
     AND current_setting('temoin.custody_purge', true) = 'on'
     AND OLD.occurred_at < now() - make_interval(years => {years})
     AND EXISTS (SELECT 1 FROM audit_checkpoint c WHERE c.purge_through_seq >= OLD.seq) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'custody log is append-only: % of entry % refused (CSI R241-14)', TG_OP, OLD.seq
    USING ERRCODE = 'restrict_violation';
END
"""

PG_PURGE_BODY = """
DECLARE
  removed bigint;
BEGIN
  -- Runs with the owner's rights: the application role has no DELETE on the log (docs/custody.md).
  PERFORM set_config('temoin.custody_purge', 'on', true);
  DELETE FROM audit_custodyevent WHERE seq <= p_through_seq;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('temoin.custody_purge', 'off', true);
  RETURN removed;
END
"""

PG_CHECK = """
canonical IS NULL OR convert_from(canonical, 'UTF8')::jsonb = jsonb_build_object(
  'seq', seq,
  'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  'organisation', organisation_id, 'actor', actor_id, 'actor_label', actor_label, 'action', action,
  'subject_type', subject_type, 'subject_id', subject_id, 'recording', recording_id, 'motif', motif,
  'recipients', recipients, 'details', details)
"""

# Trigger name, table, function, pg_trigger.tgtype (1 row, 2 before, 8 delete, 16 update, 32 truncate).
PG_TRIGGERS = [
    ("audit_custodyevent_append_only", EVENTS, "audit_custody_refuse_change", 1 | 2 | 8 | 16),
    ("audit_custodyevent_no_truncate", EVENTS, "audit_refuse_change", 2 | 32),
    ("audit_checkpoint_append_only", CHECKPOINTS, "audit_refuse_change", 1 | 2 | 8 | 16),
    ("audit_checkpoint_no_truncate", CHECKPOINTS, "audit_refuse_change", 2 | 32),
]


def _pg_install_sql(years: int) -> list[str]:
    sql = [
        f"CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql "
        f"AS $body${PG_REFUSE_BODY}$body$",
        f"CREATE OR REPLACE FUNCTION audit_custody_refuse_change() RETURNS trigger LANGUAGE plpgsql "
        f"SET search_path FROM CURRENT AS $body${PG_CUSTODY_BODY.format(years=int(years))}$body$",
        f"CREATE OR REPLACE FUNCTION audit_custody_purge(p_through_seq bigint) RETURNS bigint LANGUAGE plpgsql "
        f"SECURITY DEFINER SET search_path FROM CURRENT AS $body${PG_PURGE_BODY}$body$",
        "REVOKE ALL ON FUNCTION audit_custody_purge(bigint) FROM PUBLIC",
    ]
    for name, table, function, tgtype in PG_TRIGGERS:
        when = "UPDATE OR DELETE" if tgtype & 16 else "TRUNCATE"
        level = "ROW" if tgtype & 1 else "STATEMENT"
        sql.append(f"CREATE TRIGGER {name} BEFORE {when} ON {table} FOR EACH {level} EXECUTE FUNCTION {function}()")
    sql.append(f"ALTER TABLE {EVENTS} ADD CONSTRAINT {CONSTRAINT} CHECK ({PG_CHECK})")
    return sql


def _pg_uninstall_sql() -> list[str]:
    sql = [f"ALTER TABLE {EVENTS} DROP CONSTRAINT IF EXISTS {CONSTRAINT}"]
    sql += [f"DROP TRIGGER IF EXISTS {name} ON {table}" for name, table, _, _ in PG_TRIGGERS]
    sql += ["DROP FUNCTION IF EXISTS audit_custody_purge(bigint)", "DROP FUNCTION IF EXISTS audit_custody_refuse_change()",
            "DROP FUNCTION IF EXISTS audit_refuse_change()"]
    return sql


# --- SQLite ------------------------------------------------------------------------------------

def _sqlite_triggers(years: int) -> dict[str, str]:
    refuse = "BEGIN SELECT RAISE(ABORT, 'custody log is append-only: {op} on {table} refused (CSI R241-14)'); END"
    flushing = f"EXISTS (SELECT 1 FROM {GUARD_TABLE} WHERE mode = 'flush')"
    purgeable = (f"(EXISTS (SELECT 1 FROM {GUARD_TABLE} WHERE mode = 'purge' AND through_seq >= OLD.seq) "
                 f"AND EXISTS (SELECT 1 FROM {CHECKPOINTS} WHERE purge_through_seq >= OLD.seq) "
                 f"AND OLD.occurred_at < strftime('%Y-%m-%d %H:%M:%f', 'now', '-{int(years)} years'))")
    return {
        "audit_custodyevent_no_update": f"CREATE TRIGGER audit_custodyevent_no_update BEFORE UPDATE ON {EVENTS} "
                                        + refuse.format(op="UPDATE", table=EVENTS),
        "audit_custodyevent_no_delete": f"CREATE TRIGGER audit_custodyevent_no_delete BEFORE DELETE ON {EVENTS} "
                                        f"WHEN NOT {flushing} AND NOT {purgeable} "
                                        + refuse.format(op="DELETE", table=EVENTS),
        "audit_checkpoint_no_update": f"CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON {CHECKPOINTS} "
                                      + refuse.format(op="UPDATE", table=CHECKPOINTS),
        "audit_checkpoint_no_delete": f"CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON {CHECKPOINTS} "
                                      f"WHEN NOT {flushing} " + refuse.format(op="DELETE", table=CHECKPOINTS),
    }


def _sqlite_install_sql(years: int) -> list[str]:
    return [f"CREATE TABLE IF NOT EXISTS {GUARD_TABLE} (mode varchar(8) NOT NULL, through_seq bigint NULL)",
            *_sqlite_triggers(years).values()]


def _sqlite_uninstall_sql() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for name in _sqlite_triggers(3)] + [f"DROP TABLE IF EXISTS {GUARD_TABLE}"]


# --- Install (migration) -------------------------------------------------------------------------

def install(schema_editor, years: int | None = None) -> None:
    years = settings.CUSTODY_RETENTION_YEARS if years is None else years
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = _pg_install_sql(years)
    elif vendor == "sqlite":
        statements = _sqlite_install_sql(years)
    else:
        raise NotImplementedError(f"no custody log guards for {vendor}")
    with schema_editor.connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)  # no params: the SQL holds literal % signs


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    statements = _pg_uninstall_sql() if vendor == "postgresql" else _sqlite_uninstall_sql()
    with schema_editor.connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


# --- Status (verification) -----------------------------------------------------------------------

def _normalise(sql: str) -> str:
    return " ".join(sql.split())


def status() -> tuple[list[str], bool]:
    """(problems, columns_guaranteed): what is missing from the guards, and whether the database
    guarantees that every entry's columns match its canonical bytes (the PostgreSQL CHECK)."""
    if connection.vendor == "postgresql":
        return _pg_status()
    if connection.vendor == "sqlite":
        return _sqlite_status(), False
    return [f"no custody log guards for {connection.vendor}"], False


def _pg_status() -> tuple[list[str], bool]:
    problems: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname, prosrc FROM pg_proc WHERE proname IN "
                       "('audit_refuse_change', 'audit_custody_refuse_change', 'audit_custody_purge') "
                       "AND pg_function_is_visible(oid)")
        sources = dict(cursor.fetchall())
        expected = {"audit_refuse_change": PG_REFUSE_BODY, "audit_custody_purge": PG_PURGE_BODY}
        for name, body in expected.items():
            if name not in sources:
                problems.append(f"database function {name} is missing")
            elif _normalise(sources[name]) != _normalise(body):
                problems.append(f"database function {name} was replaced")
        custody = sources.get("audit_custody_refuse_change")
        pattern = re.escape(_normalise(PG_CUSTODY_BODY)).replace(re.escape("{years}"), r"\d+")
        if custody is None:
            problems.append("database function audit_custody_refuse_change is missing")
        elif not re.fullmatch(pattern, _normalise(custody)):
            problems.append("database function audit_custody_refuse_change was replaced")

        cursor.execute("SELECT t.tgname, c.relname, p.proname, t.tgtype, t.tgenabled FROM pg_trigger t "
                       "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
                       "WHERE NOT t.tgisinternal AND c.relname IN (%s, %s)", [EVENTS, CHECKPOINTS])
        found = {row[0]: row[1:] for row in cursor.fetchall()}
        for name, table, function, tgtype in PG_TRIGGERS:
            row = found.get(name)
            if row is None:
                problems.append(f"trigger {name} on {table} is missing")
            elif (row[0], row[1], row[2]) != (table, function, tgtype):
                problems.append(f"trigger {name} on {table} was changed")
            elif row[3] not in ("O", "A"):
                problems.append(f"trigger {name} on {table} is disabled")

        cursor.execute("SELECT convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = %s::regclass AND conname = %s", [EVENTS, CONSTRAINT])
        row = cursor.fetchone()
        columns_guaranteed = False
        if row is None:
            problems.append(f"constraint {CONSTRAINT} (columns match the signed record) is missing")
        elif not row[0]:
            problems.append(f"constraint {CONSTRAINT} is not validated")
        elif row[1] != _pg_expected_constraintdef(cursor):
            problems.append(f"constraint {CONSTRAINT} was changed")
        else:
            columns_guaranteed = True
    return problems, columns_guaranteed


def _pg_expected_constraintdef(cursor) -> str:
    """The server's own rendering of the expected CHECK: built on a scratch temporary table, so the
    comparison does not depend on how this PostgreSQL version prints expressions."""
    sid = transaction.savepoint()
    try:
        cursor.execute(f"CREATE TEMPORARY TABLE audit_custody_expected (LIKE {EVENTS})")
        cursor.execute(f"ALTER TABLE audit_custody_expected ADD CONSTRAINT {CONSTRAINT} CHECK ({PG_CHECK})")
        cursor.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = 'audit_custody_expected'::regclass AND conname = %s", [CONSTRAINT])
        return cursor.fetchone()[0]
    finally:
        # Undo the scratch table, then release the savepoint: a subtransaction left open would
        # forbid pg_export_snapshot() later in the same transaction (the C reader's snapshot).
        transaction.savepoint_rollback(sid)
        transaction.savepoint_commit(sid)


def _sqlite_status() -> list[str]:
    problems = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s, %s)",
                       [EVENTS, CHECKPOINTS])
        found = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s", [GUARD_TABLE])
        if cursor.fetchone()[0] == 0:
            problems.append(f"guard table {GUARD_TABLE} is missing")
    for name, sql in _sqlite_triggers(settings.CUSTODY_RETENTION_YEARS).items():
        pattern = re.escape(_normalise(sql)).replace(r"\-" + str(settings.CUSTODY_RETENTION_YEARS), r"\-\d+")
        if name not in found:
            problems.append(f"trigger {name} is missing")
        elif not re.fullmatch(pattern, _normalise(found[name])):
            problems.append(f"trigger {name} was changed")
    return problems


# --- The two ways past the guards ------------------------------------------------------------------

def purge_through(seq: int) -> int:
    """Delete entries up to ``seq`` (inclusive); the guards still check age and checkpoint per entry.
    Call inside the purge's transaction, after its signed checkpoint is written."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT audit_custody_purge(%s)", [seq])
            return cursor.fetchone()[0]
        cursor.execute(f"INSERT INTO {GUARD_TABLE} (mode, through_seq) VALUES ('purge', %s)", [seq])
        try:
            cursor.execute(f"DELETE FROM {EVENTS} WHERE seq <= %s", [seq])
            return cursor.rowcount
        finally:
            cursor.execute(f"DELETE FROM {GUARD_TABLE} WHERE mode = 'purge'")


@contextlib.contextmanager
def flush_permitted(conn):
    """Let ``manage.py flush`` (and the test runner's flush between transactional tests) empty the
    log. PostgreSQL: only a superuser may (``session_replication_role`` skips the triggers; it is a
    superuser-only setting). SQLite: a guard row, for the duration of the flush."""
    if conn.vendor == "postgresql":
        with conn.cursor() as cursor:
            try:
                cursor.execute("SET session_replication_role = replica")
            except DatabaseError as exc:
                raise PermissionError("the journal de traçabilité can only be flushed by a database superuser "
                                      f"(CSI R241-14): {exc}") from exc
        try:
            yield
        finally:
            with conn.cursor() as cursor:
                cursor.execute("RESET session_replication_role")
    elif conn.vendor == "sqlite":
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = %s", [GUARD_TABLE])
            guarded = cursor.fetchone()[0] > 0
            if guarded:
                cursor.execute(f"INSERT INTO {GUARD_TABLE} (mode) VALUES ('flush')")
        try:
            yield
        finally:
            if guarded:
                with conn.cursor() as cursor:
                    cursor.execute(f"DELETE FROM {GUARD_TABLE} WHERE mode = 'flush'")
    else:
        yield
