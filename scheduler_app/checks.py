"""System checks with stable ids: misconfiguration shows up at `manage.py check`, not at run time."""

from __future__ import annotations

from importlib.util import find_spec

from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from scheduler_app.conf import scheduler_settings
from scheduler_app.schedules import InvalidSchedule, get_zone

# Notifications, metrics and retention (scheduler_app/conf.py, "operations").
POSITIVE_OPERATIONS_SETTINGS = (
    "NOTIFY_POLL_SECONDS",
    "NOTIFY_TIMEOUT_SECONDS",
    "NOTIFY_MAX_ATTEMPTS",
    "NOTIFY_WORKERS",
    "NOTIFY_STUCK_FACTOR",
    "RETENTION_BATCH_SIZE",
    "RETENTION_INTERVAL_SECONDS",
)
NON_NEGATIVE_OPERATIONS_SETTINGS = (
    "NOTIFY_RATE_LIMIT_SECONDS",
    "NOTIFY_STUCK_MIN_SECONDS",
    "NOTIFY_STALL_SECONDS",
    "NOTIFY_HANDOVER_SECONDS",
    "NOTIFY_SCHEDULER_DOWN_SECONDS",
    "NOTIFY_RETRY_SECONDS",
    "NOTIFY_RETENTION_DAYS",
    "RETENTION_DAYS",
    "RETENTION_PER_TASK",
)


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
    positive = ("THREAD_POOL_SIZE", "SHUTDOWN_GRACE", "MAX_CONFIG_BYTES", *POSITIVE_OPERATIONS_SETTINGS)
    for name in positive:
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
    for name in NON_NEGATIVE_OPERATIONS_SETTINGS:
        try:
            value = getattr(scheduler_settings, name)
        except (TypeError, ValueError):
            value = None
        if value is None or value < 0:
            problems.append(
                Warning(
                    f"SCHEDULER_{name} must be a number, 0 or more.",
                    hint="Remove it to use the default; 0 turns the rule off.",
                    id="scheduler_app.W003",
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
                hint='Install Celery (pip install "zquant-scheduler[celery]") and set SCHEDULER_CELERY_APP to the '
                'project\'s Celery app, e.g. "proj.celery:app".',
                id="scheduler_app.E003",
            )
        ]
    return []


@register(Tags.security)
def check_command_sandbox(app_configs, **kwargs) -> list:
    """Who command tasks run as, and whether their secrets and the database are out of their reach."""
    from scheduler_app.executors.sandbox import ROOT_REFUSED, SandboxError, command_identity, sqlite_files_open_to

    problems = []
    try:
        scheduler_settings.SECRETS  # noqa: B018 - read for its validation
    except ValueError as error:
        problems.append(Error(str(error), hint="See docs/task-types.md, Secrets.", id="scheduler_app.E007"))
    try:
        enabled = scheduler_settings.COMMANDS_ENABLED
        identity = command_identity()
    except ValueError as error:
        return [*problems, Error(str(error), hint="Use true or false.", id="scheduler_app.E007")]
    except SandboxError as error:
        # Running as root matters only where command tasks may run; a wrong user is wrong anyway.
        if enabled or error.check_id != ROOT_REFUSED:
            problems.append(Error(error.message, id=error.check_id))
        return problems
    if enabled and identity is not None and (exposed := sqlite_files_open_to(identity)):
        problems.append(
            Warning(
                f"The database files {', '.join(exposed)} can be read or written by {identity.name}, the user "
                "command tasks run as (they hold every task, user and API token).",
                hint="chmod 600 them (the scheduler's user must own them).",
                id="scheduler_app.W002",
            )
        )
    return problems


# module: (distribution, what needs it). They are dependencies of the package, so they are missing only
# after an install without them (pip --no-deps, a hand-made environment).
REQUIRED_PACKAGES = {
    "rest_framework": ("djangorestframework", "the scheduler API"),
    "django_filters": ("django-filter", "the scheduler API's filters"),
    "drf_spectacular": ("drf-spectacular", "the scheduler API's OpenAPI documentation"),
    "django_apscheduler": ("django-apscheduler", "runscheduler, which keeps its jobs in its tables"),
    "apscheduler": ("APScheduler", "runscheduler"),
    "cron_descriptor": ("cron-descriptor", "schedule descriptions"),
    "simple_history": ("django-simple-history", "the history of tasks, calendars, windows and subscriptions"),
}
# app: what breaks without it in INSTALLED_APPS.
REQUIRED_APPS = {
    "django_apscheduler": "runscheduler keeps its jobs in django-apscheduler's tables",
    "rest_framework": "the scheduler API's browsable pages need its templates",
    "django_filters": "the scheduler API's filter forms need its templates",
    "simple_history": "the history of tasks, calendars, windows and subscriptions is kept in its tables",
}
TOKEN_AUTHENTICATION = "rest_framework.authentication.TokenAuthentication"
SESSION_AUTHENTICATION = "rest_framework.authentication.SessionAuthentication"


@register(Tags.compatibility)
def check_installation(app_configs, **kwargs) -> list:
    """What the project must install and list in INSTALLED_APPS for the scheduler to work in it."""
    problems = []
    missing = {module for module in REQUIRED_PACKAGES if find_spec(module) is None}
    for module in sorted(missing):
        distribution, needed_by = REQUIRED_PACKAGES[module]
        problems.append(
            Error(
                f"The package {distribution} is not installed; {needed_by} needs it.",
                hint=f"pip install zquant-scheduler (which brings it), or pip install {distribution}.",
                id="scheduler_app.E020",
            )
        )
    for app, reason in REQUIRED_APPS.items():
        if app not in missing and not apps.is_installed(app):
            problems.append(
                Error(
                    f"{app!r} is not in INSTALLED_APPS: {reason}.",
                    hint=f'Add "{app}" to INSTALLED_APPS (the README, "Use it in your project").',
                    id="scheduler_app.E021",
                )
            )
    if "rest_framework" not in missing:
        problems.extend(_check_api_authentication())
    return problems


def _check_api_authentication() -> list:
    from rest_framework.settings import api_settings

    try:
        classes = list(api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    except ImportError as error:
        return [
            Error(
                f"REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES cannot be loaded: {error}",
                id="scheduler_app.E023",
            )
        ]
    paths = {f"{cls.__module__}.{cls.__qualname__}" for cls in classes}
    bases = {f"{base.__module__}.{base.__qualname__}" for cls in classes for base in cls.__mro__}
    problems = []
    if TOKEN_AUTHENTICATION in bases and not apps.is_installed("rest_framework.authtoken"):
        problems.append(
            Error(
                "Token authentication is on (REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES) but "
                "'rest_framework.authtoken' is not in INSTALLED_APPS: every request with a token would fail.",
                hint='Add "rest_framework.authtoken" to INSTALLED_APPS and migrate, or drop TokenAuthentication.',
                id="scheduler_app.E022",
            )
        )
    if SESSION_AUTHENTICATION not in bases:
        problems.append(
            Warning(
                "SessionAuthentication is not among REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES "
                f"({', '.join(sorted(paths)) or 'none'}): the admin's task form calls the scheduler API with "
                "the admin's session for its schedule preview and workflow checks, which would be refused.",
                hint=f'Add "{SESSION_AUTHENTICATION}" to DEFAULT_AUTHENTICATION_CLASSES.',
                id="scheduler_app.W020",
            )
        )
    return problems
