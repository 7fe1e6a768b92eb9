"""Starting due pending runs in batches (scheduling/dispatch.py): one UPDATE for any number of runs,
as far as the overlap policies and the free slots allow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import TaskExecution
from scheduler_app.scheduling.dispatch import pending_start
from scheduler_app.selectors import pending_runs_due
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


@pytest.mark.parametrize("count", [2, 20])
def test_due_pending_runs_start_in_a_constant_number_of_queries(count, django_assert_max_num_queries):
    now = timezone.now()
    for task in ScheduledTaskFactory.create_batch(count, config=QUICK, interval_seconds=None, task_type="manual_task"):
        TaskExecutionFactory(task=task, scheduled_for=now)
    rows = pending_runs_due(now=now, limit=100)
    # The task's active runs, the claim (UPDATE, read back, the tasks' latest execution, in the test's
    # savepoint): a constant number of queries for any batch.
    with django_assert_max_num_queries(6):
        started = pending_start(rows=rows, worker="node-1", host="h", pid=7)
    assert len(started.rows) == count
    assert {row.status for row in started.rows} == {"running"}
    assert TaskExecution.objects.filter(status="running", worker="node-1", pid=7).count() == count


def test_pending_runs_of_one_task_start_one_at_a_time_unless_it_allows_overlap():
    now = timezone.now()
    single = ScheduledTaskFactory(config=QUICK, overlap_policy="queue")
    parallel = ScheduledTaskFactory(config=QUICK, overlap_policy="allow")
    for task in (single, single, parallel, parallel):
        TaskExecutionFactory(task=task, scheduled_for=now - timedelta(seconds=TaskExecution.objects.count()))
    started = pending_start(rows=pending_runs_due(now=now, limit=10), worker="node-1", host="h", pid=7)
    assert sorted(row.task_id for row in started.rows) == sorted([single.pk, parallel.pk, parallel.pk])
    assert TaskExecution.objects.filter(task=single, status="pending").count() == 1


def test_pending_runs_beyond_the_free_slots_wait():
    now = timezone.now()
    for task in ScheduledTaskFactory.create_batch(3, config=QUICK):
        TaskExecutionFactory(task=task, scheduled_for=now)
    started = pending_start(rows=pending_runs_due(now=now, limit=10), worker="node-1", host="h", pid=7, slots=2)
    assert (len(started.rows), started.short_of_slots) == (2, 1)
    assert TaskExecution.objects.filter(status="pending").count() == 1


def test_a_retry_of_a_task_paused_since_is_skipped_not_started():
    task = ScheduledTaskFactory(config=QUICK, paused=True)
    retry = TaskExecutionFactory(task=task, trigger="retry", scheduled_for=timezone.now())
    started = pending_start(rows=pending_runs_due(now=timezone.now(), limit=10), worker="node-1", host="h", pid=7)
    assert started.rows == []
    retry.refresh_from_db()
    assert (retry.status, retry.error_message) == ("skipped", "retry not run: the task was paused")
