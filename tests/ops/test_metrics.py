"""GET /metrics: Prometheus text read from the database and the broker at scrape time."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from audit.models import Alert
from audit.services import custody_verify
from config.ops.metrics import metrics_registry
from devices.models import Dock
from evidence.models import Recording

from ..evidence.helpers import run_offload

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-token-for-tests-0123456789"


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def scrape(client, **headers) -> dict[tuple, float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_metrics_need_the_token_or_an_administrator(client, settings, make_user, org):
    settings.TEMOIN_METRICS_TOKEN = TOKEN
    settings.TEMOIN_REQUIRE_TOTP = False

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    client.force_login(make_user("chef.bernard", role="supervisor"))
    assert client.get("/metrics").status_code == 401
    client.force_login(make_user("admin.tech", role="admin"))
    assert client.get("/metrics").status_code == 200


def test_no_token_configured_means_no_anonymous_access(client, settings, org):
    settings.TEMOIN_METRICS_TOKEN = ""

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_an_offload_shows_in_throughput_statuses_and_custody(client, settings, local_store, camera, make_volume,
                                                            clip_library):
    settings.TEMOIN_METRICS_TOKEN = TOKEN
    volume = make_volume("BWC-0042", {"DCIM/a.mp4": clip_library["h264"], "DCIM/b.avi": clip_library["mjpeg"],
                                      "DCIM/c.mp4": clip_library["truncated"]})
    sizes = sum((volume / rel).stat().st_size for rel in ("DCIM/a.mp4", "DCIM/b.avi", "DCIM/c.mp4"))
    assert run_offload(volume)[0] == 0
    report, _ = custody_verify(triggered_by="test")

    m = scrape(client)

    assert m[("temoin_offload_clips_total", ())] == 3
    assert m[("temoin_offload_bytes_total", ())] == sizes
    assert m[("temoin_offload_clips_last_hour", ())] == 3
    assert m[("temoin_offload_bytes_last_hour", ())] == sizes
    ready = Recording.objects.filter(status="ready").count()
    assert m[("temoin_recordings", (("status", "ready"),))] == ready
    assert m[("temoin_recordings", (("status", "unplayable"),))] == 3 - ready >= 1
    assert m[("temoin_failures_total", (("kind", "recording_unplayable"),))] == 3 - ready
    assert m[("temoin_offload_items", (("status", "verified"),))] == 3
    assert m[("temoin_offload_sessions", (("status", "complete"),))] == 1
    assert m[("temoin_custody_verify_ok", ())] == 1
    assert m[("temoin_custody_last_verified_seq", ())] == report.last_seq
    assert m[("temoin_custody_head_seq", ())] >= report.last_seq
    assert m[("temoin_alerts_open", (("kind", "chain_broken"),))] == 0


def test_throughput_of_the_last_hour_counts_only_the_last_hour(local_store, camera, make_volume, clip_library):
    assert run_offload(make_volume("BWC-0042", {"a.mp4": clip_library["h264"]}))[0] == 0
    later = timezone.now() + dt.timedelta(hours=2)

    m = samples(_text(now=later))

    assert m[("temoin_offload_clips_total", ())] == 1
    assert m[("temoin_offload_clips_last_hour", ())] == 0


def test_a_broken_chain_and_an_open_alert_show(org):
    from audit.models import Verification

    now = timezone.now()
    Verification.objects.create(started_at=now, ok=False, last_seq=41, problem_kind="altered", problem_seq=12)
    Alert.objects.create(kind=Alert.Kind.CHAIN_BROKEN, seq=12, message="x", created_at=now, last_seen_at=now)

    m = samples(_text(now=now))

    assert m[("temoin_custody_verify_ok", ())] == 0
    assert m[("temoin_custody_last_verified_seq", ())] == 41
    assert m[("temoin_alerts_open", (("kind", "chain_broken"),))] == 1


def test_never_verified_is_minus_one(org):
    assert samples(_text())[("temoin_custody_verify_ok", ())] == -1


def test_oldest_undocked_camera_age(camera, org):
    from devices.services import camera_register

    docked = timezone.now() - dt.timedelta(days=3)
    camera.last_docked_at = docked
    camera.save(update_fields=["last_docked_at"])
    now = docked + dt.timedelta(days=3, hours=1)

    m = samples(_text(now=now))
    assert m[("temoin_camera_oldest_undocked_age_seconds", ())] == pytest.approx(3 * 86400 + 3600)

    # A camera registered but never docked counts from its registration.
    from django.db import transaction

    with transaction.atomic():
        camera_register(serial="BWC-0099", organisation=org)
    m = samples(_text(now=now + dt.timedelta(days=10)))
    assert m[("temoin_camera_oldest_undocked_age_seconds", ())] == pytest.approx(
        (now + dt.timedelta(days=10) - docked).total_seconds())


def test_queue_depth_on_the_filesystem_broker(filesystem_broker, org):
    from config.celery import app

    Dock.objects.create(name="poste-nord")
    app.send_task("evidence.process_recording", args=[1], queue="media")
    app.send_task("evidence.pull_clip", args=[1], queue="dock.poste-nord")
    app.send_task("evidence.pull_clip", args=[2], queue="dock.poste-nord")

    m = samples(_text())

    assert m[("temoin_queue_depth", (("queue", "media"),))] == 1
    assert m[("temoin_queue_depth", (("queue", "dock.poste-nord"),))] == 2
    assert m[("temoin_broker_up", ())] == 1


@pytest.mark.services
def test_queue_depth_on_redis_is_the_list_length(redis_broker, org):
    from config.celery import app

    Dock.objects.create(name="poste-sud")
    for i in range(3):
        app.send_task("evidence.pull_clip", args=[i], queue="dock.poste-sud")

    m = samples(_text())

    assert m[("temoin_queue_depth", (("queue", "dock.poste-sud"),))] == redis_broker.llen("dock.poste-sud") == 3
    assert m[("temoin_queue_depth", (("queue", "media"),))] == 0


def test_an_unreachable_broker_is_reported_not_fatal(use_broker, org):
    use_broker("redis://127.0.0.1:1/0")

    m = samples(_text())

    assert m[("temoin_broker_up", ())] == 0
    assert ("temoin_recordings", (("status", "ready"),)) in m


def _text(now=None) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics_registry(now=now)).decode()


def test_an_organisation_administrator_scrapes_their_own_organisation_only(client, settings, make_user, org,
                                                                          camera):
    """Finding 6: totals of the deployment and the log's global sequence are the operator's, not a commune's."""
    from django.db import transaction

    from accounts.services import organisation_create
    from devices.services import camera_register

    settings.TEMOIN_METRICS_TOKEN = TOKEN
    settings.TEMOIN_REQUIRE_TOTP = False
    with transaction.atomic():
        other = organisation_create(slug="annecy", name="Police municipale d'Annecy")
        for n in range(3):
            camera_register(serial=f"ANNECY-{n}", organisation=other)

    operator = scrape(client)
    client.force_login(make_user("admin.tech", role="admin"))
    response = client.get("/metrics")
    assert response.status_code == 200
    own = samples(response.content.decode())

    assert operator[("temoin_cameras_active", ())] == 4
    assert own[("temoin_cameras_active", ())] == 1
    assert ("temoin_custody_head_seq", ()) in operator and ("temoin_custody_head_seq", ()) not in own
    assert not [k for k in own if k[0] == "temoin_queue_depth"]
