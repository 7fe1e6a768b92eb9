"""System checks with stable ids: misconfiguration shows up at `manage.py check`, not at run time."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from scheduler_app.conf import scheduler_settings
from scheduler_app.schedules import InvalidSchedule, get_zone


@register(Tags.compatibility)
def check_settings(app_configs, **kwargs) -> list:
    problems = []
    if not settings.USE_TZ:
        problems.append(
            Error(
                "USE_TZ is False; the scheduler stores and compares aware UTC datetimes.",
                hint="Set USE_TZ = True.",
                id="scheduler_app.E001",
            )
        )
    try:
        get_zone(scheduler_settings.TIMEZONE)
    except InvalidSchedule as error:
        problems.append(Error(str(error), hint="Set SCHEDULER_TIMEZONE to an IANA name.", id="scheduler_app.E002"))
    for name in ("THREAD_POOL_SIZE", "SHUTDOWN_GRACE", "MAX_CONFIG_BYTES"):
        try:
            value = getattr(scheduler_settings, name)
        except (TypeError, ValueError):
            value = None
        if value is None or value <= 0:
            problems.append(
                Warning(
                    f"SCHEDULER_{name} must be a positive number.",
                    hint="Remove it to use the default.",
                    id="scheduler_app.W001",
                )
            )
    problems.extend(_check_execution_backend())
    return problems


def _check_execution_backend() -> list:
    backend = scheduler_settings.EXECUTION_BACKEND
    if backend == "thread":
        return []
    if backend != "celery":
        return [
            Error(
                f"SCHEDULER_EXECUTION_BACKEND is {backend!r}; it must be 'thread' or 'celery'.",
                hint="Remove it to run executions in the scheduler process.",
                id="scheduler_app.E004",
            )
        ]
    from scheduler_app.scheduling.backends import load_celery_app

    try:
        load_celery_app()
    except ImportError as error:
        return [
            Error(
                f"SCHEDULER_EXECUTION_BACKEND is 'celery' but the Celery app cannot be loaded: {error}",
                hint='Install the extra (pip install ".[celery]") and check SCHEDULER_CELERY_APP.',
                id="scheduler_app.E003",
            )
        ]
    return []
