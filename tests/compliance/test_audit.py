"""`manage.py compliance audit`: every legal invariant on a live deployment, each violation named."""
import datetime as dt
import json

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from audit.models import Alert, ComplianceAudit, CustodyEvent
from evidence.access.services import consultation_open
from evidence.retention.holds import hold_place
from evidence.retention.objects import recording_store_keys
from evidence.models import Consultation, Recording

from .helpers import audit, dock, paris

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live(make_volume, clip_library, camera, local_store, settings):
    """A commune that docked one camera yesterday; the grace period off, so that a planted violation
    counts at once."""
    settings.TEMOIN_COMPLIANCE_GRACE = "PT0S"
    return dock(make_volume, {"a.mp4": clip_library["h264"], "b.mp4": clip_library["hevc"]},
                timezone.now() - dt.timedelta(days=1))


def named(output: str, rule: str, subject: str) -> bool:
    return any(rule in line or subject in line for line in output.splitlines()) and subject in output


def test_a_deployment_in_use_is_compliant(live):
    code, out = audit()
    assert code == 0, out
    assert "0 violation(s)" in out and out.count("ok  ") == 11
    record = ComplianceAudit.objects.get()
    assert record.ok and record.heads_checked >= 8  # every object's lock and legal hold was read
    assert CustodyEvent.objects.filter(action="compliance.audited").exists()


def test_an_orphan_object_is_named(live, local_store):
    import io

    local_store.put("originals/chambery/BWC-0042/left-by-a-crash.mp4", io.BytesIO(b"bytes"),
                    retain_until=timezone.now() + dt.timedelta(days=30))
    code, out = audit()
    assert code == 1 and "FAIL store.objects_owned" in out
    assert "object originals/chambery/BWC-0042/left-by-a-crash.mp4 [chambery]" in out


def test_bytes_erased_without_an_erasure_entry_are_named(live, local_store):
    rec = live[0]
    # What the old sweep left when its transaction failed after deleting: bytes gone, no entry.
    Recording.objects.filter(pk=rec.pk).update(status=Recording.Status.ERASED, erased_at=timezone.now())
    for key, _ in recording_store_keys(rec):
        (local_store.objects / key).unlink()
        (local_store.meta / f"{key}.json").unlink()

    code, out = audit()
    assert code == 1 and "FAIL erasure.logged" in out and f"recording {rec.pk} [chambery]" in out
    assert "effacé sans entrée « effacement » au journal" in out


def test_bytes_missing_from_a_kept_recording_are_named(live, local_store):
    rec = live[0]
    (local_store.objects / rec.playback_key).unlink()

    code, out = audit()
    assert code == 1 and "FAIL store.objects_present" in out and rec.playback_key in out


def test_a_recording_kept_past_its_end_without_a_hold_is_named(make_volume, clip_library, camera, local_store):
    [rec] = dock(make_volume, {"a.mp4": clip_library["h264"]}, paris(2025, 3, 3, 20, 0))  # no sweep since
    code, out = audit()
    assert code == 1 and "FAIL retention.not_overdue" in out and f"recording {rec.pk}" in out
    assert "depuis 2025-04-03T22:00:00+00:00" in out  # since its retention end


def test_a_legal_hold_the_database_does_not_know_is_named(live, local_store):
    rec = live[1]
    local_store.set_legal_hold(rec.store_key, "", True)

    code, out = audit()
    assert code == 1 and "FAIL holds.store_agrees" in out and f"recording {rec.pk}" in out


def test_a_hold_the_store_does_not_apply_is_named(live, local_store, make_user):
    rec = live[0]
    hold_place(by=make_user("juriste", role="legal"), procedure="judicial", reference="PV 1", recording=rec)
    local_store.set_legal_hold(rec.playback_key, "", False)

    code, out = audit()
    assert code == 1 and "FAIL holds.store_agrees" in out and rec.playback_key in out


def test_a_traceability_row_older_than_three_years_is_named(live, make_user):
    consultation, _token = consultation_open(recording=live[0], by=make_user("chef", role="supervisor"),
                                                      motif="Contrôle hiérarchique")
    Consultation.objects.filter(pk=consultation.pk).update(created_at=timezone.now() - dt.timedelta(days=3 * 366))

    code, out = audit()
    assert code == 1 and "FAIL traceability.three_years" in out and f"consultation {consultation.pk}" in out


def test_a_consultation_without_its_log_entry_is_named(live, make_user):
    with transaction.atomic():  # written behind the services' back
        row = Consultation.objects.create(recording=live[0], user=make_user("chef", role="supervisor"),
                                          motif="—", created_at=timezone.now(),
                                          expires_at=timezone.now() + dt.timedelta(minutes=30), token_sha256="0" * 64)
    code, out = audit()
    assert code == 1 and "FAIL traceability.logged" in out and f"consultation {row.pk}" in out


def test_a_broken_custody_chain_is_named(live):
    from tests.audit.helpers import canonical_of, dumps, guards_off, raw

    # An attacker with the database's superuser rights rewrites an entry and its signed bytes.
    seq = CustodyEvent.objects.filter(action="recording.collected").values_list("seq", flat=True).first()
    with transaction.atomic(), guards_off():
        raw("UPDATE audit_custodyevent SET motif = %s, canonical = %s WHERE seq = %s",
            ["réécrit", dumps(canonical_of(seq) | {"motif": "réécrit"}), seq])

    code, out = audit()
    assert code == 1 and "FAIL custody.chain" in out and f"custody entry {seq}" in out


def test_an_audit_that_cannot_read_the_store_says_so_instead_of_all_good(live, local_store):
    local_store.objects.rename(local_store.root / "moved-away")
    code, out = audit()
    assert code == 2 and "could not look" in out and "missing" in out
    assert ComplianceAudit.objects.get().could_not_look


def test_json_output_names_rules_and_violations(live, local_store):
    local_store.set_legal_hold(live[0].store_key, "", True)
    code, out = audit("--json")
    data = json.loads(out[:out.rindex("}") + 1])
    assert code == 1 and data["ok"] is False and data["violation_count"] == 1
    assert data["violations"][0]["rule"] == "holds.store_agrees"
    assert data["violations"][0]["organisation"] == "chambery"
    assert {r["id"]: r["holds"] for r in data["rules"]}["custody.chain"] is True


def test_violations_raise_an_alert_for_their_commune_that_closes_once_put_right(live, local_store):
    from config.ops.health import check_compliance

    local_store.set_legal_hold(live[0].store_key, "", True)
    audit()
    alert = Alert.objects.get(kind=Alert.Kind.COMPLIANCE)
    assert alert.open and alert.organisation.slug == "chambery" and "holds.store_agrees" in alert.message
    assert check_compliance().status == "warn"

    local_store.set_legal_hold(live[0].store_key, "", False)
    assert audit()[0] == 0
    alert.refresh_from_db()
    assert not alert.open and check_compliance().status == "ok"


def test_the_signed_report_verifies_and_names_only_its_communes_findings(live, local_store, make_user, db):
    from accounts.services import organisation_create
    from audit.compliance.pdf import compliance_report_pdf
    from audit.compliance.services import compliance_report, compliance_report_verify

    with transaction.atomic():
        other = organisation_create(slug="annecy", name="Police municipale d'Annecy")
    local_store.set_legal_hold(live[0].store_key, "", True)
    audit()
    record = ComplianceAudit.objects.get()

    mine = compliance_report(audit=record, organisation=live[0].organisation)
    theirs = compliance_report(audit=record, organisation=other)

    assert compliance_report_verify(mine) and compliance_report_verify(theirs)
    assert json.loads(mine["payload"])["violations"][0]["rule"] == "holds.store_agrees"
    assert json.loads(theirs["payload"])["violations"] == [] and "chambery" not in theirs["payload"]
    forged = dict(mine, payload=mine["payload"].replace('"ok":false', '"ok":true'))
    assert not compliance_report_verify(forged)
    assert compliance_report_pdf(mine).startswith(b"%PDF")


@pytest.mark.parametrize("role,status", [("dpo", 200), ("mayor", 200), ("admin", 200), ("legal", 403),
                                         ("supervisor", 403), ("officer", 403)])
def test_the_compliance_page_is_for_the_dpo_and_the_mayor(live, make_user, role, status):
    from tests.auth import sign_in

    audit()
    user = make_user(f"u-{role}", role=role)
    client = Client()
    sign_in(client, user)
    assert client.get("/conformite/").status_code == status
    assert client.post("/conformite/controler/").status_code == (302 if status == 200 else 403)
    if status == 200 and role != "admin":
        pdf = client.get("/conformite/rapport.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert CustodyEvent.objects.filter(action="compliance.report_exported", actor=user).exists()
