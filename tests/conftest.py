"""Shared fixtures."""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache

from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

# The suite runs command tasks, as root in CI: it turns them on explicitly, in this process and in the
# scheduler and Celery processes it starts (they inherit this environment).
COMMAND_TEST_SETTINGS = {"SCHEDULER_COMMANDS_ENABLED": "true", "SCHEDULER_ALLOW_ROOT_COMMANDS": "true"}
os.environ.update(COMMAND_TEST_SETTINGS)


@pytest.fixture(autouse=True)
def commands_allowed(settings):
    for name, value in COMMAND_TEST_SETTINGS.items():
        setattr(settings, name, value)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Tests create many users; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_calendar_days_of_other_tests():
    """The calendar days cache is per process and keyed by calendar id and revision; every test's
    calendars are rolled back, and the next test's (same id, same revision) must not meet their days."""
    from scheduler_app.triggers import forget_calendar_snapshots

    forget_calendar_snapshots()


@pytest.fixture(autouse=True)
def uncounted_requests():
    """The API throttles count requests in the default cache: every test starts with none counted."""
    cache.clear()


@pytest.fixture
def task(db):
    return ScheduledTaskFactory()


@pytest.fixture
def execution(task):
    return TaskExecutionFactory(task=task)
