"""Retention: age and count per task, the rows always kept, batches that stay small, the dry run."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from scheduler_app.models import NotificationEvent, TaskExecution
from scheduler_app.runtime.clock import db_now
from scheduler_app.scheduling.retention import retention_run
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def finished(task, status="success", *, ago=timedelta(days=100), **fields) -> TaskExecution:
    end = db_now() - ago
    return TaskExecutionFactory(
        task=task, status=status, trigger=fields.pop("trigger", "schedule"), end_time=end, **fields
    )


def ids(task) -> list[int]:
    return list(TaskExecution.objects.filter(task=task).order_by("id").values_list("id", flat=True))


@pytest.fixture
def defaults(settings):
    settings.SCHEDULER_RETENTION_DAYS = 30
    settings.SCHEDULER_RETENTION_PER_TASK = 0


def test_old_runs_go_but_the_last_success_and_failure_stay(defaults):
    task = ScheduledTaskFactory()
    old = [finished(task, status) for status in ("success", "failed", "success", "terminated", "skipped")]
    recent = finished(task, ago=DAY)
    report = retention_run(now=db_now())
    # Kept: the newest success is the recent run; the newest failure is the old terminated one.
    assert ids(task) == [old[3].pk, recent.pk]
    assert report.per_task() == {task.pk: {"age": 4, "count": 0}}


def test_workflow_steps_go_with_their_run_and_what_active_runs_need_stays(defaults):
    flow, step_task = ScheduledTaskFactory(task_type="workflow"), ScheduledTaskFactory()
    old_run = finished(flow)
    steps = [finished(step_task, trigger="workflow", parent=old_run) for _ in range(2)]
    checkpoint = finished(flow, "failed")  # an active resume reads it
    TaskExecutionFactory(task=flow, status="pending", trigger="resume", parent=checkpoint)
    busy_run = finished(flow)  # its step is still running
    TaskExecutionFactory(task=step_task, status="running", trigger="workflow", parent=busy_run)
    lone_step = finished(step_task, "success", trigger="workflow", parent=None)
    finished(flow, ago=DAY)
    finished(step_task, ago=DAY)
    retention_run(now=db_now())
    left = set(TaskExecution.objects.values_list("id", flat=True))
    assert old_run.pk not in left
    assert not {step.pk for step in steps} & left
    assert {checkpoint.pk, busy_run.pk} <= left
    assert lone_step.pk not in left  # a step whose workflow run is gone counts as a run of its own


def test_the_count_rule_keeps_the_newest_runs_per_task(settings):
    settings.SCHEDULER_RETENTION_DAYS = 0
    settings.SCHEDULER_RETENTION_PER_TASK = 3
    task, own = ScheduledTaskFactory(), ScheduledTaskFactory(retention_max_runs=0)
    failure = finished(task, "failed", ago=DAY * 20)  # beyond the count, but the last failure
    runs = [finished(task, ago=DAY * (10 - n)) for n in range(6)]
    kept_anyway = [finished(own) for _ in range(5)]
    report = retention_run(now=db_now())
    assert ids(task) == [failure.pk, *(run.pk for run in runs[3:])]
    assert ids(own) == [run.pk for run in kept_anyway]
    assert report.per_task() == {task.pk: {"age": 0, "count": 3}}


def test_a_task_may_keep_its_runs_longer_or_shorter(defaults):
    longer, shorter = ScheduledTaskFactory(retention_days=365), ScheduledTaskFactory(retention_days=2)
    finished(longer)
    finished(longer)
    finished(shorter, ago=DAY * 3)
    newest = finished(shorter, ago=DAY * 3)
    retention_run(now=db_now())
    assert len(ids(longer)) == 2
    assert ids(shorter) == [newest.pk]


def test_every_delete_stays_within_the_batch_size(defaults, settings):
    settings.SCHEDULER_RETENTION_BATCH_SIZE = 7
    task = ScheduledTaskFactory()
    for _ in range(40):
        finished(task)
    finished(task, ago=DAY)
    deletes: list[int] = []

    def watch(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("DELETE"):
            deletes.append(len(params or ()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        report = retention_run(now=db_now())
    assert report.total == 40
    assert len(deletes) >= 40 / 7
    assert max(deletes) == 7 + len(TaskExecution.TERMINAL_STATUSES)  # the ids, plus the terminal states
    assert len(ids(task)) == 1


def test_old_notification_events_are_pruned(settings):
    settings.SCHEDULER_NOTIFY_RETENTION_DAYS = 30
    for age in (40, 31, 1):
        NotificationEvent.objects.create(kind="failed", key=f"k{age}", summary="x", detected_at=db_now() - DAY * age)
    report = retention_run(now=db_now())
    assert report.notification_events == 2
    assert list(NotificationEvent.objects.values_list("key", flat=True)) == ["k1"]


def test_prune_dry_run_counts_per_task_and_deletes_nothing(defaults):
    task = ScheduledTaskFactory(name="nightly")
    for status in ("success", "success", "failed", "failed"):
        finished(task, status)
    out = StringIO()
    call_command("prune_executions", "--dry-run", stdout=out)
    assert TaskExecution.objects.count() == 4
    assert f"task {task.pk} 'nightly': would delete 2 runs (2 by age, 0 beyond the count)" in out.getvalue()
    assert "would delete 2 runs of 1 tasks" in out.getvalue()
    call_command("prune_executions", stdout=StringIO())
    assert TaskExecution.objects.count() == 2


def test_prune_refuses_a_bad_batch_size():
    with pytest.raises(CommandError, match="--batch-size must be positive"):
        call_command("prune_executions", "--batch-size", "0")
