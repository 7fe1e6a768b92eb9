"""Shared fixtures."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import ScheduledTaskFactory, TaskExecutionFactory


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Tests create many users; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
