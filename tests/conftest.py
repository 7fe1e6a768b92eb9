"""Shared fixtures."""

from __future__ import annotations

import pytest

from tests.factories import ScheduledTaskFactory, TaskExecutionFactory


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Tests create many users; the real hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def task(db):
    return ScheduledTaskFactory()


@pytest.fixture
def execution(task):
    return TaskExecutionFactory(task=task)
