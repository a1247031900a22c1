"""Signed checkpoints: Ed25519 over the head of the log, stored write-once, optionally timestamped
by an RFC 3161 authority (a local ``openssl ts`` one here), and used by verification."""
from __future__ import annotations

import base64
import datetime as dt
import io
import json
import logging
import os
import stat

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from audit import tasks
from audit.integrations import signing, tsa
from audit.models import Alert, Checkpoint, CustodyEvent
from audit.services import custody_checkpoint_create

from .helpers import append, guards_off, raw, sample_log, verify_cli

pytestmark = pytest.mark.django_db


def test_a_checkpoint_signs_the_head_seq_hash_count_and_time(settings):
    events = sample_log(5)
    now = timezone.now()

    cp = custody_checkpoint_create(now=now)

    statement = json.loads(cp.payload)
    assert (statement["seq"], statement["hash"], statement["count"], statement["first_seq"]) == (5, events[-1].hash, 5, 1)
    assert statement["created_at"] == now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    key = signing.public_key()
    assert signing.verify(key, cp.payload.encode(), cp.signature)
    assert cp.key_id == signing.key_id(key)
    # The key was created on first use, readable by its owner only.
    assert stat.S_IMODE(os.stat(settings.CUSTODY_SIGNING_KEY).st_mode) == 0o600
    # Recorded in the chain itself.
    event = CustodyEvent.objects.get(seq=cp.event_seq)
    assert event.action == "custody.checkpointed" and event.details["signature"] == cp.signature


def test_the_signed_document_is_kept_in_the_write_once_store_beyond_the_log(local_store, settings):
    sample_log(3)
    now = timezone.now()

    cp = custody_checkpoint_create(now=now)

    assert cp.store_key == "custody/checkpoints/3.json"
    info = local_store.head(cp.store_key)
    assert info.mode == "COMPLIANCE"
    assert info.retain_until >= now + dt.timedelta(days=365 * (settings.CUSTODY_RETENTION_YEARS + 1))
    with local_store.open(cp.store_key) as fh:
        document = json.load(fh)
    key = load_pem_public_key(document["public_key_pem"].encode())
    key.verify(base64.b64decode(document["signature"]), document["payload"].encode())  # raises if invalid
    assert json.loads(document["payload"])["hash"] == cp.head_hash


def test_no_checkpoint_is_signed_when_nothing_was_appended_since_the_last(db):
    append(2)
    first = custody_checkpoint_create()

    assert custody_checkpoint_create() is None
    assert Checkpoint.objects.count() == 1
    append(1)
    assert custody_checkpoint_create().seq == first.event_seq + 1


def test_the_beat_task_signs_a_checkpoint(db):
    append(2)

    assert tasks.checkpoint() == 2
    assert Checkpoint.objects.get().seq == 2


def test_verification_relies_on_the_latest_checkpoint(db):
    append(3)
    cp = custody_checkpoint_create()
    append(2)

    code, output = verify_cli()

    assert code == 0, output
    assert f"1 signed checkpoints verified, latest #{cp.seq}" in output


def test_export_key_prints_the_public_key_that_verifies_checkpoints(db):
    append(1)
    cp = custody_checkpoint_create()
    out = io.StringIO()

    call_command("custody", "export-key", stdout=out)

    key = load_pem_public_key(out.getvalue().encode())
    key.verify(base64.b64decode(cp.signature), cp.payload.encode())
    assert signing.key_id(key) in out.getvalue()


def test_the_public_key_page_is_public_and_shows_the_key(db):
    anonymous = Client()

    page = anonymous.get("/journal/cle-publique/")
    pem = anonymous.get("/journal/cle-publique.pem")

    assert page.status_code == 200 and pem.status_code == 200
    key = load_pem_public_key(pem.content)
    assert signing.key_id(key) in page.content.decode()
    assert "BEGIN PUBLIC KEY" in page.content.decode()


# --- RFC 3161 time-stamping by a local openssl authority ---------------------------------------

def test_a_checkpoint_is_timestamped_by_the_authority_and_the_token_verifies(with_tsa):
    append(2)
    before = timezone.now().replace(microsecond=0) - dt.timedelta(seconds=2)

    cp = custody_checkpoint_create()

    assert with_tsa.requests >= 1
    assert cp.tsa_url == with_tsa.url and cp.tsa_token
    assert before <= cp.tsa_time <= timezone.now() + dt.timedelta(seconds=2)
    assert tsa.verify(bytes(cp.tsa_token), cp.payload.encode()) == (True, "")
    ok, why = tsa.verify(bytes(cp.tsa_token), cp.payload.encode() + b" ")
    assert ok is False and why
    assert verify_cli()[0] == 0


def test_a_timestamp_that_no_longer_matches_its_checkpoint_fails_verification(with_tsa):
    append(2)
    cp = custody_checkpoint_create()
    append(1)
    other = custody_checkpoint_create()
    with guards_off():
        raw("UPDATE audit_checkpoint SET tsa_token = %s WHERE id = %s", [bytes(cp.tsa_token), other.pk])

    code, output = verify_cli()

    assert code == 1
    assert f"checkpoint #{other.seq}: its RFC 3161 timestamp does not verify" in output


def test_an_unreachable_authority_leaves_a_signed_checkpoint_and_an_alert(settings, caplog):
    settings.CUSTODY_TSA_URL = "http://127.0.0.1:9/tsa"
    append(1)

    with caplog.at_level(logging.ERROR, logger="audit.services"):
        cp = custody_checkpoint_create()

    assert cp is not None and not cp.tsa_token
    assert Alert.objects.get().kind == Alert.Kind.CHECKPOINT_FAILED
    assert "not timestamped" in caplog.text
