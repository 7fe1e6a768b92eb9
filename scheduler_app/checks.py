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
    return problems
