"""Analysis and render run by a real Celery worker over Redis (the other tests run them eagerly)."""
import pytest

from evidence.redaction import services
from evidence.redaction.models import RedactionJob, Track
from tests.workers import start_worker, stop_process, wait_for

from .helpers import object_sha256, offload_clip

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_analyses_then_renders_a_redacted_copy(make_volume, carphone_clip, camera, local_store,
                                                             make_user, redis_url, child_env, settings, tmp_path,
                                                             monkeypatch):
    from config.celery import app
    from evidence.redaction import tasks

    recording = offload_clip(make_volume, carphone_clip)  # offload and media step eagerly, as set up
    chef = make_user("chef.durand", role="supervisor")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False  # set back by the autouse fixture of the next test

    def enqueue(step: str, job_id: int) -> None:  # the service's own queueing, onto this test's Redis
        task = {"analyse": tasks.analyse_recording, "render": tasks.render_derivative}[step]
        with app.connection_for_write(redis_url) as connection:
            task.apply_async(args=[job_id], queue="media", connection=connection)

    monkeypatch.setattr(services, "_enqueue", enqueue)
    log = tmp_path / "worker.log"
    worker = start_worker("media", {**child_env, "CELERY_BROKER_URL": redis_url}, log, "redaction")
    try:
        job = services.redaction_job_create(recording=recording, by=chef, mode="all", motif="Formation")
        wait_for(lambda: RedactionJob.objects.get(pk=job.pk).status in ("review", "failed"), 180, "the analysis",
                 [log])
        job.refresh_from_db()
        assert job.status == RedactionJob.Status.REVIEW, job.status_message
        assert job.tracks.filter(kind=Track.Kind.FACE).exists()

        services.redaction_render_request(job=job, by=chef)
        wait_for(lambda: RedactionJob.objects.get(pk=job.pk).status in ("rendered", "failed"), 180, "the render",
                 [log])
    finally:
        stop_process(worker)
    job.refresh_from_db()
    assert job.status == RedactionJob.Status.RENDERED, job.status_message + log.read_text(errors="replace")[-2000:]
    derivative = job.derivatives.get()
    assert object_sha256(local_store, derivative.store_key) == derivative.sha256
    assert object_sha256(local_store, recording.store_key) == recording.sha256
    text = log.read_text()
    assert "Task redaction.analyse[" in text and "Task redaction.render[" in text
