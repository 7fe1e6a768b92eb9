"""ExecutionContext and the monitor: progress rows, throttling, pause, terminate, timeout, heartbeat."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from scheduler_app.exceptions import ExecutionTerminated, ExecutionTimedOut
from scheduler_app.runtime.context import ExecutionContext
from scheduler_app.runtime.monitor import ExecutionMonitor, get_monitor
from scheduler_app.runtime.transitions import execution_claim
from tests.executors.helpers import make_execution, make_task, request, row, wait_for


@pytest.fixture
def running(db):
    execution = make_execution(make_task({"task_action": "example_task"}))
    assert execution_claim(execution_id=execution.pk, worker="tests")
    execution.refresh_from_db()
    return execution


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_writes_percent_items_eta_and_live_result(running):
    clock = FakeClock()
    ctx = ExecutionContext(running, clock=clock)
    clock.now += 10
    ctx.progress(processed=2, total=8, current_item="a", message="working", insert_count=3)
    assert row(running.pk).progress_percent == 0  # recorded: the monitor writes it (or a forced write)
    ctx.flush()
    saved = row(running.pk)
    assert saved.progress_percent == 25
    assert (saved.processed_items, saved.total_items, saved.current_item) == (2, 8, "a")
    eta = (saved.estimated_end_time - timezone.now()).total_seconds()
    assert 25 < eta <= 30  # 5 s per item, 6 items left
    assert saved.result == {
        "progress_percent": 25,
        "message": "working",
        "current_item": "a",
        "processed_items": 2,
        "total_items": 8,
        "insert_count": 3,
    }


def test_the_runs_own_thread_writes_only_forced_progress(running, django_assert_num_queries):
    """The monitor writes progress (throttled); the run's thread needs no database connection for it."""
    clock = FakeClock()
    ctx = ExecutionContext(running, clock=clock)
    with django_assert_num_queries(0):
        for index in range(50):
            ctx.progress(processed=index, total=100)
        clock.now += 10
        ctx.progress(processed=100, total=100)  # however long since the last write
        ctx.set_output("some output")
        ctx.set_child_process(None)
    with django_assert_num_queries(1):
        ctx.progress(processed=51, total=100, force=True)
    assert row(running.pk).processed_items == 51


def test_the_monitor_writes_progress_at_most_once_per_interval(running, django_assert_num_queries):
    clock = FakeClock()
    ctx = ExecutionContext(running, clock=clock)
    ctx.progress(processed=1, total=10)
    with django_assert_num_queries(0):
        ctx.flush_if_due()  # within 0.5 s of the claim's write
    clock.now += 0.6
    with django_assert_num_queries(1):
        ctx.flush_if_due()
    ctx.progress(processed=2, total=10, message="again")
    with django_assert_num_queries(0):
        ctx.flush_if_due()
    ctx.set_child_process(12345)  # a child is written at the next poll, whatever the interval
    with django_assert_num_queries(1):
        ctx.flush_if_due()
    saved = row(running.pk)
    assert (saved.processed_items, saved.result["message"], saved.child_pid) == (2, "again", 12345)


def test_the_monitor_writes_progress_a_run_left_unwritten(running):
    clock = FakeClock()
    ctx = ExecutionContext(running, clock=clock)
    ctx.progress(processed=3, total=4, current_item="c")
    monitor = ExecutionMonitor()
    monitor.register(ctx)
    try:
        monitor.poll_once()
        assert row(running.pk).processed_items == 0  # not due yet
        clock.now += 0.6
        monitor.poll_once()
        saved = row(running.pk)
        assert (saved.processed_items, saved.current_item, saved.progress_percent) == (3, "c", 75)
    finally:
        monitor.unregister(ctx)
        monitor.stop()


def test_a_quick_run_writes_its_progress_only_with_its_final_state(db, django_assert_max_num_queries):
    from scheduler_app.runtime.runner import execution_execute

    execution = make_execution(make_task({"task_action": "example_task", "steps": 3, "duration_seconds": 0}))
    assert execution_claim(execution_id=execution.pk, worker="tests")
    execution = type(execution).objects.select_related("task").get(pk=execution.pk)
    # One transaction: the final UPDATE, the day statistics and the task's latest execution (the test's
    # savepoint and its release count here too).
    with django_assert_max_num_queries(5):
        final = execution_execute(execution_id=execution.pk, execution=execution)
    assert (final.status, final.processed_items, final.progress_percent) == ("success", 3, 100)
    assert row(execution.pk).status == "success"


def test_percent_is_clamped_and_explicit_percent_wins(running):
    ctx = ExecutionContext(running)
    ctx.progress(processed=12, total=10, force=True)
    assert row(running.pk).progress_percent == 100
    ctx.progress(percent=-5, force=True)
    assert row(running.pk).progress_percent == 0


def test_writes_never_touch_a_terminal_row(running):
    ctx = ExecutionContext(running)
    request(running.pk, status="terminated")
    ctx.progress(processed=1, total=2, force=True)
    ctx.heartbeat()
    saved = row(running.pk)
    assert (saved.status, saved.processed_items) == ("terminated", 0)


def test_check_raises_on_terminate(running):
    ctx = ExecutionContext(running)
    ctx.check()
    ctx._apply_flags(is_paused=False, terminate_requested=True)
    assert ctx.should_stop
    with pytest.raises(ExecutionTerminated):
        ctx.check()
    with pytest.raises(ExecutionTerminated):
        ctx.progress(processed=1)


def test_terminate_is_not_an_exception_an_action_can_swallow(running):
    ctx = ExecutionContext(running)
    ctx._apply_flags(is_paused=False, terminate_requested=True)

    def swallowing_action() -> None:
        try:
            ctx.check()
        except Exception:  # what zquant's factor calculation did
            pytest.fail("swallowed")

    with pytest.raises(ExecutionTerminated):
        swallowing_action()


def test_a_row_ended_elsewhere_stops_the_run(running):
    ctx = ExecutionContext(running)
    ctx._apply_ended("terminated")
    with pytest.raises(ExecutionTerminated, match="ended elsewhere"):
        ctx.check()


def test_timeout_counts_working_time_only(running):
    clock = FakeClock()
    ctx = ExecutionContext(running, timeout=10, clock=clock)
    clock.now += 9
    ctx.check()
    ctx._pause_began = clock.now  # paused for 100 s
    clock.now += 100
    ctx._paused_total += clock.now - ctx._pause_began
    ctx._pause_began = None
    ctx.check()
    clock.now += 2
    with pytest.raises(ExecutionTimedOut, match="timed out after 10 s"):
        ctx.check()


def test_limit_time_only_tightens(running):
    ctx = ExecutionContext(running, timeout=10)
    ctx.limit_time(60)
    assert ctx.timeout == 10
    ctx.limit_time(2)
    assert ctx.timeout == 2


def test_checkpoint_is_written_at_once_and_read_by_the_resumed_run(running):
    ctx = ExecutionContext(running, clock=FakeClock())
    ctx.progress(processed=1, total=3)
    ctx.checkpoint("000002.SZ", failed_items=["000001.SZ"])
    saved = row(running.pk)
    assert saved.current_item == "000002.SZ"
    assert saved.result["checkpoint"] == {"last_item": "000002.SZ", "failed_items": ["000001.SZ"]}
    resumed = make_execution(running.task, trigger="resume", result={"resume_from_execution_id": running.pk})
    resumed_ctx = ExecutionContext(resumed)
    assert resumed_ctx.resume_from == saved
    assert resumed_ctx.resume_checkpoint() == {"last_item": "000002.SZ", "failed_items": ["000001.SZ"]}
    assert resumed_ctx.live_result()["resume_from_execution_id"] == running.pk


def test_checkpoint_falls_back_to_current_item(running):
    request(running.pk, current_item="600000.SH", status="failed")
    resumed = make_execution(running.task, trigger="resume", result={"resume_from_execution_id": running.pk})
    assert ExecutionContext(resumed).resume_checkpoint() == {"last_item": "600000.SH"}
    assert ExecutionContext(make_execution(running.task)).resume_checkpoint() == {}


@pytest.mark.django_db(transaction=True)
def test_monitor_reads_flags_and_writes_heartbeats_in_one_query_each(django_assert_num_queries, settings):
    settings.SCHEDULER_HEARTBEAT_SECONDS = 0
    task = make_task({"task_action": "example_task"})
    executions = [make_execution(task) for _ in range(3)]
    for execution in executions:
        execution_claim(execution_id=execution.pk, now=timezone.now() - timedelta(minutes=5))
        execution.refresh_from_db()
    monitor = ExecutionMonitor()
    contexts = [ExecutionContext(execution) for execution in executions]
    for ctx in contexts:
        monitor._contexts[ctx.execution_id] = ctx  # registered without starting the thread
    request(executions[0].pk, is_paused=True)
    request(executions[1].pk, terminate_requested=True)
    request(executions[2].pk, status="terminated")
    # The flags, then one transaction for the writes (the test's savepoint and its release count here).
    with django_assert_num_queries(4):
        monitor.poll_once()
    assert contexts[0].pause_requested
    assert not contexts[0].terminate_requested
    assert contexts[1].terminate_requested
    assert contexts[2].terminate_requested  # ended elsewhere
    beats = {execution.pk: row(execution.pk).heartbeat_at for execution in executions}
    assert timezone.now() - beats[executions[0].pk] < timedelta(seconds=5)
    assert timezone.now() - beats[executions[2].pk] > timedelta(minutes=4)  # a terminal row is not touched


@pytest.mark.django_db(transaction=True)
def test_pause_blocks_the_run_and_shows_paused_then_running(fast):
    execution = make_execution(make_task({"task_action": "example_task"}))
    execution_claim(execution_id=execution.pk)
    execution.refresh_from_db()
    ctx = ExecutionContext(execution)
    monitor = get_monitor()
    monitor.register(ctx)
    events: list[str] = []

    def work() -> None:
        try:
            for _ in range(200):
                ctx.check(on_pause=lambda: events.append("pause"), on_resume=lambda: events.append("resume"))
                time.sleep(0.01)
            events.append("done")
        except ExecutionTerminated:
            events.append("terminated")
        finally:
            connections.close_all()

    try:
        request(execution.pk, is_paused=True)
        thread = threading.Thread(target=work)
        thread.start()
        wait_for(lambda: row(execution.pk).status == "paused")
        assert events == ["pause"]
        request(execution.pk, is_paused=False)
        wait_for(lambda: row(execution.pk).status == "running")
        assert events[:2] == ["pause", "resume"]
        request(execution.pk, is_paused=True)
        wait_for(lambda: row(execution.pk).status == "paused")
        request(execution.pk, terminate_requested=True)  # terminate also ends a pause
        thread.join(5)
        assert events[-1] == "terminated"
        assert ctx.active_seconds() < 3
    finally:
        monitor.unregister(ctx)


@pytest.mark.django_db
def test_the_row_says_paused_only_once_the_work_is_held():
    """A reader that sees `paused` may rely on it: the command's processes are stopped by then (the row
    used to say paused before SIGSTOP was sent, and a check of the process could still see it running)."""
    execution = make_execution(make_task({"task_action": "example_task"}))
    execution_claim(execution_id=execution.pk)
    execution.refresh_from_db()
    ctx = ExecutionContext(execution)
    ctx._apply_flags(is_paused=True, terminate_requested=False)
    seen_while_holding: list[str] = []

    def hold() -> None:
        seen_while_holding.append(row(execution.pk).status)
        ctx._apply_flags(is_paused=False, terminate_requested=False)  # resume at once

    ctx.check(on_pause=hold)
    assert seen_while_holding == ["running"]
    assert row(execution.pk).status == "running"
