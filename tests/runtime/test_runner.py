"""The runner: claim, execute, finish (terminal states are final, terminate wins), retries, DB outages."""

from __future__ import annotations

import glob
import logging
import os
import socket
import tempfile
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import OperationalError

from scheduler_app.actions import action, unregister_action
from scheduler_app.models import TaskExecution
from scheduler_app.runtime import runner as runs
from scheduler_app.runtime import transitions
from scheduler_app.runtime.runner import execution_execute, execution_run
from scheduler_app.runtime.transitions import execution_claim, execution_schedule_retry, retry_delay_seconds
from tests.executors.helpers import (  # noqa: F401 - fast is a fixture
    fast,
    make_execution,
    make_task,
    python_command,
    run_config,
)

pytestmark = pytest.mark.usefixtures("fast")

FAILING = {"task_action": "example_task", "steps": 1, "duration_seconds": 0, "success_rate": 0}
QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


@pytest.fixture
def test_action():
    """Register a throw-away action; `body(ctx)` decides what it does."""
    registered = []

    def register(name, body):
        action(name)(lambda ctx, params: body(ctx))
        registered.append(name)

    yield register
    for name in registered:
        unregister_action(name)


# --------------------------------------------------------------------------- claim


@pytest.mark.django_db
def test_claim_takes_a_pending_row_once():
    execution = make_execution(make_task(QUICK))
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert execution_claim(execution_id=execution.pk, worker="node-1", now=now)
    execution.refresh_from_db()
    assert execution.status == "running"
    assert execution.start_time == execution.heartbeat_at == now
    assert (execution.host, execution.pid, execution.worker) == (socket.gethostname(), os.getpid(), "node-1")
    assert not execution_claim(execution_id=execution.pk, worker="node-2")
    execution.refresh_from_db()
    assert execution.worker == "node-1"


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["running", "paused", "success", "failed", "terminated", "skipped"])
def test_only_pending_rows_can_be_claimed(status):
    execution = make_execution(make_task(QUICK), status=status)
    assert not execution_claim(execution_id=execution.pk)
    execution.refresh_from_db()
    assert execution.status == status


@pytest.mark.django_db
def test_execute_leaves_a_row_that_is_not_running_alone():
    execution = make_execution(make_task(QUICK))
    assert execution_execute(execution_id=execution.pk).status == "pending"
    execution.refresh_from_db()
    assert execution.start_time is None


# --------------------------------------------------------------------------- finish


@pytest.mark.django_db
def test_success_records_the_end():
    execution = run_config(QUICK)
    assert execution.status == "success"
    assert execution.end_time >= execution.start_time
    assert execution.duration_seconds == pytest.approx(
        (execution.end_time - execution.start_time).total_seconds(), abs=0.001
    )
    assert execution.progress_percent == 100
    assert execution.error_message == ""
    assert execution.estimated_end_time is None
    assert execution.result["success"] is True


@pytest.mark.django_db
def test_a_result_that_says_failure_is_a_failure(test_action):
    test_action("tests_soft_fail", lambda ctx: {"success": False, "message": "3 of 5 stocks failed", "total": 5})
    execution = run_config({"task_action": "tests_soft_fail"}, max_retries=1)
    assert execution.status == "failed"
    assert execution.error_message == "3 of 5 stocks failed"
    assert execution.result["total"] == 5
    assert execution.children.get().trigger == "retry"


@pytest.mark.django_db
def test_an_exception_fails_the_run_with_its_message(test_action, caplog):
    def boom(ctx):
        raise ValueError("bad input file")

    test_action("tests_boom", boom)
    with caplog.at_level(logging.ERROR):
        execution = run_config({"task_action": "tests_boom"}, max_retries=0)
    assert execution.status == "failed"
    assert execution.error_message == "ValueError: bad input file"
    assert "Traceback" in caplog.text


@pytest.mark.django_db
def test_an_interrupt_is_recorded_then_raised_again(test_action):
    def interrupt(ctx):
        raise KeyboardInterrupt

    test_action("tests_interrupt", interrupt)
    execution = make_execution(make_task({"task_action": "tests_interrupt"}, max_retries=0))
    with pytest.raises(KeyboardInterrupt):
        execution_run(execution_id=execution.pk)
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert "interrupted" in execution.error_message


@pytest.mark.django_db
def test_a_terminal_state_written_meanwhile_is_never_overwritten(test_action):
    def ended_elsewhere(ctx):
        TaskExecution.objects.filter(pk=ctx.execution_id).update(status="terminated", error_message="orphaned")
        return {"success": True, "message": "done anyway"}

    test_action("tests_ended_elsewhere", ended_elsewhere)
    execution = run_config({"task_action": "tests_ended_elsewhere"})
    assert execution.status == "terminated"
    assert execution.error_message == "orphaned"
    assert execution.result == {}
    assert not execution.children.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", [{"success": True}, {"success": False, "message": "soft"}])
def test_a_terminate_request_wins_over_the_outcome_and_is_not_retried(test_action, outcome):
    def asked_to_stop(ctx):
        TaskExecution.objects.filter(pk=ctx.execution_id).update(terminate_requested=True)
        return outcome

    test_action("tests_asked_to_stop", asked_to_stop)
    execution = run_config({"task_action": "tests_asked_to_stop"}, max_retries=3)
    assert execution.status == "terminated"
    assert execution.error_message.startswith("terminated on request")
    assert not execution.children.exists()


@pytest.mark.django_db
def test_a_reason_written_with_the_request_becomes_the_error(test_action):
    def stopped_by_the_scheduler(ctx):
        TaskExecution.objects.filter(pk=ctx.execution_id).update(
            terminate_requested=True, error_message="scheduler stopping (SIGTERM)"
        )
        ctx._apply_flags(is_paused=False, terminate_requested=True)  # as the monitor would
        ctx.check()

    test_action("tests_stopped", stopped_by_the_scheduler)
    execution = run_config({"task_action": "tests_stopped"})
    assert execution.status == "terminated"
    assert execution.error_message == "scheduler stopping (SIGTERM)"
    assert execution.result["message"] == "scheduler stopping (SIGTERM)"


@pytest.mark.django_db(transaction=True)
def test_a_time_limit_applies_to_actions():
    execution = run_config({"task_action": "example_task", "steps": 50, "duration_seconds": 10}, timeout_seconds=1)
    assert execution.status == "failed"
    assert execution.error_message == "timed out after 1 s"
    assert 0 < execution.processed_items < 50


@pytest.mark.django_db
def test_an_unknown_task_type_fails_loudly():
    task = make_task(QUICK, task_type="common_task", interval_seconds=60)
    type(task).objects.filter(pk=task.pk).update(task_type="script")
    execution = execution_run(execution_id=make_execution(task).pk)
    assert execution.status == "failed"
    assert "No executor for task type 'script'" in execution.error_message


# --------------------------------------------------------------------------- database outages


@pytest.mark.django_db
def test_the_final_write_is_retried_through_a_database_outage(monkeypatch, caplog):
    original = transitions.execution_finish
    failures = iter([OperationalError("server has gone away"), OperationalError("server has gone away")])

    def flaky(**kwargs):
        error = next(failures, None)
        if error is not None:
            raise error
        return original(**kwargs)

    monkeypatch.setattr(transitions, "execution_finish", flaky)
    monkeypatch.setattr(runs, "_reconnect", lambda: None)  # keep the test transaction
    monkeypatch.setattr(runs, "_in_transaction", lambda: False)
    monkeypatch.setattr(runs, "_close_old_connections", lambda: None)
    with caplog.at_level(logging.ERROR):
        execution = run_config(QUICK)
    assert execution.status == "success"
    assert caplog.text.count("writing the final state failed") == 2


@pytest.mark.django_db
def test_a_final_write_that_never_succeeds_is_logged_loudly(monkeypatch, caplog):
    def down(**kwargs):
        raise OperationalError("can't connect")

    monkeypatch.setattr(transitions, "execution_finish", down)
    monkeypatch.setattr(runs, "_reconnect", lambda: None)  # keep the test transaction
    monkeypatch.setattr(runs, "_in_transaction", lambda: False)
    monkeypatch.setattr(runs, "_close_old_connections", lambda: None)
    with caplog.at_level(logging.CRITICAL):
        execution = run_config(QUICK)
    assert execution.status == "running"  # left for the orphan check, not silently
    assert "could not record its final state 'success'" in caplog.text
    assert any(record.levelno == logging.CRITICAL for record in caplog.records)


# --------------------------------------------------------------------------- retries


@pytest.mark.django_db
def test_max_retries_is_honoured_exactly_with_backoff():
    task = make_task(FAILING, max_retries=3, retry_interval=60, retry_backoff=2)
    start = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    finished_at = []
    with time_machine.travel(start, tick=False) as traveller:
        execution = execution_run(execution_id=make_execution(task).pk)
        finished_at.append(execution.end_time)
        for attempt in range(1, 4):
            retry = TaskExecution.objects.get(parent=execution)
            assert (retry.status, retry.trigger, retry.retry_count) == ("pending", "retry", attempt)
            assert retry.scheduled_for == execution.end_time + timedelta(seconds=60 * 2 ** (attempt - 1))
            traveller.move_to(retry.scheduled_for + timedelta(seconds=1))
            execution = execution_run(execution_id=retry.pk)
            assert execution.status == "failed"
    assert TaskExecution.objects.filter(task=task).count() == 4  # the run and exactly three retries
    assert not TaskExecution.objects.filter(parent=execution).exists()
    delays = [
        (row.scheduled_for - row.parent.end_time).total_seconds()
        for row in TaskExecution.objects.filter(task=task, trigger="retry").select_related("parent").order_by("id")
    ]
    assert delays == [60, 120, 240]


@pytest.mark.django_db
def test_no_retry_without_attempts_left():
    assert not run_config(FAILING, max_retries=0).children.exists()


@pytest.mark.django_db
def test_a_retry_that_succeeds_ends_the_chain():
    task = make_task(FAILING, max_retries=5, retry_interval=0)
    first = execution_run(execution_id=make_execution(task).pk)
    type(task).objects.filter(pk=task.pk).update(config=QUICK)
    retry = TaskExecution.objects.get(parent=first)
    assert execution_run(execution_id=retry.pk).status == "success"
    assert TaskExecution.objects.filter(task=task).count() == 2


@pytest.mark.django_db
def test_retries_read_the_current_task_settings():
    task = make_task(FAILING, max_retries=5)
    execution = make_execution(task, status="failed", retry_count=2)
    type(task).objects.filter(pk=task.pk).update(max_retries=2)
    assert execution_schedule_retry(execution=execution) is None


@pytest.mark.django_db
def test_workflow_steps_are_not_retried_one_by_one():
    execution = make_execution(make_task(FAILING, max_retries=3), status="failed", trigger="workflow")
    assert execution_schedule_retry(execution=execution) is None


@pytest.mark.django_db
def test_an_orphaned_run_can_be_retried_by_the_scheduler():
    execution = make_execution(make_task(FAILING, max_retries=1), status="terminated", trigger="schedule")
    now = datetime(2024, 1, 1, tzinfo=UTC)
    retry = execution_schedule_retry(execution=execution, now=now, delay_seconds=0)
    assert (retry.retry_count, retry.scheduled_for) == (1, now)


@pytest.mark.django_db
def test_a_retry_keeps_who_triggered_the_run():
    from tests.factories import UserFactory

    user = UserFactory()
    execution = make_execution(make_task(FAILING, max_retries=1), status="failed", triggered_by=user)
    retry = execution_schedule_retry(execution=execution, now=datetime(2024, 1, 1, tzinfo=UTC))
    assert retry.triggered_by == user
    assert retry.scheduled_for == datetime(2024, 1, 1, 0, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_retries_due_at_the_same_instant_are_both_recorded():
    """Only scheduled occurrences are unique per task; two retries may well be due at one instant."""
    task = make_task(FAILING, max_retries=3, retry_interval=60)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    first = make_execution(task, status="failed")
    second = make_execution(task, status="failed")
    one = execution_schedule_retry(execution=first, now=now)
    two = execution_schedule_retry(execution=second, now=now)
    assert one.pk != two.pk
    assert one.scheduled_for == two.scheduled_for


def test_retry_delay_grows_by_the_backoff_and_is_capped():
    assert retry_delay_seconds(retry_interval=60, retry_backoff=1, retry_count=5) == 60
    assert retry_delay_seconds(retry_interval=10, retry_backoff=3, retry_count=2) == 90
    assert (
        retry_delay_seconds(retry_interval=60, retry_backoff=10, retry_count=400) == transitions.MAX_RETRY_DELAY_SECONDS
    )


# --------------------------------------------------------------------------- between the claim and the start


@pytest.mark.django_db
@pytest.mark.parametrize("stored", ["'[1, 2]'", "'\"text\"'", "'null'"], ids=["a list", "a string", "null"])
def test_a_run_whose_config_is_not_an_object_fails_at_once_with_the_error(stored):
    """A config written by SQL used to make the context raise: the row stayed `running`, silent, until
    the orphan check, and the task skipped its occurrences meanwhile."""
    from django.db import connection

    execution = make_execution(make_task(QUICK))
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE zq_task_scheduled_tasks SET config = {stored} WHERE id = %s", [execution.task_id])
    final = execution_run(execution_id=execution.pk)
    assert final.status == "failed"
    assert "The config must be a JSON object" in final.error_message
    assert final.end_time is not None


@pytest.mark.django_db
def test_any_error_before_the_executor_starts_ends_the_run_failed(monkeypatch):
    from scheduler_app.runtime import context

    def broken(*args, **kwargs):
        raise RuntimeError("bookkeeping exploded")

    monkeypatch.setattr(context.ExecutionContext, "__init__", broken)
    final = execution_run(execution_id=make_execution(make_task(QUICK)).pk)
    assert final.status == "failed"
    assert final.error_message == "the run could not start: RuntimeError: bookkeeping exploded"


@pytest.mark.django_db
def test_a_claim_its_claimer_may_no_longer_start_is_handed_back_unstarted():
    started_work = []
    execution = make_execution(make_task(QUICK))
    assert execution_claim(execution_id=execution.pk, worker="leader-1")
    assert execution_execute(execution_id=execution.pk, may_start=lambda: started_work.append(1) and False) is None
    execution.refresh_from_db()
    assert (execution.status, execution.worker, execution.start_time) == ("pending", "", None)


def lease_lost_after(checks: int):
    """A claimer's lease check that says yes `checks` times, then no (it lost the lease meanwhile)."""
    answers = iter([True] * checks)
    return lambda: next(answers, False)


@pytest.mark.django_db
def test_a_claimer_that_loses_the_lease_while_the_run_is_prepared_does_not_begin_the_work(test_action):
    began = []
    test_action("lease_probe", lambda ctx: began.append(ctx.execution_id))
    execution = make_execution(make_task({"task_action": "lease_probe"}))
    assert execution_claim(execution_id=execution.pk, worker="leader-1")
    assert execution_execute(execution_id=execution.pk, may_start=lease_lost_after(1)) is None
    execution.refresh_from_db()
    assert began == []
    assert (execution.status, execution.worker, execution.start_time) == ("pending", "", None)
    assert execution.pk not in runs.get_monitor().execution_ids


@pytest.mark.django_db
def test_a_command_is_not_launched_once_its_claimer_lost_the_lease(tmp_path):
    """Preparing a command (its home, environment and supervisor) takes milliseconds, seconds on a
    starved machine: the lease is asked again just before the command can begin."""
    marker = tmp_path / "began"
    execution = make_execution(make_task({"command": python_command(f"open({str(marker)!r}, 'w')")}))
    assert execution_claim(execution_id=execution.pk, worker="leader-1")
    homes_before = set(glob.glob(os.path.join(tempfile.gettempdir(), f"zquant-exec-{execution.pk}-*")))
    assert execution_execute(execution_id=execution.pk, may_start=lease_lost_after(2)) is None
    execution.refresh_from_db()
    assert not marker.exists()
    assert (execution.status, execution.child_pid) == ("pending", None)
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), f"zquant-exec-{execution.pk}-*"))) == homes_before
