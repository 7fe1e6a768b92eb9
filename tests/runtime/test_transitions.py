"""Every status change of an execution (runtime/transitions.py): each one conditional write that
leaves only the states it names, stamps the database's clock and reports whether it won."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.identity import process_identity
from scheduler_app.runtime.transitions import Outcome, PlannedOccurrence
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

Status = TaskExecution.Status
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ALL_STATUSES = [status for status, _label in Status.choices]


@pytest.fixture
def task():
    return ScheduledTaskFactory(max_retries=2, retry_interval=30)


def row(task, status: str, **fields) -> TaskExecution:
    if status in TaskExecution.STARTED_STATUSES:
        fields.setdefault("start_time", NOW - timedelta(seconds=10))
        fields.setdefault("worker", "node-1")
    return TaskExecutionFactory(task=task, status=status, scheduled_for=NOW - timedelta(minutes=1), **fields)


def status_of(execution: TaskExecution) -> str:
    execution.refresh_from_db()
    return execution.status


def others(*allowed: str) -> list[str]:
    return [status for status in ALL_STATUSES if status not in allowed]


# --------------------------------------------------------------------------- inserts


def test_queue_writes_a_pending_run_due_at_the_given_time(task):
    queued = transitions.execution_queue(task_id=task.pk, trigger="manual", now=NOW, current_item="x" * 300)
    queued.refresh_from_db()
    assert (queued.status, queued.trigger, queued.scheduled_for) == ("pending", "manual", NOW)
    assert queued.occurrence_at is None  # not a scheduled occurrence: never clashes with one
    assert len(queued.current_item) == 255


def test_a_round_is_recorded_by_kind_and_an_occurrence_recorded_already_is_left_out(task):
    other = ScheduledTaskFactory()
    skipped_task = ScheduledTaskFactory()
    handed = ScheduledTaskFactory()
    existing = row(task, "success", occurrence_at=NOW, trigger="schedule")
    planned = [
        PlannedOccurrence(task_id=task.pk, occurrence_at=NOW, kind=PlannedOccurrence.START),  # a repeat
        PlannedOccurrence(task_id=other.pk, occurrence_at=NOW, kind=PlannedOccurrence.START),
        PlannedOccurrence(task_id=handed.pk, occurrence_at=NOW, kind=PlannedOccurrence.HAND_OVER, queue="fast"),
        PlannedOccurrence(task_id=skipped_task.pk, occurrence_at=NOW, kind=PlannedOccurrence.SKIP, reason="why"),
    ]
    recorded = transitions.executions_record_round(planned=planned, worker="node-1", host="h", pid=7, now=NOW)

    assert sorted(r.task_id for r in recorded) == sorted([other.pk, handed.pk])
    assert TaskExecution.objects.get(task=task) == existing
    started = TaskExecution.objects.get(task=other)
    assert (started.status, started.worker, started.start_time) == ("running", "node-1", NOW)
    assert started.occurrence_at == started.scheduled_for == NOW
    sent = TaskExecution.objects.get(task=handed)
    assert (sent.status, sent.handover_queue, sent.handed_over_at, sent.worker) == ("pending", "fast", NOW, "")
    skipped = TaskExecution.objects.get(task=skipped_task)
    assert (skipped.status, skipped.error_message, skipped.end_time) == ("skipped", "why", NOW)


def test_a_workflow_step_is_written_running_for_the_workflows_worker_or_skipped(task):
    workflow = row(ScheduledTaskFactory(), "running", worker="wf-worker")
    step = transitions.execution_start_step(parent=workflow, task_id=task.pk, worker="wf-worker", host="h", pid=3)
    step.refresh_from_db()
    assert (step.status, step.trigger, step.parent_id, step.worker) == ("running", "workflow", workflow.pk, "wf-worker")
    skipped = transitions.execution_record_skipped_step(parent=workflow, task_id=task.pk, reason="dependency failed")
    skipped.refresh_from_db()
    assert (skipped.status, skipped.error_message, skipped.start_time) == ("skipped", "dependency failed", None)


def test_a_retry_is_scheduled_with_backoff_while_attempts_are_left(task):
    failed = row(task, "failed", retry_count=1)
    task.retry_backoff = 2
    task.save()
    retry = transitions.execution_schedule_retry(execution=failed, now=NOW)
    assert (retry.status, retry.trigger, retry.parent_id, retry.retry_count) == ("pending", "retry", failed.pk, 2)
    assert retry.scheduled_for == NOW + timedelta(seconds=60)
    last = row(task, "failed", retry_count=2)
    assert transitions.execution_schedule_retry(execution=last, now=NOW) is None  # max_retries reached
    step = row(task, "failed", trigger="workflow")
    assert transitions.execution_schedule_retry(execution=step, now=NOW) is None  # its workflow is retried


# --------------------------------------------------------------------------- pending → running and back


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_claim_takes_only_pending_rows(task, status):
    execution = row(task, status)
    claimed = transitions.executions_claim(execution_ids=[execution.pk], worker="node-2", host="h", pid=9, now=NOW)
    if status == "pending":
        assert [c.pk for c in claimed] == [execution.pk]
        assert claimed[0].task == task  # loaded, ready to run
        execution.refresh_from_db()
        assert (execution.status, execution.start_time, execution.worker) == ("running", NOW, "node-2")
    else:
        assert claimed == []
        assert status_of(execution) == status


def test_release_hands_an_unstarted_claim_back_to_the_dispatcher(task):
    claimed = row(task, "running", worker="node-1")
    assert not transitions.execution_release(execution_id=claimed.pk, worker="node-2", reason="not mine")
    assert transitions.execution_release(execution_id=claimed.pk, worker="node-1", reason="lost the lease")
    claimed.refresh_from_db()
    assert (claimed.status, claimed.start_time, claimed.worker, claimed.pid) == ("pending", None, "", None)
    begun = row(task, "running", worker="node-1", child_pid=1234)  # its command started: too late to hand back
    assert not transitions.execution_release(execution_id=begun.pk, worker="node-1", reason="lost the lease")
    assert status_of(begun) == "running"


def test_hand_over_and_requeue(task):
    waiting = row(task, "pending")
    handed = transitions.executions_hand_over(execution_ids=[waiting.pk], queue="fast", now=NOW)
    assert [h.pk for h in handed] == [waiting.pk]
    assert transitions.executions_hand_over(execution_ids=[waiting.pk], queue="other") == []  # once
    assert transitions.handovers_requeue(older_than=NOW) == []
    assert transitions.handovers_requeue(older_than=NOW + timedelta(seconds=1)) == [waiting.pk]
    waiting.refresh_from_db()
    assert (waiting.status, waiting.handover_queue, waiting.handed_over_at) == ("pending", "", None)


# --------------------------------------------------------------------------- flags and pause


def test_pause_and_resume_requests_are_flags_on_started_rows(task):
    running, pending = row(task, "running"), row(task, "pending")
    assert transitions.executions_request_pause(execution_ids=[running.pk, pending.pk]) == 1
    running.refresh_from_db()
    assert (running.status, running.is_paused) == ("running", True)
    assert transitions.executions_request_resume(execution_ids=[running.pk, pending.pk]) == 1
    running.refresh_from_db()
    assert running.is_paused is False


@pytest.mark.parametrize(
    ("mark", "leaves", "becomes"),
    [
        (transitions.execution_mark_paused, "running", "paused"),
        (transitions.execution_mark_running, "paused", "running"),
    ],
)
@pytest.mark.parametrize("status", ALL_STATUSES)
def test_the_runner_marks_its_pause(task, status, mark, leaves, becomes):
    execution = row(task, status)
    assert mark(execution_id=execution.pk) is (status == leaves)
    assert status_of(execution) == (becomes if status == leaves else status)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_stop_cancels_pending_rows_and_asks_started_ones_to_terminate(task, status):
    execution = row(task, status)
    changed = transitions.executions_stop(execution_ids=[execution.pk], reason="replaced", now=NOW)
    execution.refresh_from_db()
    if status == "pending":
        assert (changed, execution.status, execution.error_message, execution.end_time) == (
            1,
            "terminated",
            "replaced",
            NOW,
        )
    elif status in TaskExecution.STARTED_STATUSES:
        assert (changed, execution.status, execution.terminate_requested) == (1, status, True)
        assert execution.error_message == "replaced"  # becomes the error of the terminated run
    else:
        assert (changed, execution.status) == (0, status)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_skip_ends_only_pending_rows(task, status):
    execution = row(task, status)
    assert transitions.executions_skip(execution_ids=[execution.pk], reason="task disabled") == (status == "pending")
    assert status_of(execution) == ("skipped" if status == "pending" else status)


# --------------------------------------------------------------------------- the end of a run


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_finish_ends_only_started_rows(task, status):
    execution = row(task, status)
    written, _fields = transitions.execution_finish(execution=execution, outcome=Outcome("success"), now=NOW)
    assert written is (status in TaskExecution.STARTED_STATUSES)
    assert status_of(execution) == ("success" if written else status)


def test_a_terminate_request_wins_over_the_outcome_and_its_reason_is_the_error(task):
    execution = row(task, "running", terminate_requested=True, error_message="Cancelled by alice.")
    written, _fields = transitions.execution_finish(execution=execution, outcome=Outcome("failed", {}, "boom"), now=NOW)
    assert written
    execution.refresh_from_db()
    assert execution.status == "terminated"
    assert execution.error_message == "Cancelled by alice. (the run ended with: boom)"
    assert not TaskExecution.objects.filter(trigger="retry").exists()  # a terminated run is not retried


def test_a_failure_gets_its_retry_in_the_same_write(task):
    execution = row(task, "running")
    transitions.execution_finish(execution=execution, outcome=Outcome("failed", {}, "boom"), now=NOW)
    assert status_of(execution) == "failed"
    retry = TaskExecution.objects.get(trigger="retry")
    assert (retry.parent_id, retry.scheduled_for) == (execution.pk, NOW + timedelta(seconds=30))


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_orphan_ends_only_active_rows(task, status):
    execution = row(task, status)
    assert transitions.execution_orphan(execution=execution, reason="orphaned", now=NOW) is (
        status in TaskExecution.ACTIVE_STATUSES
    )
    assert status_of(execution) == ("terminated" if status in TaskExecution.ACTIVE_STATUSES else status)


def test_orphan_kills_the_runs_own_command_and_never_a_process_that_reused_its_pid(task):
    own = subprocess.Popen(["sleep", "60"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        host = socket.gethostname()
        mine = row(task, "running", host=host, child_pid=own.pid, child_identity=process_identity(own.pid))
        # A row whose recorded command is gone and whose pid now names an unrelated process group.
        reused = row(task, "running", host=host, child_pid=bystander.pid, child_identity=f"boot:{bystander.pid}:1")

        assert transitions.execution_orphan(execution=reused, reason="orphaned")
        assert transitions.execution_orphan(execution=mine, reason="orphaned")

        assert own.wait(timeout=10) == -signal.SIGKILL
        assert bystander.poll() is None, "a process that is not the run's was killed"
        assert status_of(reused) == status_of(mine) == "terminated"
    finally:
        for process in (own, bystander):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_times_are_the_databases_clock(task, monkeypatch):
    from scheduler_app.runtime import clock

    monkeypatch.setattr(clock.db_clock, "_offset", 42.0)
    queued = transitions.execution_queue(task_id=task.pk, trigger="manual")
    ahead = (queued.scheduled_for - timezone.now()).total_seconds()
    assert 41 < ahead < 43


# --------------------------------------------------------------------------- deleting history


@pytest.mark.django_db
def test_executions_delete_never_deletes_an_active_row():
    task = ScheduledTaskFactory()
    pending = TaskExecutionFactory(task=task, status="pending")
    running = TaskExecutionFactory(task=task, status="running")
    done = TaskExecutionFactory(task=task, status="failed")
    extra = TaskExecutionFactory(task=task, status="failed")
    assert transitions.executions_delete(execution_ids=[pending.pk, running.pk, done.pk]) == 1
    left = TaskExecution.objects.filter(task=task).order_by("id").values_list("id", flat=True)
    assert list(left) == [pending.pk, running.pk, extra.pk]


@pytest.mark.django_db
def test_executions_delete_leaves_the_children_without_a_parent():
    task = ScheduledTaskFactory()
    parent = TaskExecutionFactory(task=task, status="failed")
    retry = TaskExecutionFactory(task=task, status="failed", trigger="retry", parent=parent)
    transitions.executions_delete(execution_ids=[parent.pk])
    retry.refresh_from_db()
    assert retry.parent_id is None
