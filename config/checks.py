"""System checks: a misconfigured deployment fails loudly instead of silently losing work."""
from django.conf import settings
from django.core.checks import Error, Warning, register

from evidence.retention import retention_period
from evidence.retention.dates import fixed_duration


@register()
def temoin_settings_check(app_configs, **kwargs):
    problems = []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if visibility <= settings.CELERY_TASK_TIME_LIMIT:
        problems.append(Error(
            f"broker visibility timeout ({visibility} s) must exceed the task time limit "
            f"({settings.CELERY_TASK_TIME_LIMIT} s), or a long task would be handed to a second worker",
            hint="raise TEMOIN_BROKER_VISIBILITY_TIMEOUT or lower TEMOIN_TASK_TIME_LIMIT",
            id="temoin.E001",
        ))
    for name in ("TEMOIN_DEFAULT_RETENTION", "TEMOIN_TRAINING_RETENTION"):
        try:
            retention_period(getattr(settings, name))
        except ValueError as exc:
            problems.append(Error(f"{name}: {exc}", id="temoin.E002"))
    # CSI R241-14: the log and the traces behind the register are kept three years.
    years = settings.CUSTODY_RETENTION_YEARS
    if not 1 <= years <= 10:
        problems.append(Error(f"TEMOIN_CUSTODY_RETENTION_YEARS={years}: between 1 and 10 years", id="temoin.E005"))
    elif years != 3 and not settings.CUSTODY_RETENTION_BASIS.strip():
        problems.append(Error(
            f"TEMOIN_CUSTODY_RETENTION_YEARS={years}: French law keeps the custody log three years (CSI R241-14)",
            hint="keep 3, or state the legal basis of another period in TEMOIN_CUSTODY_RETENTION_BASIS "
                 "(organisations under another legal framework only)",
            id="temoin.E006"))
    for name in ("TEMOIN_LATE_DOCKING_GRACE", "TEMOIN_COMPLIANCE_GRACE"):
        try:
            fixed_duration(getattr(settings, name))
        except ValueError as exc:
            problems.append(Error(f"{name}: {exc}", id="temoin.E007"))
    if settings.STORE_BACKEND not in ("local", "s3"):
        problems.append(Error(f"TEMOIN_STORE must be 'local' or 's3', not {settings.STORE_BACKEND!r}", id="temoin.E003"))
    if settings.STORE_BACKEND == "s3" and not settings.S3_ENDPOINT_URL:
        problems.append(Error("TEMOIN_STORE=s3 needs S3_ENDPOINT_URL", id="temoin.E004"))
    if not settings.DEBUG and settings.SECRET_KEY.startswith("embedded-default"):
        problems.append(Warning("DJANGO_SECRET_KEY is the embedded default; set a secret key in production",
                                id="temoin.W001"))
    return problems
