"""Settings are read at access time; misconfiguration is reported by system checks with stable ids."""

from __future__ import annotations

from scheduler_app.checks import check_settings
from scheduler_app.conf import scheduler_settings


def test_defaults():
    assert scheduler_settings.TIMEZONE == "Asia/Shanghai"
    assert scheduler_settings.THREAD_POOL_SIZE == 512
    assert scheduler_settings.ACTION_CONCURRENCY == 32
    assert scheduler_settings.COMMAND_ALLOWLIST is None


def test_override_is_seen_at_once(settings):
    settings.SCHEDULER_THREAD_POOL_SIZE = 3
    assert scheduler_settings.THREAD_POOL_SIZE == 3


def test_environment_text_is_converted(settings):
    settings.SCHEDULER_THREAD_POOL_SIZE = "7"
    settings.SCHEDULER_SHUTDOWN_GRACE = "2.5"
    settings.SCHEDULER_COMMAND_ALLOWLIST = "python, /usr/bin/env"
    assert scheduler_settings.THREAD_POOL_SIZE == 7
    assert scheduler_settings.SHUTDOWN_GRACE == 2.5
    assert scheduler_settings.COMMAND_ALLOWLIST == ["python", "/usr/bin/env"]


def test_checks_quiet_by_default():
    assert check_settings(None) == []


def test_check_ids(settings):
    settings.USE_TZ = False
    settings.SCHEDULER_TIMEZONE = "Nowhere/City"
    settings.SCHEDULER_THREAD_POOL_SIZE = 0
    ids = sorted(problem.id for problem in check_settings(None))
    assert ids == ["scheduler_app.E001", "scheduler_app.E002", "scheduler_app.W001"]


def test_operations_settings_are_checked(settings):
    settings.SCHEDULER_RETENTION_BATCH_SIZE = 0
    settings.SCHEDULER_RETENTION_DAYS = -1
    settings.SCHEDULER_NOTIFY_RATE_LIMIT_SECONDS = "often"
    problems = {problem.msg: problem.id for problem in check_settings(None)}
    assert problems == {
        "SCHEDULER_RETENTION_BATCH_SIZE must be a positive number.": "scheduler_app.W001",
        "SCHEDULER_RETENTION_DAYS must be a number, 0 or more.": "scheduler_app.W003",
        "SCHEDULER_NOTIFY_RATE_LIMIT_SECONDS must be a number, 0 or more.": "scheduler_app.W003",
    }


def test_operations_defaults():
    assert scheduler_settings.RETENTION_DAYS == 90
    assert scheduler_settings.RETENTION_PER_TASK == 10000
    assert scheduler_settings.METRICS_TOKEN is None
    assert scheduler_settings.NOTIFY_RATE_LIMIT_SECONDS == 900.0
