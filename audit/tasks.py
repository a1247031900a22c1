from celery import shared_task


@shared_task(name="audit.verify_chain")
def verify_chain() -> None:
    """Placeholder until the custody verification lands (issue 3)."""


@shared_task(name="audit.checkpoint")
def checkpoint() -> None:
    """Placeholder until signed checkpoints land (issue 3)."""
