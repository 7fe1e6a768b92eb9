"""The notifier: events found from stored facts (real runs through the runner), counted once each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app.models import (
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    OperationsCounter,
    OperationsState,
    SchedulerState,
    TaskExecution,
)
from scheduler_app.ops import counters
from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import db_now
from scheduler_app.runtime.runner import execution_run
from scheduler_app.runtime.transitions import PlannedOccurrence
from scheduler_app.scheduling.notifier import FEED_SETTLE_SECONDS, Notifier
from tests.executors.helpers import fast, make_task  # noqa: F401 - fast is a fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast")]

FAILING = {"task_action": "example_task", "steps": 1, "duration_seconds": 0, "success_rate": 0}
QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
Kind = NotificationEvent.Kind


def settled():
    """A moment by which every run that ended so far has settled for the notifier."""
    return db_now() + timedelta(seconds=FEED_SETTLE_SECONDS + 0.5)


@pytest.fixture
def notifier():
    watcher = Notifier(node_id="node-a")
    watcher.run_pass(now=db_now())  # the first pass starts the watermark at the present
    return watcher


@pytest.fixture
def subscription():
    return NotificationSubscription.objects.create(
        name="on call", channel="webhook", webhook_url="http://127.0.0.1:9/hook", on_skip=True
    )


def run_now(task) -> TaskExecution:
    execution = transitions.execution_queue(task_id=task.pk, trigger=TaskExecution.Trigger.MANUAL)
    return execution_run(execution_id=execution.pk)


def run_retries(task) -> list[TaskExecution]:
    ran = []
    while retry := TaskExecution.objects.filter(task=task, status="pending", trigger="retry").first():
        ran.append(execution_run(execution_id=retry.pk))
    return ran


def events(kind=None):
    rows = NotificationEvent.objects.order_by("id")
    return list(rows.filter(kind=kind) if kind else rows)


def counter(name, task_pk=0, label=""):
    row = OperationsCounter.objects.filter(name=name, task_pk=task_pk, label=label).first()
    return row.value if row else 0


def test_a_failure_is_reported_once_after_its_last_retry_and_its_recovery_once(notifier, subscription):
    task = make_task(FAILING, max_retries=2, retry_interval=0)
    first = run_now(task)
    assert first.status == "failed"
    notifier.run_pass(now=settled())
    assert events(Kind.FAILED) == []  # a retry is due: not the last attempt
    retries = run_retries(task)
    assert [run.status for run in retries] == ["failed", "failed"]
    notifier.run_pass(now=settled())
    notifier.run_pass(now=settled())  # read again: nothing new
    [failed] = events(Kind.FAILED)
    assert failed.execution_id == retries[-1].pk
    assert failed.task_id == task.pk
    assert "attempt 3" in failed.summary
    assert failed.resolved_at is None
    assert NotificationDelivery.objects.filter(event=failed, state="pending").count() == 1

    task.config = QUICK
    task.save()
    run_now(task)
    run_now(task)  # a second success is no second recovery
    notifier.run_pass(now=settled())
    [recovered] = events(Kind.RECOVERED)
    assert recovered.task_id == task.pk
    failed.refresh_from_db()
    assert failed.resolved_at is not None
    assert counter(counters.RUNS, task.pk, "failed") == 3
    assert counter(counters.RUNS, task.pk, "success") == 2


def test_a_failure_and_a_success_in_one_batch_close_each_other(notifier):
    task = make_task(FAILING, max_retries=0)
    run_now(task)
    task.config = QUICK
    task.save()
    run_now(task)
    notifier.run_pass(now=settled())
    assert [event.kind for event in events()] == [Kind.FAILED, Kind.RECOVERED]
    assert events(Kind.FAILED)[0].resolved_at is not None


def test_a_retried_success_is_no_recovery(notifier):
    task = make_task(FAILING, max_retries=1, retry_interval=0)
    run_now(task)
    task.config = QUICK
    task.save()
    assert [run.status for run in run_retries(task)] == ["success"]
    notifier.run_pass(now=settled())
    assert events() == []


def test_terminated_on_request_is_not_a_failure_but_a_lost_run_is(notifier):
    task = make_task(QUICK, max_retries=0)
    asked = transitions.execution_queue(task_id=task.pk, trigger="manual")
    transitions.executions_cancel(execution_ids=[asked.pk], reason="cancelled by ops")
    lost = transitions.execution_queue(task_id=task.pk, trigger="manual")
    transitions.execution_claim(execution_id=lost.pk, worker="gone")
    lost.refresh_from_db()
    transitions.execution_orphan(execution=lost, reason="orphaned: its process is gone")
    notifier.run_pass(now=settled())
    [failed] = events(Kind.FAILED)
    assert failed.execution_id == lost.pk


def test_skipped_occurrences_are_one_event_per_task_and_pass(notifier, subscription):
    task = make_task(QUICK, task_type="common_task", interval_seconds=1)
    now = db_now()
    transitions.executions_record_round(
        planned=[
            PlannedOccurrence(task_id=task.pk, occurrence_at=now - timedelta(seconds=s), kind="skip", reason="missed")
            for s in (3, 2, 1)
        ],
        worker="w",
        host="h",
        pid=1,
    )
    notifier.run_pass(now=settled())
    notifier.run_pass(now=settled())
    [skipped] = events(Kind.SKIPPED)
    assert skipped.count == 3
    assert "3 occurrences skipped (missed)" in skipped.summary
    assert NotificationDelivery.objects.get(event=skipped).state == "pending"


def test_the_watermark_survives_a_new_leader(notifier):
    task = make_task(FAILING, max_retries=0)
    run_now(task)
    notifier.run_pass(now=settled())
    Notifier(node_id="node-b").run_pass(now=settled())  # a new leader reads from the stored watermark
    assert len(events(Kind.FAILED)) == 1
    assert counter(counters.RUNS, task.pk, "failed") == 1
    assert counter(counters.LEASE_CHANGES) == 2
    assert OperationsState.objects.get().leader_seen == "node-b"


def test_a_run_far_beyond_its_p95_is_stuck_once(notifier, settings):
    settings.SCHEDULER_NOTIFY_STUCK_MIN_SECONDS = 1
    task = make_task(QUICK)
    for _ in range(5):
        run_now(task)
    TaskExecution.objects.filter(task=task).update(duration_seconds=0.2)
    slow = transitions.execution_queue(task_id=task.pk, trigger="manual")
    transitions.execution_claim(execution_id=slow.pk, worker="w", now=db_now() - timedelta(seconds=5))
    notifier.run_pass(now=db_now())
    notifier.run_pass(now=db_now())
    [stuck] = events(Kind.STUCK)
    assert stuck.execution_id == slow.pk
    assert "3 × its recent p95 of 0.2 s" in stuck.summary


def test_a_run_whose_progress_stops_while_it_beats_is_stuck(notifier, settings):
    settings.SCHEDULER_NOTIFY_STALL_SECONDS = 60
    task = make_task(QUICK)
    run = transitions.execution_queue(task_id=task.pk, trigger="manual")
    transitions.execution_claim(execution_id=run.pk, worker="w")
    TaskExecution.objects.filter(pk=run.pk).update(processed_items=3, total_items=10, progress_percent=30)
    now = db_now()
    notifier.run_pass(now=now)
    TaskExecution.objects.filter(pk=run.pk).update(heartbeat_at=now + timedelta(seconds=61))
    notifier.run_pass(now=now + timedelta(seconds=61))
    [stuck] = events(Kind.STUCK)
    assert stuck.key == f"stalled:{run.pk}"
    assert "has not moved for 61 s" in stuck.summary


def test_a_hand_over_no_worker_takes_is_reported_once_per_episode(notifier, settings):
    settings.SCHEDULER_NOTIFY_HANDOVER_SECONDS = 60
    task = make_task(QUICK)
    waiting = transitions.execution_queue(
        task_id=task.pk, trigger="manual", scheduled_for=db_now() - timedelta(minutes=5)
    )
    transitions.executions_hand_over(execution_ids=[waiting.pk], queue="zquant")
    notifier.run_pass(now=db_now())
    notifier.run_pass(now=db_now())
    [stuck] = events(Kind.HANDOVER_STUCK)
    assert "queue zquant" in stuck.summary
    assert stuck.execution_id == waiting.pk


def test_a_live_leader_closes_an_outage(notifier):
    outage = NotificationEvent.objects.create(
        kind=Kind.NO_SCHEDULER, key="no_scheduler:x", summary="No live scheduler", detected_at=db_now()
    )
    notifier.run_pass(now=db_now())
    outage.refresh_from_db()
    assert outage.resolved_at is not None
    [back] = events(Kind.RECOVERED)
    assert "node-a leads" in back.summary
    assert SchedulerState.objects.count() == 0  # read nothing of the scheduler's own state
