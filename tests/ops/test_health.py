"""GET /sante/ and /api/health/: database, broker, store, workers, custody log; details for operators only."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import Alert, Verification
from audit.services import custody_verify
from config.ops.health import check_store, check_workers, health_report

from .conftest import REDIS_URL, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "ops-token-for-tests-0123456789"


@pytest.fixture
def verified_log(org):
    custody_verify(triggered_by="test")


def test_anonymous_health_is_the_overall_status_only(client, local_store, verified_log):
    response = client.get("/api/health/")

    assert response.status_code == 200
    assert set(response.json()) == {"status", "checked_at"}
    assert response.json()["status"] == "ok"


def test_the_bearer_token_sees_every_component(client, settings, local_store, verified_log):
    settings.TEMOIN_METRICS_TOKEN = TOKEN
    from audit.compliance.services import compliance_audit_run

    assert compliance_audit_run(triggered_by="test").ok  # the daily audit has run

    body = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    wrong = client.get("/api/health/", HTTP_AUTHORIZATION="Bearer not-the-token").json()

    assert set(body["components"]) == {"database", "broker", "store", "workers", "custody", "compliance"}
    assert all(c["status"] == "ok" for c in body["components"].values()), body
    assert body["components"]["custody"]["details"]["last_ok"] is True
    assert "components" not in wrong


def test_an_administrator_sees_the_details_and_an_officer_does_not(client, settings, make_user, local_store,
                                                                    verified_log):
    settings.TEMOIN_REQUIRE_TOTP = False
    client.force_login(make_user("admin.tech", role="admin"))
    assert "components" in client.get("/api/health/").json()
    page = client.get("/sante/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and "stockage inaltérable" in page.content.decode()

    client.force_login(make_user("agent.durand", matricule="M043"))
    assert "components" not in client.get("/api/health/").json()
    assert "stockage inaltérable" not in client.get("/sante/", HTTP_ACCEPT="text/html").content.decode()


def test_an_unwritable_store_is_named_with_a_503(client, settings, tmp_path, verified_log):
    from evidence.integrations import store as store_module

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store's directory should be")
    settings.STORE_LOCAL_ROOT = blocker / "store"
    settings.TEMOIN_METRICS_TOKEN = TOKEN
    store_module.reset_store()
    try:
        response = client.get("/sante/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        anonymous = client.get("/sante/")
    finally:
        store_module.reset_store()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["failing"] == ["store"]
    assert body["components"]["store"]["status"] == "fail"
    assert body["components"]["database"]["status"] == "ok"
    assert anonymous.status_code == 503 and set(anonymous.json()) == {"status", "checked_at"}


def test_an_unreachable_broker_fails_without_showing_its_password(client, settings, use_broker, local_store,
                                                                 verified_log):
    use_broker("redis://:hunter2-broker-password@127.0.0.1:1/0")
    settings.TEMOIN_METRICS_TOKEN = TOKEN

    response = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert response.status_code == 503
    assert "broker" in response.json()["failing"]
    assert "hunter2" not in response.content.decode()
    assert response.json()["components"]["broker"]["details"]["url"] == "redis://127.0.0.1:1/0"


def test_a_failed_custody_verification_or_an_open_alert_fails_the_custody_component(org, local_store):
    now = timezone.now()
    assert health_report(now=now).ok  # a fresh verification is below

    custody_verify(triggered_by="test")
    with transaction.atomic():
        Verification.objects.create(started_at=now + dt.timedelta(seconds=1), ok=False, problem_kind="altered",
                                    problem_seq=7)
    report = health_report(now=now)
    custody = next(c for c in report.components if c.name == "custody")
    assert not report.ok and report.failing == ["custody"]
    assert "altered" in custody.message and "7" in custody.message

    custody_verify(triggered_by="test")
    Alert.objects.create(kind=Alert.Kind.CHECKPOINT_FAILED, message="x", created_at=now, last_seen_at=now)
    assert health_report(now=now).failing == ["custody"]


def test_a_verification_older_than_two_hours_is_a_warning(org, local_store):
    custody_verify(triggered_by="test")
    later = timezone.now() + dt.timedelta(hours=3)

    custody = next(c for c in health_report(now=later).components if c.name == "custody")

    assert custody.status == "warn" and "beat" in custody.message


def test_workers_fail_when_none_answers_on_the_filesystem_broker(filesystem_broker):
    result = check_workers(timeout=0.5)

    assert result.status == "fail"
    assert "no Celery worker answered" in result.message


@pytest.mark.services
def test_a_real_worker_answers_and_an_unserved_dock_queue_is_a_warning(redis_broker, celery_worker_process, org,
                                                                       child_env):
    from devices.models import Dock

    celery_worker_process("media", {**child_env, "CELERY_BROKER_URL": REDIS_URL})
    result = wait_until(lambda: (r := check_workers(timeout=1.0)).status != "fail" and r, 60, "the worker's reply")
    assert result.status == "ok" and result.details["queues"] == ["media"]

    Dock.objects.create(name="poste-nord")
    result = check_workers(timeout=1.0)
    assert result.status == "warn" and "dock.poste-nord" in result.message


def test_s3_store_is_up_only_with_object_lock(s3_store, settings):
    from evidence.integrations import store as store_module

    ok = check_store()
    assert ok.status == "ok" and ok.details["object_lock"] == "Enabled"

    plain = f"{s3_store.bucket}-nolock"
    s3_store.client.create_bucket(Bucket=plain)
    settings.S3_BUCKET = plain
    store_module.reset_store()
    try:
        unlocked = check_store()
    finally:
        store_module.reset_store()
    assert unlocked.status == "fail" and "Object Lock" in unlocked.message
    assert "testing" not in str(unlocked.details)  # the access key is not shown


def test_a_worker_on_the_embedded_filesystem_broker_answers(use_broker, celery_worker_process, child_env, tmp_path):
    """The embedded default (make run): broadcasts go through the broker's control directory."""
    data = tmp_path / "data"
    options = {"data_folder_in": str(data / "broker"), "data_folder_out": str(data / "broker"),
               "processed_folder": str(data / "broker-processed"), "control_folder": str(data / "broker-control"),
               "store_processed": False}
    (data / "broker").mkdir(parents=True)
    use_broker("filesystem://localhost/", options)
    env = {**child_env, "TEMOIN_DATA_DIR": str(data)}
    env.pop("CELERY_BROKER_URL", None)

    celery_worker_process("media,dock.demo", env, name="embedded")
    result = wait_until(lambda: (r := check_workers()).status != "fail" and r, 60, "the worker's reply")

    assert result.status == "ok" and result.details["queues"] == ["dock.demo", "media"]
    assert result.details["timeout"] == 3.0


@pytest.fixture(autouse=True)
def _fresh_health_memo():
    from config.ops.views import memo_clear

    memo_clear()
    yield
    memo_clear()


def test_a_health_request_reads_the_workers_state_the_beat_recorded_and_never_broadcasts(
        client, settings, filesystem_broker, local_store, verified_log):
    """Finding 2: each anonymous request ran a broadcast (≈ 4 s); now the beat's task records it."""
    from audit.models import HealthSnapshot
    from audit.tasks import health_refresh

    settings.TEMOIN_METRICS_TOKEN = TOKEN
    # No record yet: the workers component fails and says why, at once (no worker runs here).
    body = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert body["components"]["workers"]["status"] == "fail"
    assert "no worker check recorded yet" in body["components"]["workers"]["message"]

    # The task (as a worker runs it) records the broadcast's answer: nobody answered.
    assert health_refresh.run() == "fail"
    recorded = HealthSnapshot.objects.get(name="workers")
    assert "no Celery worker answered" in recorded.message

    # A record the request shows as it is: a fresh "ok" says ok although no worker runs now,
    # which proves that the request did not broadcast.
    HealthSnapshot.objects.filter(name="workers").update(status="ok", message="1 worker(s) answered",
                                                         details={"queues": ["media"]}, checked_at=timezone.now())
    body = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert body["components"]["workers"]["status"] == "ok"
    assert body["components"]["workers"]["details"]["queues"] == ["media"]

    # A record older than the staleness limit fails: beat or the workers stopped.
    HealthSnapshot.objects.filter(name="workers").update(checked_at=timezone.now() - dt.timedelta(minutes=5))
    body = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").json()
    assert body["components"]["workers"]["status"] == "fail" and "ago" in body["components"]["workers"]["message"]


def test_anonymous_requests_within_the_cache_period_share_one_computation(client, settings, tmp_path, local_store,
                                                                          verified_log):
    from evidence.integrations import store as store_module

    settings.TEMOIN_HEALTH_CACHE_SECONDS = 3600
    assert client.get("/api/health/").status_code == 200
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.STORE_LOCAL_ROOT = blocker / "store"
    store_module.reset_store()
    try:
        cached = client.get("/api/health/")  # the result computed above, no store probe
        settings.TEMOIN_METRICS_TOKEN = TOKEN
        operator = client.get("/api/health/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")  # always afresh
        after = client.get("/api/health/")
    finally:
        store_module.reset_store()
    assert cached.status_code == 200
    assert operator.status_code == 503 and operator.json()["failing"] == ["store"]
    assert after.status_code == 503  # the operator's computation refreshed what anonymous requests read


def test_an_organisation_administrator_sees_states_without_the_deployment_details(client, settings, make_user,
                                                                                  local_store, verified_log):
    """Finding 6: another commune's docks, alerts and the log's global sequence are not theirs to see."""
    settings.TEMOIN_REQUIRE_TOTP = False
    client.force_login(make_user("admin.tech", role="admin"))

    body = client.get("/api/health/").json()

    assert set(body["components"]["custody"]) == {"status"}
    assert all(set(c) == {"status"} for c in body["components"].values())
    page = client.get("/sante/", HTTP_ACCEPT="text/html").content.decode()
    assert "réservé à l&#x27;exploitant" in page or "réservé à l'exploitant" in page
    assert "intact up to entry" not in page


def test_a_superuser_is_the_operator_and_sees_every_detail(client, settings, make_user, local_store, verified_log):
    settings.TEMOIN_REQUIRE_TOTP = False
    operator = make_user("exploitant", role="admin")
    operator.is_superuser = True
    operator.save(update_fields=["is_superuser"])
    client.force_login(operator)

    body = client.get("/api/health/").json()

    assert "last_seq" in body["components"]["custody"]["details"]
