"""action_record: who did what to which task or run, kept when the task or the run is gone."""

from __future__ import annotations

import pytest

from scheduler_app.models import OperatorAction, ScheduledTask
from scheduler_app.services.audit import action_record
from scheduler_app.services.permissions import SYSTEM
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_action_names_the_user_the_task_and_the_run():
    user = UserFactory(username="alice")
    task = ScheduledTaskFactory(name="sync")
    execution = TaskExecutionFactory(task=task)
    record = action_record(
        actor=user,
        action=OperatorAction.Action.TERMINATE,
        task=task,
        execution_id=execution.pk,
        reason="  stuck on the provider  ",
        details={"status": "running"},
    )
    record.refresh_from_db()
    assert (record.actor, record.actor_name, record.task_name, record.execution_id) == (
        user,
        "alice",
        "sync",
        execution.pk,
    )
    assert record.reason == "stuck on the provider"
    assert record.details == {"status": "running"}
    assert record.at is not None


def test_the_system_is_named_and_a_long_reason_is_cut():
    record = action_record(actor=SYSTEM, action=OperatorAction.Action.IMPORT, reason="x" * 600)
    assert (record.actor, record.actor_name, len(record.reason)) == (None, "system", 500)


def test_the_record_outlives_its_task():
    task = ScheduledTaskFactory(name="gone")
    record = action_record(actor=SYSTEM, action=OperatorAction.Action.RUN_NOW, task=task)
    ScheduledTask.objects.filter(pk=task.pk).delete()
    record.refresh_from_db()
    assert (record.task, record.task_name) == (None, "gone")
