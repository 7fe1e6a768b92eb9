"""Shared fixtures."""

from __future__ import annotations

import pytest

from tests.factories import ScheduledTaskFactory, TaskExecutionFactory


@pytest.fixture
def task(db):
    return ScheduledTaskFactory()


@pytest.fixture
def execution(task):
    return TaskExecutionFactory(task=task)
