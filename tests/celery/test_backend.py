"""The Celery backend's leader side without a broker: handover, queues, overlap, requeue, revoke, checks."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.checks import check_settings
from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.scheduling import dispatch, firing
from scheduler_app.scheduling.backends import CeleryBackend, ThreadBackend, celery_task_id, create_backend
from scheduler_app.scheduling.manager import SchedulerManager
from scheduler_app.selectors import pending_runs_due
from scheduler_app.services.executions import execution_terminate
from scheduler_app.services.permissions import SYSTEM
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db(transaction=True)

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
QUEUE = "zquant"


class FakeControl:
    def __init__(self) -> None:
        self.revoked: list[str] = []

    def revoke(self, task_ids: list[str]) -> None:
        self.revoked.extend(task_ids)


class FakeApp:
    """Records what the backend would send to the broker."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.control = FakeControl()

    def send_task(self, name: str, *, args: list, queue: str, task_id: str) -> None:
        self.sent.append({"name": name, "args": args, "queue": queue, "task_id": task_id})


@pytest.fixture
def backend():
    backend = CeleryBackend(pool_size=2, app=FakeApp())
    backend.start()
    yield backend
    backend.shutdown()


def fire(task, *, queue: str = QUEUE, at=None) -> int | None:
    occurrence = firing.Occurrence(
        task_id=task.pk,
        task_name=task.name,
        overlap_policy=task.overlap_policy,
        scheduled_for=at or timezone.now(),
        queue=queue,
    )
    started = firing.occurrences_fire(occurrences=[occurrence], worker="leader", host="h", pid=1)
    return started.rows[0].pk if started.rows else None


def test_an_occurrence_is_handed_over_pending_and_counts_as_active_for_skip():
    task = ScheduledTaskFactory(config=QUICK)
    first = fire(task)
    row = TaskExecution.objects.get(pk=first)
    assert (row.status, row.handover_queue, row.worker, row.start_time) == ("pending", QUEUE, "", None)
    assert row.trigger == "schedule"
    assert fire(task, at=timezone.now() + timedelta(seconds=1)) is None
    skipped = TaskExecution.objects.get(task=task, status="skipped")
    assert f"run #{first} was still active" in skipped.error_message


def test_queue_policy_waits_behind_a_handed_over_run_and_replace_cancels_it():
    queued = ScheduledTaskFactory(config=QUICK, overlap_policy="queue")
    fire(queued)
    assert fire(queued, at=timezone.now() + timedelta(seconds=1)) is None
    waiting = TaskExecution.objects.get(task=queued, handover_queue="")
    assert waiting.status == "pending"
    row = pending_runs_due(now=timezone.now() + timedelta(seconds=2), limit=10)
    assert [r["id"] for r in row] == [waiting.pk]  # the handed-over row is not dispatched again
    waiting_start = dispatch.pending_start(
        rows=row, worker="leader", host="h", pid=1, queues={queued.pk: QUEUE}
    )  # still behind the handed-over run
    assert waiting_start.rows == []

    replaced = ScheduledTaskFactory(config=QUICK, overlap_policy="replace")
    old = fire(replaced)
    fire(replaced, at=timezone.now() + timedelta(seconds=1))
    old_row = TaskExecution.objects.get(pk=old)
    assert old_row.status == "terminated"
    assert "Replaced" in old_row.error_message


def test_dispatch_hands_over_instead_of_claiming_and_sends_on_the_tasks_queue(backend):
    routed = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config={**QUICK, "queue": "fast"})
    plain = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config=QUICK)
    rows = [TaskExecutionFactory(task=task, scheduled_for=timezone.now()) for task in (routed, plain)]
    manager = SchedulerManager(pool_size=2, backend=backend)
    assert manager.dispatch(now=timezone.now()) == 2
    backend.shutdown()
    for row, queue in zip(rows, ("fast", "zquant"), strict=True):
        row.refresh_from_db()
        assert (row.status, row.handover_queue, row.start_time) == ("pending", queue, None)
    assert sorted((s["args"][0], s["queue"], s["task_id"]) for s in backend.app.sent) == [
        (rows[0].pk, "fast", celery_task_id(rows[0].pk)),
        (rows[1].pk, "zquant", celery_task_id(rows[1].pk)),
    ]
    assert {s["name"] for s in backend.app.sent} == {"scheduler_app.run_execution"}
    assert manager.dispatch(now=timezone.now()) == 0  # handed over once


def test_an_invalid_queue_falls_back_to_the_default_with_a_warning(backend, caplog):
    task = ScheduledTaskFactory(config={**QUICK, "queue": "no spaces allowed"})
    with caplog.at_level(logging.WARNING, logger="scheduler_app.scheduler"):
        assert backend.queue(task.pk) == QUEUE
    assert "not a valid queue name" in caplog.text


def test_a_run_cancelled_while_queued_gets_its_message_revoked(backend):
    task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config=QUICK)
    cancelled, started = (TaskExecutionFactory(task=task, scheduled_for=timezone.now()) for _ in range(2))
    for row in (cancelled, started):
        transitions.executions_hand_over(execution_ids=[row.pk], queue=QUEUE)
        backend.send(row.pk, queue=QUEUE)
    execution_terminate(execution=cancelled, user=SYSTEM)
    TaskExecution.objects.filter(pk=started.pk).update(status="running", worker="w1@host")
    backend.tick(timezone.now(), version=1)
    backend.shutdown()
    assert backend.app.control.revoked == [celery_task_id(cancelled.pk)]
    assert backend._queued == set()  # both settled: nothing left to watch


def test_runs_not_started_in_time_are_handed_back_and_sent_again(backend, settings):
    settings.SCHEDULER_CELERY_REQUEUE_SECONDS = 30
    task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config=QUICK, overlap_policy="allow")
    old, recent = (TaskExecutionFactory(task=task, scheduled_for=timezone.now()) for _ in range(2))
    long_ago = timezone.now() - timedelta(seconds=31)
    transitions.executions_hand_over(execution_ids=[old.pk], queue=QUEUE, now=long_ago)
    transitions.executions_hand_over(execution_ids=[recent.pk], queue=QUEUE)
    assert transitions.handovers_requeue(older_than=timezone.now() - timedelta(seconds=30)) == [old.pk]
    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, old.handover_queue, recent.handover_queue) == ("pending", "", QUEUE)
    manager = SchedulerManager(pool_size=2, backend=backend)
    assert manager.dispatch(now=timezone.now()) == 1
    backend.shutdown()
    assert [s["args"][0] for s in backend.app.sent] == [old.pk]


def test_the_thread_backend_is_the_default_and_claims_as_before(settings):
    assert isinstance(create_backend(pool_size=1), ThreadBackend)
    assert ThreadBackend(pool_size=3).capacity() == 3
    assert ThreadBackend(pool_size=1).queue(1) == ""


def test_checks_for_the_backend_setting(settings):
    settings.SCHEDULER_EXECUTION_BACKEND = "rabbit"
    assert [p.id for p in check_settings(None)] == ["scheduler_app.E004"]
    settings.SCHEDULER_EXECUTION_BACKEND = "celery"
    settings.SCHEDULER_CELERY_APP = "no_such_module.celery:app"
    assert [p.id for p in check_settings(None)] == ["scheduler_app.E003"]


def test_the_celery_task_claims_runs_and_ignores_rows_that_are_not_pending():
    pytest.importorskip("celery")
    from scheduler_app.celery_tasks import run_execution

    task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config=QUICK)
    row = TaskExecutionFactory(task=task, scheduled_for=timezone.now())
    transitions.executions_hand_over(execution_ids=[row.pk], queue=QUEUE)
    assert run_execution.apply(args=[row.pk]).get() == "success"
    row.refresh_from_db()
    assert row.status == "success"
    assert row.worker  # this process's name (a real worker writes its Celery hostname)
    assert row.handover_queue == QUEUE  # which queue it went through stays on the row
    assert run_execution.apply(args=[row.pk]).get() == "not claimed"  # a second delivery does nothing
