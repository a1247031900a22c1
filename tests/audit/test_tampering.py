"""``manage.py custody verify`` names the first entry that was altered, removed, inserted or
reordered — tampering done as a database superuser would, through raw SQL with the guards off."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit.models import Checkpoint, CustodyEvent
from audit.services import custody_checkpoint_create

from .helpers import (
    canonical_of, dumps, guards_off, insert_forgery_at, raw, rewrite_with_recomputed_hashes, sample_log,
    verify_cli,
)

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def log():
    return sample_log(10)  # entries #1–#10


def test_an_intact_log_verifies(log):
    assert verify_cli()[0] == 0


def test_editing_a_field_is_detected_and_the_entry_named(log):
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET motif = %s WHERE seq = 5", ["Aucune consultation"])

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #5: altered" in output and "motif" in output


def test_editing_a_field_and_its_signed_bytes_together_is_detected(log):
    # An attacker who knows the format rewrites the column and the canonical bytes consistently:
    # the entry's hash no longer covers them.
    payload = canonical_of(5) | {"motif": "Aucune consultation"}
    with guards_off():
        raw("UPDATE audit_custodyevent SET motif = %s, canonical = %s WHERE seq = 5",
            ["Aucune consultation", dumps(payload)])

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #5: altered" in output


def test_rewriting_history_with_recomputed_hashes_is_caught_by_the_signed_checkpoint(log):
    custody_checkpoint_create()  # signs #10, recorded as #11
    rewrite_with_recomputed_hashes(5, 11)

    code, output = verify_cli()

    assert code == 1
    assert ": altered" in output and "entry #10 differs from signed checkpoint #10" in output


def test_deleting_an_entry_is_detected_as_a_gap(log):
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 5")

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #5: removed" in output and "jumps from #4 to #6" in output


def test_inserting_a_forged_entry_is_detected_and_named(log):
    # A backdated "consultation" slipped in at #5: everything after it is renumbered.
    insert_forgery_at(5, motif="consultation antidatée")

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #5: inserted" in output


def test_inserting_a_careless_forgery_is_detected_and_named(log):
    # Without recomputing anything: a row whose hash is not the chain's, the others renumbered.
    insert_forgery_at(5, motif="x", careless=True)

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #5: inserted" in output


def test_swapping_two_entries_is_detected_as_reordering(log):
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET seq = -1 WHERE seq = 4")
        raw("UPDATE audit_custodyevent SET seq = 4 WHERE seq = 7")
        raw("UPDATE audit_custodyevent SET seq = 7 WHERE seq = -1")

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #4: reordered" in output and "written as #7" in output


def test_swapping_the_content_of_two_entries_is_detected(log):
    # Same seqs, contents exchanged column by column (canonical bytes and hashes included).
    columns = ["occurred_at", "actor_label", "action", "subject_type", "subject_id", "motif", "recipients", "details",
               "prev_hash", "hash", "canonical"]
    a, b = (CustodyEvent.objects.filter(seq=s).values(*columns).get() for s in (4, 7))
    with guards_off(drop_check=True):
        raw("UPDATE audit_custodyevent SET hash = %s WHERE seq = 4", ["0" * 63 + "a"])  # unique index
        for seq, row in ((7, a), (4, b)):
            values = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in row.values()]
            raw("UPDATE audit_custodyevent SET " + ", ".join(f"{c} = %s" for c in columns) + " WHERE seq = %s",
                [*values, seq])

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #4: reordered" in output


def test_removing_the_last_entries_is_caught_by_the_signed_checkpoint(log):
    custody_checkpoint_create()  # signs #10, recorded as #11
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq >= 9")

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #9: removed" in output and "attests entries up to #10" in output


def test_a_checkpoint_with_an_invalid_signature_is_reported(log):
    cp = custody_checkpoint_create()
    forged = json.loads(cp.payload) | {"hash": "0" * 64}
    with guards_off():
        raw("UPDATE audit_checkpoint SET payload = %s, head_hash = %s WHERE id = %s",
            [json.dumps(forged, sort_keys=True, separators=(",", ":")), "0" * 64, cp.pk])

    code, output = verify_cli()

    assert code == 1
    assert "first bad entry #10: signature" in output and "signature invalid" in output


def test_a_deleted_checkpoint_is_reported(log):
    custody_checkpoint_create()
    with guards_off():
        raw("DELETE FROM audit_checkpoint")

    code, output = verify_cli()

    assert code == 1
    assert ": checkpoint" in output and "recorded by entry #11 is missing" in output


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_naming_the_entry(child_env, settings):
    sample_log(6)
    with guards_off():
        raw("DELETE FROM audit_custodyevent WHERE seq = 3")
    env = child_env | {"TEMOIN_CUSTODY_KEY": str(settings.CUSTODY_SIGNING_KEY)}

    result = subprocess.run([sys.executable, "manage.py", "custody", "verify"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "first bad entry #3: removed" in result.stdout + result.stderr
    assert Checkpoint.objects.count() == 0
