"""Execution control services: flags for the runner, conditional updates, resume from a checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scheduler_app.exceptions import InvalidState, RunActive
from scheduler_app.models import TaskExecution
from scheduler_app.services.executions import (
    execution_pause,
    execution_rerun,
    execution_resume,
    execution_terminate,
)
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, operator_user

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
Status = TaskExecution.Status
TERMINAL = [Status.SUCCESS, Status.FAILED, Status.COMPLETED, Status.TERMINATED, Status.SKIPPED]


@pytest.fixture
def user(db):
    return operator_user()


def run(status, **fields):
    return TaskExecutionFactory(status=status, **fields)


class TestPause:
    def test_running_gets_the_pause_flag(self, user):
        execution = execution_pause(execution=run(Status.RUNNING), user=user, now=NOW)
        assert execution.is_paused is True
        assert execution.status == Status.RUNNING

    @pytest.mark.parametrize("status", [Status.PENDING, Status.PAUSED, *TERMINAL])
    def test_refused_otherwise(self, user, status):
        execution = run(status)
        with pytest.raises(InvalidState, match=status):
            execution_pause(execution=execution, user=user)
        execution.refresh_from_db()
        assert execution.is_paused is False


class TestResume:
    def test_paused_run_continues_itself(self, user):
        paused = run(Status.PAUSED, is_paused=True)
        resumed = execution_resume(execution=paused, user=user, now=NOW)
        assert resumed.pk == paused.pk
        assert resumed.is_paused is False

    def test_pause_request_not_yet_seen_is_withdrawn(self, user):
        running = run(Status.RUNNING, is_paused=True)
        assert execution_resume(execution=running, user=user).is_paused is False

    @pytest.mark.parametrize("status", [Status.FAILED, Status.TERMINATED])
    def test_failed_or_terminated_restart_from_checkpoint(self, user, status):
        old = run(status, current_item="600519.SH")
        new = execution_resume(execution=old, user=user, now=NOW)
        assert new.pk != old.pk
        assert new.status == Status.PENDING
        assert new.trigger == TaskExecution.Trigger.RESUME
        assert new.parent == old
        assert new.task == old.task
        assert new.triggered_by == user
        assert new.result == {"resume_from_execution_id": old.pk}
        assert new.current_item == "600519.SH"
        assert new.scheduled_for == NOW

    def test_restart_follows_the_overlap_policy(self, user):
        task = ScheduledTaskFactory()
        old = run(Status.FAILED, task=task)
        run(Status.PENDING, task=task)  # a retry already queued
        with pytest.raises(RunActive):
            execution_resume(execution=old, user=user)

    @pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.SUCCESS, Status.SKIPPED])
    def test_refused_otherwise(self, user, status):
        with pytest.raises(InvalidState):
            execution_resume(execution=run(status), user=user)


class TestTerminate:
    def test_pending_is_cancelled_at_once(self, user):
        execution = execution_terminate(execution=run(Status.PENDING), user=user, now=NOW)
        assert execution.status == Status.TERMINATED
        assert execution.end_time == NOW
        assert "operator" in execution.error_message

    @pytest.mark.parametrize("status", [Status.RUNNING, Status.PAUSED])
    def test_started_gets_the_terminate_flag(self, user, status):
        execution = execution_terminate(execution=run(status), user=user)
        assert execution.status == status
        assert execution.terminate_requested is True

    @pytest.mark.parametrize("status", TERMINAL)
    def test_terminal_is_refused_and_unchanged(self, user, status):
        execution = run(status)
        with pytest.raises(InvalidState):
            execution_terminate(execution=execution, user=user)
        execution.refresh_from_db()
        assert execution.status == status
        assert execution.terminate_requested is False

    def test_stale_object_does_not_overwrite_a_finished_row(self, user):
        execution = run(Status.PENDING)
        TaskExecution.objects.filter(pk=execution.pk).update(status=Status.SUCCESS)
        with pytest.raises(InvalidState):
            execution_terminate(execution=execution, user=user)  # `execution` still says pending
        execution.refresh_from_db()
        assert execution.status == Status.SUCCESS


class TestRerun:
    @pytest.mark.parametrize("status", TERMINAL)
    def test_finished_run_is_queued_again(self, user, status):
        old = run(status)
        new = execution_rerun(execution=old, user=user, now=NOW)
        assert new.pk != old.pk
        assert new.task == old.task
        assert new.status == Status.PENDING
        assert new.trigger == TaskExecution.Trigger.MANUAL

    @pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.PAUSED])
    def test_active_run_is_refused(self, user, status):
        with pytest.raises(InvalidState):
            execution_rerun(execution=run(status), user=user)
