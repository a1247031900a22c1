import os

from celery import Celery

from .broker import register as register_embedded_broker

register_embedded_broker()  # filesystem:// URLs: messages renamed into place whole (config/broker.py)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("temoin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The evidence lifecycle keeps its tasks by stage (evidence/<stage>/tasks.py); their registered names
# are unchanged ("evidence.pull_clip"…), so queued messages and the beat schedule still resolve.
app.autodiscover_tasks(["evidence.ingest", "evidence.media", "evidence.retention", "evidence.requisitions"])


@app.on_after_finalize.connect
def _health_at_start(sender, **kwargs):
    """Beat records the workers' health as soon as it starts, not 30 s later (a fresh deployment's
    /sante/ would otherwise say "no worker check recorded yet" in between; config/ops/health.py)."""
    from celery.signals import beat_init

    def queue_first_check(sender=None, **_kwargs):
        app.send_task("audit.health_refresh")

    beat_init.connect(queue_first_check, weak=False)
