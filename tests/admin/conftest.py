"""Fixtures for the admin tests: users with chosen permissions, tasks and executions in given states."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from scheduler_app.models import ScheduledTask, SchedulerNode, TaskExecution
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, UserFactory


@pytest.fixture
def staff_client(db) -> Callable[..., Client]:
    """A client logged in as a staff user holding exactly the given scheduler_app permission codenames."""

    def make(*codenames: str) -> Client:
        user = UserFactory(is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="scheduler_app", codename__in=codenames)
        )
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def live_node(db) -> SchedulerNode:
    """A scheduler process with a fresh heartbeat, so that no offline banner shows."""
    now = timezone.now()
    return SchedulerNode.objects.create(
        node_id="test-node", host="testhost", pid=4242, started_at=now - timedelta(minutes=5), last_heartbeat=now
    )


def make_run(task: ScheduledTask, status: str, **fields) -> TaskExecution:
    now = timezone.now()
    defaults = {
        "trigger": TaskExecution.Trigger.MANUAL,
        "scheduled_for": now - timedelta(seconds=TaskExecution.objects.count() + 10),
    }
    if status != TaskExecution.Status.PENDING:
        defaults.update(start_time=now - timedelta(seconds=30))
    if status in TaskExecution.TERMINAL_STATUSES:
        defaults.update(end_time=now - timedelta(seconds=5), duration_seconds=25.0)
    defaults.update(fields)
    return TaskExecutionFactory(task=task, status=status, **defaults)


@pytest.fixture
def workflow(db) -> ScheduledTask:
    """A workflow of two manual steps: b runs after a."""
    a = ScheduledTaskFactory(name="step-a", task_type="manual_task", interval_seconds=None)
    b = ScheduledTaskFactory(name="step-b", task_type="manual_task", interval_seconds=None)
    return ScheduledTaskFactory(
        name="flow",
        task_type="workflow",
        interval_seconds=None,
        cron_expression="0 18 * * *",
        config={
            "workflow_type": "serial",
            "tasks": [
                {"task_id": a.pk, "name": a.name, "dependencies": []},
                {"task_id": b.pk, "name": b.name, "dependencies": [a.pk]},
            ],
        },
    )
