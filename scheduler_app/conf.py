"""The scheduler's settings: one documented property per SCHEDULER_* setting, read at access time.

Values may come from Django settings as their own type, or as text from the environment (the
settings module copies every SCHEDULER_* environment variable); each property converts the value,
so `override_settings` and the pytest `settings` fixture work everywhere.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from django.conf import settings

_MISSING = object()
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
SECRET_PREFIX = "SCHEDULER_SECRET_"
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _raw(name: str, default: Any) -> Any:
    value = getattr(settings, f"SCHEDULER_{name}", _MISSING)
    return default if value is _MISSING or value is None or value == "" else value


def _int(name: str, default: int) -> int:
    return int(_raw(name, default))


def _float(name: str, default: float) -> float:
    return float(_raw(name, default))


def _bool(name: str, default: bool) -> bool:
    value = _raw(name, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"SCHEDULER_{name} must be true or false, not {value!r}")


def _text_or_none(name: str) -> str | None:
    value = _raw(name, None)
    return None if value is None else str(value).strip() or None


def _list(name: str, default: list[str] | None) -> list[str] | None:
    value = _raw(name, default)
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return None if value is None else list(value)


class SchedulerSettings:
    """Every setting the scheduler reads; the README's configuration table mirrors this class."""

    @property
    def TIMEZONE(self) -> str:
        """Default timezone of a task's cron fields (a task may set its own)."""
        return str(_raw("TIMEZONE", "Asia/Shanghai"))

    @property
    def THREAD_POOL_SIZE(self) -> int:
        """The most executions the scheduler process runs at once (threads start as runs need them)."""
        return _int("THREAD_POOL_SIZE", 512)

    @property
    def ACTION_CONCURRENCY(self) -> int:
        """The most in-process actions running at once in one process (they share the interpreter and
        usually a database connection each); commands and workflows are not counted."""
        return _int("ACTION_CONCURRENCY", 32)

    @property
    def SHUTDOWN_GRACE(self) -> float:
        """Seconds a stopping scheduler waits for running work before terminating it."""
        return _float("SHUTDOWN_GRACE", 30.0)

    @property
    def MAX_CONFIG_BYTES(self) -> int:
        """Largest task config accepted, in bytes of JSON."""
        return _int("MAX_CONFIG_BYTES", 65536)

    @property
    def COMMANDS_ENABLED(self) -> bool:
        """Whether command tasks may be saved and run at all. Off by default: a command task runs any
        program the scheduler's host has, so a site turns them on knowingly (and restricts them with
        COMMAND_ALLOWLIST, and runs them as COMMAND_USER)."""
        return _bool("COMMANDS_ENABLED", False)

    @property
    def COMMAND_ALLOWLIST(self) -> list[str] | None:
        """Executables a command task may run (names or absolute paths); unset means any."""
        return _list("COMMAND_ALLOWLIST", None)

    @property
    def COMMAND_WORK_DIR(self) -> str:
        """The working directory of command tasks, and what a relative `work_dir` is taken from: the
        project's BASE_DIR where it defines one (startproject does), else the scheduler's own."""
        return str(_raw("COMMAND_WORK_DIR", getattr(settings, "BASE_DIR", None) or os.getcwd()))

    @property
    def COMMAND_USER(self) -> str | None:
        """The user (name or uid) command tasks run as; unset: the scheduler's own user."""
        return _text_or_none("COMMAND_USER")

    @property
    def COMMAND_GROUP(self) -> str | None:
        """The primary group (name or gid) of command tasks; unset: COMMAND_USER's own group."""
        return _text_or_none("COMMAND_GROUP")

    @property
    def ALLOW_ROOT_COMMANDS(self) -> bool:
        """Accept command tasks running as root (no COMMAND_USER while the scheduler is root): for a
        demo or a throw-away machine only, since a root command can read every secret there."""
        return _bool("ALLOW_ROOT_COMMANDS", False)

    @property
    def SECRETS(self) -> dict[str, str]:
        """Values command tasks may receive by name (`env_from`), never stored in a task: the dict
        SCHEDULER_SECRETS (a JSON object when it comes from the environment) and one setting per
        secret, SCHEDULER_SECRET_<NAME>. Names are case-insensitive (kept lower-case)."""
        raw = _raw("SECRETS", {})
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise ValueError("SCHEDULER_SECRETS must be a JSON object of name: text pairs") from None
        if not isinstance(raw, dict):
            raise ValueError("SCHEDULER_SECRETS must be an object (dict) of name: text pairs")
        pairs = list(raw.items())
        pairs += [
            (key[len(SECRET_PREFIX) :], getattr(settings, key))
            for key in dir(settings)
            if key.startswith(SECRET_PREFIX)
        ]
        secrets: dict[str, str] = {}
        for name, value in pairs:
            if not isinstance(name, str) or not SECRET_NAME.match(name):
                raise ValueError(f"the secret name {name!r} is not a valid name (letters, digits and _)")
            if not isinstance(value, str) or not value:
                raise ValueError(f"the secret {name!r} must be a non-empty text")
            secrets[name.lower()] = value
        return secrets

    @property
    def HEARTBEAT_SECONDS(self) -> float:
        """How often a process writes the heartbeat of the executions it runs."""
        return _float("HEARTBEAT_SECONDS", 5.0)

    @property
    def CONN_MAX_AGE(self) -> int:
        """Seconds the scheduler process reuses a database connection (health-checked)."""
        return _int("CONN_MAX_AGE", 60)

    @property
    def POLL_SECONDS(self) -> float:
        """How often the scheduler process looks for schedule changes and queued runs."""
        return _float("POLL_SECONDS", 0.2)

    @property
    def RESYNC_SECONDS(self) -> float:
        """Full reconciliation of jobs with tasks, as a safety net beside the version check."""
        return _float("RESYNC_SECONDS", 60.0)

    @property
    def LEASE_SECONDS(self) -> float:
        """How long the leader's lease lasts; a standby takes over when it is not renewed in time."""
        return _float("LEASE_SECONDS", 15.0)

    @property
    def ORPHAN_SECONDS(self) -> float:
        """A running execution whose heartbeat is older than this is treated as orphaned."""
        return _float("ORPHAN_SECONDS", 30.0)

    @property
    def EXECUTION_BACKEND(self) -> str:
        """Where executions run: "thread" (the scheduler's own pool) or "celery" (Celery workers)."""
        return str(_raw("EXECUTION_BACKEND", "thread")).strip().lower()

    @property
    def CELERY_APP(self) -> str | None:
        """The project's Celery app the leader sends executions with ("module:attribute" or a dotted
        path, e.g. "proj.celery:app"); needed only with the celery backend (check scheduler_app.E003)."""
        return _text_or_none("CELERY_APP")

    @property
    def CELERY_QUEUE(self) -> str:
        """Default Celery queue of executions; a task's `config["queue"]` chooses another one."""
        return str(_raw("CELERY_QUEUE", "zquant"))

    @property
    def CELERY_REQUEUE_SECONDS(self) -> float:
        """A run handed to Celery that no worker has started after this long is sent again."""
        return _float("CELERY_REQUEUE_SECONDS", 60.0)

    # ------------------------------------------------------------------ operations: alerts, metrics, retention

    @property
    def NOTIFY_POLL_SECONDS(self) -> float:
        """How often the leader's operations worker looks for events to notify and sends the outbox."""
        return _float("NOTIFY_POLL_SECONDS", 1.0)

    @property
    def NOTIFY_RATE_LIMIT_SECONDS(self) -> float:
        """One notification per subscription, task and kind of event in this window; the others are
        recorded as suppressed."""
        return _float("NOTIFY_RATE_LIMIT_SECONDS", 900.0)

    @property
    def NOTIFY_STUCK_FACTOR(self) -> float:
        """A run is stuck once it has run this many times its task's recent p95 duration."""
        return _float("NOTIFY_STUCK_FACTOR", 3.0)

    @property
    def NOTIFY_STUCK_MIN_SECONDS(self) -> float:
        """A run is never called stuck before it has run this long (short tasks vary a lot)."""
        return _float("NOTIFY_STUCK_MIN_SECONDS", 60.0)

    @property
    def NOTIFY_STALL_SECONDS(self) -> float:
        """A run that reports progress is stuck when its heartbeat goes on but its progress has not
        changed for this long."""
        return _float("NOTIFY_STALL_SECONDS", 600.0)

    @property
    def NOTIFY_HANDOVER_SECONDS(self) -> float:
        """A run handed over to a Celery queue that no worker has started this long after it was due
        is reported (a worker without that queue, or none at all)."""
        return _float("NOTIFY_HANDOVER_SECONDS", 300.0)

    @property
    def NOTIFY_SCHEDULER_DOWN_SECONDS(self) -> float:
        """`check_scheduler` reports no live scheduler once no heartbeat has been seen for this long."""
        return _float("NOTIFY_SCHEDULER_DOWN_SECONDS", 60.0)

    @property
    def NOTIFY_TIMEOUT_SECONDS(self) -> float:
        """Timeout of one webhook request (connect and each read) and of the mail connection."""
        return _float("NOTIFY_TIMEOUT_SECONDS", 5.0)

    @property
    def NOTIFY_MAX_ATTEMPTS(self) -> int:
        """Tries per notification before it is recorded as failed."""
        return _int("NOTIFY_MAX_ATTEMPTS", 5)

    @property
    def NOTIFY_RETRY_SECONDS(self) -> float:
        """Wait before the second try of a notification; doubled for each further try."""
        return _float("NOTIFY_RETRY_SECONDS", 10.0)

    @property
    def NOTIFY_WORKERS(self) -> int:
        """Threads that send notifications (a receiver that hangs holds one for the timeout)."""
        return _int("NOTIFY_WORKERS", 4)

    @property
    def NOTIFY_FROM_EMAIL(self) -> str | None:
        """Sender of notification emails; unset: Django's DEFAULT_FROM_EMAIL."""
        return _text_or_none("NOTIFY_FROM_EMAIL")

    @property
    def METRICS_TOKEN(self) -> str | None:
        """Bearer token that lets a Prometheus scrape the metrics endpoint without a user account;
        unset: only signed-in users with the view permissions on executions and scheduler processes may
        read it (services.permissions.METRICS_VIEW)."""
        return _text_or_none("METRICS_TOKEN")

    @property
    def RETENTION_DAYS(self) -> int:
        """Finished runs older than this many days are deleted (a task may set its own); 0 keeps them."""
        return _int("RETENTION_DAYS", 90)

    @property
    def RETENTION_PER_TASK(self) -> int:
        """Only the newest this many runs of a task are kept (a task may set its own); 0: no limit."""
        return _int("RETENTION_PER_TASK", 10000)

    @property
    def RETENTION_BATCH_SIZE(self) -> int:
        """Runs deleted per statement, so that no delete holds its locks for long."""
        return _int("RETENTION_BATCH_SIZE", 250)

    @property
    def RETENTION_INTERVAL_SECONDS(self) -> float:
        """How often the leader starts a retention pass (it then deletes in paced batches)."""
        return _float("RETENTION_INTERVAL_SECONDS", 600.0)

    @property
    def NOTIFY_RETENTION_DAYS(self) -> int:
        """Notification events and deliveries older than this many days are deleted; 0 keeps them."""
        return _int("NOTIFY_RETENTION_DAYS", 30)


scheduler_settings = SchedulerSettings()
