"""Task services: validation, the schedule version, workflow references, overlap policies on trigger."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from scheduler_app.exceptions import RunActive, TaskInUse
from scheduler_app.executors.common import CONFIG_NEEDS_ACTION
from scheduler_app.models import ScheduledTask, SchedulerState, TaskExecution
from scheduler_app.services.executions import EXECUTION_REPLACED
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.state import schedule_touch, schedule_version_bump
from scheduler_app.services.tasks import (
    COPY_SUFFIX,
    task_copy,
    task_create,
    task_delete,
    task_disable,
    task_enable,
    task_pause,
    task_resume,
    task_trigger,
    task_update,
    tasks_resume_expired,
)
from tests.factories import CalendarFactory, ScheduledTaskFactory, TaskExecutionFactory, operator_user

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
Status = TaskExecution.Status


def version() -> int:
    state = SchedulerState.objects.filter(pk=1).first()
    return state.schedule_version if state else 0


def workflow(*steps, **fields):
    config = {
        "workflow_type": "serial",
        "tasks": [{"task_id": step.pk, "name": step.name, "dependencies": []} for step in steps],
    }
    return ScheduledTaskFactory(task_type=ScheduledTask.TaskType.WORKFLOW, config=config, **fields)


@pytest.fixture
def user(db):
    return operator_user()


def valid_data(**extra):
    return {
        "name": "nightly",
        "task_type": "common_task",
        "cron_expression": "0 18 * * 1-5",
        "config": {"task_action": "example_task"},
        **extra,
    }


class TestCreate:
    def test_task_create_saves_audits_and_bumps_version_on_commit(self, user, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            task = task_create(data=valid_data(), user=user)
        assert task.pk
        assert task.created_by == user
        assert task.updated_by == user
        assert task.job_id.startswith("task-")
        assert len(callbacks) == 1
        assert version() == 1

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"cron_expression": "61 * * * *"}, "cron_expression"),
            ({"cron_expression": "*/0 * * * *"}, "cron_expression"),
            ({"cron_expression": "0 0 * * * *"}, "cron_expression"),
            ({"cron_expression": None}, "cron_expression"),
            ({"cron_expression": None, "interval_seconds": 0}, "interval_seconds"),
            ({"task_type": "manual_task"}, "cron_expression"),
            ({"config": []}, "config"),
            ({"config": {"x": "y" * 70_000}}, "config"),
            ({"config": {}}, "config"),
            ({"config": {"command": "  "}}, "config"),
            ({"config": {"command": "ls", "task_action": "example_task"}}, "config"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"name": "  "}, "name"),
        ],
    )
    def test_task_create_refuses_invalid_and_saves_nothing(self, user, extra, field):
        with pytest.raises(ValidationError) as caught:
            task_create(data=valid_data(**extra), user=user)
        assert field in caught.value.message_dict
        assert not ScheduledTask.objects.exists()
        assert version() == 0

    def test_config_without_action_names_what_is_missing(self, user):
        with pytest.raises(ValidationError) as caught:
            task_create(data=valid_data(config={"steps": 3}), user=user)
        assert caught.value.message_dict["config"] == [str(CONFIG_NEEDS_ACTION)]

    def test_duplicate_name_is_a_field_error(self, user):
        task_create(data=valid_data(), user=user)
        with pytest.raises(ValidationError) as caught:
            task_create(data=valid_data(), user=user)
        assert "name" in caught.value.message_dict
        assert ScheduledTask.objects.count() == 1

    def test_unknown_fields_are_a_programming_error(self, user):
        with pytest.raises(TypeError, match="job_id"):
            task_create(data=valid_data(job_id="mine"), user=user)

    def test_workflow_config_is_validated_on_create(self, user):
        step = ScheduledTaskFactory()
        config = {"workflow_type": "serial", "tasks": [{"task_id": step.pk, "dependencies": [step.pk]}]}
        with pytest.raises(ValidationError) as caught:
            task_create(data=valid_data(task_type="workflow", config=config), user=user)
        assert any("depends on itself" in message for message in caught.value.message_dict["config"])

    def test_workflow_step_ids_beyond_the_id_range_are_refused(self, user):
        config = {"workflow_type": "serial", "tasks": [{"task_id": 2**70}]}
        with pytest.raises(ValidationError) as caught:
            task_create(data=valid_data(task_type="workflow", config=config), user=user)
        assert "whole numbers" in caught.value.message_dict["config"][0]


class TestUpdate:
    def test_task_update_changes_fields_and_bumps(self, task, user, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            updated = task_update(task=task, data={"interval_seconds": 120, "description": "x"}, user=user)
        assert updated.interval_seconds == 120
        assert updated.updated_by == user
        assert version() == 1

    def test_task_type_change_must_keep_the_invariants(self, task, user):
        with pytest.raises(ValidationError) as caught:
            task_update(task=task, data={"task_type": "manual_task"}, user=user)
        assert "interval_seconds" in caught.value.message_dict
        task_update(task=task, data={"task_type": "manual_task", "interval_seconds": None}, user=user)
        task.refresh_from_db()
        assert task.task_type == "manual_task"

    def test_a_workflow_cannot_list_itself(self, user):
        step = ScheduledTaskFactory()
        flow = workflow(step)
        config = {"workflow_type": "serial", "tasks": [{"task_id": flow.pk}]}
        with pytest.raises(ValidationError) as caught:
            task_update(task=flow, data={"config": config}, user=user)
        assert "cannot list itself" in caught.value.message_dict["config"][0]

    def test_nesting_back_to_the_workflow_is_refused(self, user):
        step = ScheduledTaskFactory()
        outer = workflow(step)
        inner = workflow(outer)
        config = {"workflow_type": "serial", "tasks": [{"task_id": inner.pk}]}
        with pytest.raises(ValidationError) as caught:
            task_update(task=outer, data={"config": config}, user=user)
        assert "runs this workflow again" in " ".join(caught.value.message_dict["config"])


class TestDelete:
    def test_task_delete_removes_task_and_history(self, task, user, django_capture_on_commit_callbacks):
        TaskExecutionFactory(task=task, status=Status.SUCCESS)
        TaskExecutionFactory(task=task, status=Status.PENDING)
        with django_capture_on_commit_callbacks(execute=True):
            task_delete(task=task, user=user)
        assert not ScheduledTask.objects.exists()
        assert not TaskExecution.objects.exists()
        assert version() == 1

    def test_refused_while_a_workflow_uses_it_naming_the_workflow(self, task, user):
        workflow(task, name="daily pipeline")
        with pytest.raises(TaskInUse, match='"daily pipeline"'):
            task_delete(task=task, user=user)
        assert ScheduledTask.objects.filter(pk=task.pk).exists()

    @pytest.mark.parametrize("status", [Status.RUNNING, Status.PAUSED])
    def test_refused_while_a_run_has_started(self, task, user, status):
        run = TaskExecutionFactory(task=task, status=status)
        with pytest.raises(TaskInUse, match=f"{run.pk}"):
            task_delete(task=task, user=user)


class TestStateChanges:
    @pytest.mark.parametrize(
        ("service", "field", "value", "start"),
        [
            (task_disable, "enabled", False, True),
            (task_enable, "enabled", True, False),
            (task_pause, "paused", True, False),
            (task_resume, "paused", False, True),
        ],
    )
    def test_idempotent_and_bumps_only_on_change(
        self, user, service, field, value, start, django_capture_on_commit_callbacks
    ):
        task = ScheduledTaskFactory(**{field: start})
        with django_capture_on_commit_callbacks(execute=True):
            service(task=task, user=user)
        with django_capture_on_commit_callbacks(execute=True) as second:
            again = service(task=task, user=user)
        assert getattr(again, field) is value
        assert again.updated_by == user
        assert version() == 1
        assert second == []

    def test_disable_refused_while_an_enabled_workflow_uses_the_task(self, task, user):
        workflow(task, name="flow")
        with pytest.raises(TaskInUse, match='"flow"'):
            task_disable(task=task, user=user)
        workflow_off = ScheduledTaskFactory(name="other")  # unrelated
        assert task_disable(task=workflow_off, user=user).enabled is False

    def test_enable_validates_again(self, user):
        step = ScheduledTaskFactory()
        flow = workflow(step, enabled=False)
        ScheduledTask.objects.filter(pk=step.pk).update(enabled=False)
        with pytest.raises(ValidationError) as caught:
            task_enable(task=flow, user=user)
        assert "disabled" in caught.value.message_dict["config"][0]
        flow.refresh_from_db()
        assert flow.enabled is False

    def test_bulk_loop_in_one_transaction_bumps_once(self, user, django_capture_on_commit_callbacks):
        tasks = ScheduledTaskFactory.create_batch(3)
        with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
            for task in tasks:
                task_pause(task=task, user=user)
        assert len(callbacks) == 1
        assert version() == 1


class TestCopy:
    def test_task_copy_is_disabled_with_unique_name_and_new_job_id(self, user):
        original = ScheduledTaskFactory(name="report", enabled=True, max_retries=7)
        first = task_copy(task=original, user=user)
        second = task_copy(task=original, user=user)
        assert first.name == f"report{COPY_SUFFIX}"
        assert second.name == f"report{COPY_SUFFIX}2"
        assert first.enabled is False
        assert first.max_retries == 7
        assert first.config == original.config
        assert len({original.job_id, first.job_id, second.job_id}) == 3

    def test_long_names_are_cut_to_fit(self, user):
        original = ScheduledTaskFactory(name="n" * 100)
        copy = task_copy(task=original, user=user)
        assert len(copy.name) == 100
        assert copy.name.endswith(COPY_SUFFIX)


class TestTrigger:
    def test_writes_a_pending_manual_run_and_runs_nothing(self, task, user):
        execution = task_trigger(task=task, user=user, now=NOW)
        assert execution.status == Status.PENDING
        assert execution.trigger == TaskExecution.Trigger.MANUAL
        assert execution.triggered_by == user
        assert execution.scheduled_for == NOW
        assert execution.start_time is None

    def test_does_not_bump_the_version(self, task, user, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            task_trigger(task=task, user=user, now=NOW)
        assert callbacks == []

    def test_disabled_or_paused_task_can_be_triggered_and_stays_so(self, user):
        task = ScheduledTaskFactory(enabled=False, paused=True)
        task_trigger(task=task, user=user, now=NOW)
        task.refresh_from_db()
        assert task.enabled is False
        assert task.paused is True

    @pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.PAUSED])
    def test_skip_refuses_while_a_run_is_active(self, task, user, status):
        active = TaskExecutionFactory(task=task, status=status)
        with pytest.raises(RunActive, match=f"#{active.pk}"):
            task_trigger(task=task, user=user, now=NOW)
        assert TaskExecution.objects.count() == 1

    def test_skip_allows_after_the_run_ended(self, task, user):
        TaskExecutionFactory(task=task, status=Status.FAILED)
        assert task_trigger(task=task, user=user, now=NOW).status == Status.PENDING

    @pytest.mark.parametrize("policy", ["queue", "allow"])
    def test_queue_and_allow_add_a_pending_run(self, user, policy):
        task = ScheduledTaskFactory(overlap_policy=policy)
        running = TaskExecutionFactory(task=task, status=Status.RUNNING)
        new = task_trigger(task=task, user=user, now=NOW)
        running.refresh_from_db()
        assert new.status == Status.PENDING
        assert running.terminate_requested is False

    def test_replace_terminates_the_active_runs_first(self, user):
        task = ScheduledTaskFactory(overlap_policy="replace")
        running = TaskExecutionFactory(task=task, status=Status.RUNNING)
        queued = TaskExecutionFactory(task=task, status=Status.PENDING)
        new = task_trigger(task=task, user=user, now=NOW)
        running.refresh_from_db()
        queued.refresh_from_db()
        assert running.status == Status.RUNNING
        assert running.terminate_requested is True
        assert queued.status == Status.TERMINATED
        assert queued.error_message == str(EXECUTION_REPLACED)
        assert queued.end_time == NOW
        assert new.status == Status.PENDING

    def test_two_triggers_at_the_same_microsecond_both_get_a_row(self, user):
        task = ScheduledTaskFactory(overlap_policy="allow")
        first = task_trigger(task=task, user=user, now=NOW)
        second = task_trigger(task=task, user=user, now=NOW)
        assert first.pk != second.pk
        assert second.scheduled_for == first.scheduled_for == NOW


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_triggers_give_one_run():
    """Each thread has its own connection; the row lock on the task serialises the check and the insert."""
    task = ScheduledTaskFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def trigger() -> None:
        try:
            barrier.wait(timeout=10)
            task_trigger(task=task, user=SYSTEM)
            outcomes.append("queued")
        except RunActive:
            outcomes.append("refused")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["queued", "refused"]
    assert TaskExecution.objects.filter(task=task).count() == 1


def touch_then_fail() -> None:
    with transaction.atomic():
        schedule_touch()
        raise RuntimeError


class TestScheduleVersion:
    def test_bump_creates_the_state_row_when_missing(self, db):
        assert schedule_version_bump(now=NOW) == 1
        assert schedule_version_bump(now=NOW) == 2
        assert SchedulerState.objects.get(pk=1).changed_at == NOW

    def test_rolled_back_change_does_not_bump(self, db, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
            touch_then_fail()
        assert callbacks == []

    def test_a_touch_after_a_rolled_back_savepoint_registers_again(self, db, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
            with pytest.raises(RuntimeError):
                touch_then_fail()
            schedule_touch()
        assert len(callbacks) == 1
        assert version() == 1


@pytest.mark.django_db
class TestTiming:
    """One-shot times, calendar rules, validity windows, jitter and timed pauses, checked at save by the
    model, the trigger the scheduler will build, and the times that must lie ahead."""

    def test_a_calendar_rule_is_checked_like_the_trigger_checks_it(self, user):
        calendar = CalendarFactory(name="SSE")
        task = task_create(
            data=valid_data(cron_expression="0 9 * * *", calendar=calendar, calendar_rule="nth_of_month", calendar_n=1),
            user=user,
        )
        assert (task.calendar, task.calendar_rule, task.calendar_n) == (calendar, "nth_of_month", 1)
        for data, field in [
            ({"calendar": calendar, "calendar_rule": "nth_of_month"}, "calendar_n"),
            ({"calendar": calendar, "calendar_rule": "nth_of_week", "calendar_n": 9}, "calendar_n"),
            ({"calendar": calendar, "calendar_rule": "after_event", "calendar_n": 1}, "event_calendar"),
            ({"calendar_rule": "last_of_month", "calendar_n": 1}, "calendar"),
            ({"calendar": calendar, "cron_expression": None, "run_at": NOW.replace(year=2099)}, "calendar"),
        ]:
            with pytest.raises(ValidationError) as error:
                task_create(data=valid_data(name=f"bad-{field}", **data), user=user)
            assert field in error.value.message_dict, (data, error.value.message_dict)

    def test_a_one_shot_task_runs_at_a_time_ahead(self, user):
        run_at = timezone.now() + timedelta(hours=2)
        task = task_create(data=valid_data(cron_expression=None, run_at=run_at), user=user)
        assert task.run_at == run_at
        with pytest.raises(ValidationError) as error:
            task_create(data=valid_data(name="late", cron_expression=None, run_at=timezone.now()), user=user)
        assert error.value.message_dict["run_at"] == ["The one-shot time has passed; choose a time in the future."]
        with pytest.raises(ValidationError) as error:
            task_create(data=valid_data(name="both", run_at=run_at), user=user)
        assert "run_at" in error.value.message_dict
        with pytest.raises(ValidationError) as error:
            task_create(
                data=valid_data(name="bounded", cron_expression=None, run_at=run_at, valid_until=run_at), user=user
            )
        assert "run_at" in error.value.message_dict

    def test_a_one_shot_task_that_ran_can_be_edited_and_copied(self, user):
        task = ScheduledTaskFactory(interval_seconds=None, run_at=timezone.now() - timedelta(days=1))
        task_update(task=task, data={"description": "ran yesterday"}, user=user)  # its time did not change
        copy = task_copy(task=task, user=user)
        assert (copy.enabled, copy.run_at) == (False, task.run_at)
        with pytest.raises(ValidationError):
            task_enable(task=copy, user=user)  # enabling it with its time passed would run it at once

    def test_validity_window_and_jitter_bounds(self, user):
        start = timezone.now()
        with pytest.raises(ValidationError) as error:
            task_create(data=valid_data(valid_from=start, valid_until=start), user=user)
        assert "valid_until" in error.value.message_dict
        with pytest.raises(ValidationError) as error:
            task_create(data=valid_data(jitter_seconds=3601), user=user)
        assert "jitter_seconds" in error.value.message_dict
        task = task_create(
            data=valid_data(valid_from=start, valid_until=start + timedelta(days=1), jitter_seconds=60), user=user
        )
        assert task.jitter_seconds == 60
        with pytest.raises(ValidationError) as error:
            task_create(
                data=valid_data(name="piles", cron_expression=None, interval_seconds=60, jitter_seconds=60), user=user
            )
        assert error.value.message_dict["jitter_seconds"] == ["The jitter must be shorter than the interval."]

    def test_pause_until_a_time_ahead_and_resume_clears_it(self, user, django_capture_on_commit_callbacks):
        task = ScheduledTaskFactory()
        until = timezone.now() + timedelta(hours=1)
        with django_capture_on_commit_callbacks(execute=True):
            task = task_pause(task=task, user=user, until=until)
        assert (task.paused, task.paused_until) == (True, until)
        assert version() == 1
        with pytest.raises(ValidationError) as error:
            task_pause(task=task, user=user, until=timezone.now() - timedelta(seconds=1))
        assert error.value.message_dict["paused_until"] == ["Pause until a time in the future."]
        task = task_pause(task=task, user=user)  # paused until resumed by hand, now
        assert (task.paused, task.paused_until) == (True, None)
        task = task_pause(task=task, user=user, until=until)
        task = task_resume(task=task, user=user)
        assert (task.paused, task.paused_until) == (False, None)
        with pytest.raises(ValidationError) as error:
            task_update(task=task, data={"paused_until": until}, user=user)  # not paused
        assert "paused_until" in error.value.message_dict

    def test_the_scheduler_resumes_only_the_pauses_that_ended(self, django_capture_on_commit_callbacks):
        ended = ScheduledTaskFactory(paused=True, paused_until=NOW)
        later = ScheduledTaskFactory(paused=True, paused_until=NOW + timedelta(hours=1))
        untimed = ScheduledTaskFactory(paused=True)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            resumed = tasks_resume_expired(task_ids=[ended.pk, later.pk, untimed.pk], now=NOW + timedelta(seconds=1))
        assert resumed == [ended.pk]
        assert len(callbacks) == 1
        assert version() == 1
        states = dict(ScheduledTask.objects.values_list("pk", "paused"))
        assert states == {ended.pk: False, later.pk: True, untimed.pk: True}
        assert ScheduledTask.objects.get(pk=ended.pk).paused_until is None
        assert tasks_resume_expired(task_ids=[ended.pk], now=NOW + timedelta(seconds=2)) == []

    def test_copy_is_not_paused(self, user):
        task = ScheduledTaskFactory(paused=True, paused_until=timezone.now() + timedelta(hours=1), jitter_seconds=5)
        copy = task_copy(task=task, user=user)
        assert (copy.paused, copy.paused_until, copy.jitter_seconds) == (False, None, 5)
