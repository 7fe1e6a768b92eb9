"""What the lifecycle keeps true besides the rows (runtime/summaries.py): each task's stored latest
execution equals its definition after every transition, retention and delete, and the day
statistics count every run once, when it ends, however it ends."""

from __future__ import annotations

import os
import socket
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum

from scheduler_app.models import ScheduledTask, TaskDayStats, TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.summaries import stats_day
from scheduler_app.runtime.transitions import Outcome, PlannedOccurrence
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def defined_latest(task: ScheduledTask) -> tuple[int | None, str, datetime | None]:
    row = TaskExecution.objects.filter(task=task)
    row = row.exclude(status="skipped").exclude(status="pending", trigger="retry").order_by("-pk").first()
    return (row.pk, row.status, row.start_time) if row else (None, "", None)


def stored_latest(task: ScheduledTask) -> tuple[int | None, str, datetime | None]:
    task.refresh_from_db()
    return task.latest_execution_id, task.latest_execution_status, task.latest_execution_time


def counted() -> Counter:
    return Counter(
        {
            (task_id, day, status): runs
            for task_id, day, status, runs in TaskDayStats.objects.values_list("task_id", "day", "status", "runs")
            if runs
        }
    )


def ended_rows() -> Counter:
    rows = TaskExecution.objects.filter(status__in=TaskExecution.TERMINAL_STATUSES)
    return Counter(
        (task_id, stats_day(start), status)
        for task_id, start, status in rows.values_list("task_id", "start_time", "status")
    )


def assert_true(*tasks: ScheduledTask) -> None:
    for task in tasks:
        assert stored_latest(task) == defined_latest(task), task
    assert counted() == ended_rows()


def test_every_transition_keeps_the_latest_execution_and_the_statistics_true():
    task, other = ScheduledTaskFactory(max_retries=1, retry_interval=60), ScheduledTaskFactory()
    assert_true(task, other)
    manual = transitions.execution_queue(task_id=task.pk, trigger="manual", now=NOW)
    assert_true(task)
    assert stored_latest(task) == (manual.pk, "pending", None)
    [claimed] = transitions.executions_claim(execution_ids=[manual.pk], worker="w", host="h", pid=1, now=NOW)
    assert_true(task)
    assert transitions.execution_mark_paused(execution_id=manual.pk)
    assert stored_latest(task)[1] == "paused"
    assert transitions.execution_mark_running(execution_id=manual.pk)
    transitions.execution_finish(
        execution=claimed, outcome=Outcome("failed", {}, "boom"), now=NOW + timedelta(seconds=3)
    )
    assert_true(task)
    retry = TaskExecution.objects.get(trigger="retry")
    assert stored_latest(task)[:2] == (manual.pk, "failed")  # a retry still waiting is not the latest
    assert transitions.execution_claim(execution_id=retry.pk, worker="w")
    assert stored_latest(task)[:2] == (retry.pk, "running")
    assert transitions.execution_release(execution_id=retry.pk, worker="w", reason="lease lost")
    assert_true(task)
    transitions.executions_cancel(execution_ids=[retry.pk], reason="cancelled")
    assert_true(task)
    planned = [
        PlannedOccurrence(task_id=other.pk, occurrence_at=NOW, kind=PlannedOccurrence.START),
        PlannedOccurrence(task_id=other.pk, occurrence_at=NOW - timedelta(minutes=1), kind="skip", reason="missed"),
    ]
    [fired] = transitions.executions_record_round(
        planned=planned, worker="w", host=socket.gethostname(), pid=os.getpid()
    )
    assert_true(task, other)
    transitions.execution_orphan(execution=fired, reason="orphaned")
    assert_true(other)
    queued = transitions.execution_queue(task_id=other.pk, trigger="manual")
    transitions.executions_skip(execution_ids=[queued.pk], reason="disabled")
    assert_true(other)
    assert stored_latest(other)[:2] == (fired.pk, "terminated")  # the skipped one is not the latest


def test_workflow_steps_count_for_their_own_tasks():
    workflow, step_task = ScheduledTaskFactory(), ScheduledTaskFactory()
    run = transitions.execution_queue(task_id=workflow.pk, trigger="manual")
    step = transitions.execution_start_step(parent=run, task_id=step_task.pk, worker="w", host="h", pid=1)
    assert_true(workflow, step_task)
    assert stored_latest(step_task)[:2] == (step.pk, "running")
    transitions.execution_record_skipped_step(parent=run, task_id=step_task.pk, reason="dependency failed")
    assert_true(workflow, step_task)


def test_deleting_runs_recomputes_the_latest_and_keeps_the_statistics():
    task = ScheduledTaskFactory(max_retries=0)
    ids = []
    for offset in range(3):
        run = transitions.execution_queue(task_id=task.pk, trigger="manual", now=NOW + timedelta(minutes=offset))
        [claimed] = transitions.executions_claim(execution_ids=[run.pk], worker="w", host="h", pid=1)
        transitions.execution_finish(execution=claimed, outcome=Outcome("success"))
        ids.append(run.pk)
    before = TaskDayStats.objects.aggregate(runs=Sum("runs"))["runs"]
    assert transitions.executions_delete(execution_ids=ids[1:]) == 2
    assert stored_latest(task)[0] == ids[0]
    assert TaskDayStats.objects.aggregate(runs=Sum("runs"))["runs"] == before == 3  # history outlives pruning
    active = transitions.execution_queue(task_id=task.pk, trigger="manual")
    assert transitions.executions_delete(execution_ids=[active.pk]) == 0  # never an active run
    assert stored_latest(task)[0] == active.pk


def test_a_batch_keeps_its_tasks_true_in_a_constant_number_of_queries(django_assert_max_num_queries):
    for count in (3, 30):
        tasks = ScheduledTaskFactory.create_batch(count)
        rows = [transitions.execution_queue(task_id=task.pk, trigger="manual") for task in tasks]
        with django_assert_max_num_queries(5):  # UPDATE, read back, the tasks' latest (+ the test's savepoint)
            claimed = transitions.executions_claim(execution_ids=[r.pk for r in rows], worker="w", host="h", pid=1)
        assert len(claimed) == count
        with django_assert_max_num_queries(6):  # UPDATE, read back, statistics, latest (+ savepoint)
            transitions.executions_stop(execution_ids=[r.pk for r in rows], reason="stop")
        assert_true(*tasks)
