"""Recording a scheduling round (scheduling/firing.py): every occurrence due in one round with one
INSERT, whatever the batch, through the overlap decision and the free slots.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from scheduler_app.models import TaskExecution
from scheduler_app.scheduling.firing import Occurrence, occurrences_fire
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


def occurrence(task, at, **kwargs) -> Occurrence:
    return Occurrence(
        task_id=task.pk, task_name=task.name, overlap_policy=task.overlap_policy, scheduled_for=at, **kwargs
    )


def fire(occurrences, **kwargs):
    return occurrences_fire(occurrences=occurrences, worker="node-1", host="h", pid=7, **kwargs)


@pytest.mark.parametrize("count", [3, 30])
def test_a_round_is_recorded_in_a_constant_number_of_queries(count, django_assert_max_num_queries):
    tasks = ScheduledTaskFactory.create_batch(count, config=QUICK, overlap_policy="skip")
    due = timezone.now().replace(microsecond=0)
    # The runs holding the schedule, the INSERT and the tasks' latest execution in one transaction (the
    # test's savepoint and its release count too), the tasks: the same for 3 tasks and for 30.
    with django_assert_max_num_queries(8):
        started = fire([occurrence(task, due) for task in tasks])
    assert len(started.rows) == count
    assert started.short_of_slots == 0
    rows = TaskExecution.objects.filter(scheduled_for=due)
    assert rows.count() == count
    for row in started.rows:
        assert (row.status, row.worker, row.trigger) == ("running", "node-1", "schedule")
        assert row.start_time >= row.scheduled_for
        assert row.task.config == QUICK  # loaded with the rows, ready to run


def test_only_free_slots_are_claimed_and_the_rest_wait_pending():
    tasks = ScheduledTaskFactory.create_batch(3, config=QUICK)
    due = timezone.now()
    started = fire([occurrence(task, due) for task in tasks], slots=1)
    assert len(started.rows) == 1
    assert started.short_of_slots == 2
    statuses = sorted(TaskExecution.objects.values_list("status", flat=True))
    assert statuses == ["pending", "pending", "running"]
    assert not TaskExecution.objects.filter(status="pending").exclude(start_time=None).exists()


def test_an_occurrence_recorded_already_is_left_out_and_the_others_are_recorded():
    first, second = ScheduledTaskFactory.create_batch(2, config=QUICK)
    due = timezone.now()
    earlier = TaskExecutionFactory(
        task=first, scheduled_for=due, occurrence_at=due, trigger="schedule", status="success"
    )
    started = fire([occurrence(first, due), occurrence(second, due)])
    assert [row.task_id for row in started.rows] == [second.pk]
    assert TaskExecution.objects.filter(task=first).get() == earlier


def test_ids_are_read_back_where_a_bulk_insert_returns_none(monkeypatch):
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    tasks = ScheduledTaskFactory.create_batch(2, config=QUICK)
    due = timezone.now()
    started = fire([occurrence(task, due) for task in tasks])
    assert sorted(row.pk for row in started.rows) == sorted(TaskExecution.objects.values_list("pk", flat=True))


def test_overlap_policies_and_the_misfire_grace_within_one_round():
    skip, queue, allow, late = (
        ScheduledTaskFactory(config=QUICK, overlap_policy=policy) for policy in ("skip", "queue", "allow", "skip")
    )
    for task in (skip, queue, allow):
        TaskExecutionFactory(task=task, status="running", start_time=timezone.now())
    due = timezone.now()
    started = fire(
        [
            occurrence(skip, due),
            occurrence(queue, due),
            occurrence(allow, due),
            occurrence(late, due - timedelta(seconds=90), catch_up="none", misfire_grace_seconds=30),
        ]
    )
    assert [row.task_id for row in started.rows] == [allow.pk]
    skipped = TaskExecution.objects.get(task=skip, status="skipped")
    assert "was still active (overlap policy: skip)" in skipped.error_message
    assert TaskExecution.objects.filter(task=queue, status="pending", scheduled_for=due).exists()
    too_late = TaskExecution.objects.get(task=late, status="skipped")
    assert too_late.error_message.startswith("missed by 90.")
    assert too_late.error_message.endswith("beyond the misfire grace of 30 s")


def test_piled_up_occurrences_of_a_task_run_once_and_the_rest_are_recorded_skipped():
    task = ScheduledTaskFactory(config=QUICK)
    base = timezone.now().replace(microsecond=0)
    piled = [occurrence(task, base - timedelta(seconds=seconds)) for seconds in (3, 2, 1)]
    started = fire(piled)
    assert [row.scheduled_for for row in started.rows] == [base - timedelta(seconds=1)]
    skipped = TaskExecution.objects.filter(task=task, status="skipped").order_by("scheduled_for")
    assert [row.scheduled_for for row in skipped] == [base - timedelta(seconds=3), base - timedelta(seconds=2)]
    assert all("covered by the catch-up run" in row.error_message for row in skipped)


def test_replace_asks_the_active_run_to_stop_and_queues_the_new_one():
    task = ScheduledTaskFactory(config=QUICK, overlap_policy="replace")
    active = TaskExecutionFactory(task=task, status="running", start_time=timezone.now())
    started = fire([occurrence(task, timezone.now())])
    assert started.rows == []
    active.refresh_from_db()
    assert active.terminate_requested
    assert TaskExecution.objects.filter(task=task, status="pending").count() == 1


@pytest.mark.django_db(transaction=True)
def test_occurrences_wait_for_the_database_and_are_recorded_when_it_is_back(monkeypatch):
    from django.db import OperationalError

    from scheduler_app.scheduling import manager as manager_module
    from scheduler_app.scheduling.backends import ThreadBackend

    task = ScheduledTaskFactory(config=QUICK)
    backend = ThreadBackend(pool_size=2)
    backend.start()
    manager = manager_module.SchedulerManager(pool_size=2, backend=backend)
    manager.is_leader, manager._lease_until = True, float("inf")
    real_fire = manager_module.firing.occurrences_fire

    def database_down(**kwargs):
        raise OperationalError("database down")

    base = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(manager_module.firing, "occurrences_fire", database_down)
    manager._fires = [occurrence(task, base - timedelta(seconds=2))]
    manager._fire_queued()
    manager._fires.append(occurrence(task, base - timedelta(seconds=1)))
    manager._fire_queued()
    assert len(manager._fires) == 2  # kept, not lost
    assert not TaskExecution.objects.exists()
    monkeypatch.setattr(manager_module.firing, "occurrences_fire", real_fire)
    manager._fire_queued()
    backend.shutdown()
    assert manager._fires == []
    rows = dict(TaskExecution.objects.values_list("scheduled_for", "status"))
    assert rows == {base - timedelta(seconds=2): "skipped", base - timedelta(seconds=1): "success"}


def test_a_jobs_next_run_time_is_held_back_while_its_occurrences_are_unrecorded():
    from datetime import UTC

    from apscheduler.job import Job
    from apscheduler.triggers.interval import IntervalTrigger
    from django_apscheduler.models import DjangoJob

    from scheduler_app.scheduling.backends import ThreadBackend
    from scheduler_app.scheduling.engine import JOB_FUNC, GuardedBackgroundScheduler, TaskJobStore
    from scheduler_app.scheduling.manager import SchedulerManager, TaskSchedule

    waiting, recorded = ScheduledTaskFactory.create_batch(2, config=QUICK)
    manager = SchedulerManager(pool_size=1, backend=ThreadBackend(pool_size=1))
    manager.store = TaskJobStore()
    manager.scheduler = GuardedBackgroundScheduler(jobstores={"default": manager.store}, timezone=UTC)
    manager.store.start(manager.scheduler, "default")
    due = timezone.now().replace(microsecond=0)
    for task in (waiting, recorded):
        fields = {name: getattr(task, name) for name in TaskSchedule.FIELDS}
        manager._tasks[task.pk] = TaskSchedule(**fields)
        job = Job(
            manager.scheduler,
            id=task.job_id,
            func=JOB_FUNC,
            trigger=IntervalTrigger(seconds=1, start_date=due, timezone=UTC),
            executor="default",
            args=(),
            kwargs={"task_id": task.pk, "signature": ""},
            name=task.name,
            misfire_grace_time=None,
            coalesce=False,
            max_instances=1,
            next_run_time=due,
        )
        manager.store.add_job(job)
        job._modify(next_run_time=due + timedelta(seconds=1))
        manager.store.advance(job)  # as a round does
    manager._fires = [occurrence(waiting, due)]  # the database failed when it was to be recorded
    manager._write_back()
    table = dict(DjangoJob.objects.values_list("id", "next_run_time"))
    assert table == {waiting.job_id: due, recorded.job_id: due + timedelta(seconds=1)}
    manager._fires = []
    manager._write_back()
    assert DjangoJob.objects.get(id=waiting.job_id).next_run_time == due + timedelta(seconds=1)


@pytest.mark.parametrize(("policy", "second"), [("queue", "pending"), ("skip", "skipped"), ("allow", "running")])
def test_occurrences_due_at_one_instant_are_each_decided_by_the_overlap_policy(policy, second):
    """The runs a spring DST gap owes (`0 1-3 * * *` owes 02:00 and has its own 03:00, both due at
    03:00, written a microsecond apart) are not a catch-up: nothing is merged away."""
    task = ScheduledTaskFactory(config=QUICK, overlap_policy=policy)
    jump = timezone.now().replace(microsecond=0)
    fire([occurrence(task, jump), occurrence(task, jump + timedelta(microseconds=1))])
    rows = list(TaskExecution.objects.filter(task=task).order_by("scheduled_for"))
    assert [row.status for row in rows] == ["running", second]
    if second == "skipped":
        assert rows[1].error_message == "another occurrence due at the same instant runs (overlap policy: skip)"


def test_a_run_that_ended_is_not_in_the_way_while_its_final_state_waits_to_be_written(monkeypatch):
    """With a 1 s interval, the finisher's batched write of a run's final state can lag behind the
    next occurrence; the table still says `running`, but the work is over: skip must not skip."""
    import threading

    from scheduler_app.runtime import finisher as finisher_module
    from scheduler_app.runtime.monitor import ExecutionMonitor
    from scheduler_app.runtime.transitions import Outcome

    task = ScheduledTaskFactory(config=QUICK, overlap_policy="skip", interval_seconds=1)
    ended = TaskExecutionFactory(task=task, status="running", start_time=timezone.now())
    release = threading.Event()

    def held_back(*, finals):  # the finisher's write, held until the round is recorded
        release.wait(10)
        return [(False, None)] * len(finals)

    monkeypatch.setattr(finisher_module.transitions, "executions_finish", held_back)
    finisher = finisher_module.Finisher(ExecutionMonitor())
    monkeypatch.setattr(finisher_module, "_finisher", finisher)
    finisher.submit(execution=ended, outcome=Outcome("success", {"success": True}, ""), ctx=None)
    try:
        started = fire([occurrence(task, timezone.now())])
        assert [row.task_id for row in started.rows] == [task.pk]
        assert not TaskExecution.objects.filter(status="skipped").exists()
    finally:
        release.set()
        assert finisher.drain(10)
    assert finisher.ended_unwritten() == frozenset()
    # A run that is still working holds the schedule as before.
    working = TaskExecutionFactory(task=task, status="running", start_time=timezone.now())
    fire([occurrence(task, timezone.now() + timedelta(seconds=1))])
    assert TaskExecution.objects.filter(status="skipped").count() == 1
    assert working.pk not in finisher.ended_unwritten()
