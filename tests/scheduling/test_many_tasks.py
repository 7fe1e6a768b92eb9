"""Many tasks: the first reconciliation on an empty job table inserts the jobs in a few statements,
every job right, and a restart on that table rewrites nothing."""

from __future__ import annotations

import time
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_apscheduler.models import DjangoJob

from scheduler_app.models import ScheduledTask, SchedulerState
from scheduler_app.runtime.clock import db_now
from scheduler_app.scheduling.backends import ThreadBackend
from scheduler_app.scheduling.engine import GuardedBackgroundScheduler, TaskJobStore
from scheduler_app.scheduling.manager import SchedulerManager
from scheduler_app.triggers import build_task_trigger, timing_of

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
TASKS = 2_000


def leading_manager() -> SchedulerManager:
    manager = SchedulerManager(pool_size=1, backend=ThreadBackend(pool_size=1))
    manager.store = TaskJobStore()
    manager.scheduler = GuardedBackgroundScheduler(jobstores={"default": manager.store}, timezone=UTC)
    manager.scheduler.start(paused=True)
    manager.is_leader, manager._lease_until = True, time.monotonic() + 600
    manager._leading_since = db_now()
    return manager


@pytest.fixture
def managers(db):
    SchedulerState.objects.get_or_create(pk=1)
    started = []

    def start() -> SchedulerManager:
        started.append(leading_manager())
        return started[-1]

    yield start
    for manager in started:
        if manager.scheduler.running:
            manager.scheduler.shutdown(wait=False)


def seed() -> list[ScheduledTask]:
    hour = (db_now().hour + 12) % 24  # far from now: no fire time passes during the test
    tasks = [
        ScheduledTask(
            name=f"many-{i}",
            config=QUICK,
            timezone="UTC",
            paused=i % 100 == 0,
            **({"interval_seconds": 60 + i} if i % 2 else {"cron_expression": f"{i % 60} {hour} * * *"}),
        )
        for i in range(TASKS)
    ]
    ScheduledTask.objects.bulk_create(tasks, batch_size=500)
    return list(ScheduledTask.objects.order_by("pk"))


def writes(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_the_first_sync_inserts_every_job_in_chunks_and_a_restart_rewrites_nothing(managers):
    tasks = seed()
    first = managers()
    since = db_now()
    with CaptureQueriesContext(connection) as queries:
        first.sync_jobs()
    after = db_now()
    inserts = [sql for sql in writes(queries) if sql.lstrip().upper().startswith("INSERT")]
    assert len(inserts) <= 10  # INSERT_CHUNK rows each (fewer where the backend caps the parameters)
    assert len(queries.captured_queries) <= 30, len(queries.captured_queries)

    rows = dict(DjangoJob.objects.values_list("id", "next_run_time"))
    assert set(rows) == {task.job_id for task in tasks}
    for task in tasks:
        job = first.scheduler.get_job(task.job_id)
        assert job.kwargs == {"task_id": task.pk, "signature": timing_of(task).signature}
        assert rows[task.job_id] == job.next_run_time
        if task.paused:
            assert job.next_run_time is None
        elif task.interval_seconds:
            interval = timedelta(seconds=task.interval_seconds)
            assert since - timedelta(seconds=1) + interval <= job.next_run_time <= after + interval
        else:
            trigger = build_task_trigger(timing_of(task), start_date=since)
            assert job.next_run_time == trigger.get_next_fire_time(None, since)

    restarted = managers()
    with CaptureQueriesContext(connection) as queries:
        restarted._load_jobs()
        restarted.sync_jobs()
    assert writes(queries) == []
    assert len(queries.captured_queries) <= 10
    assert {job.id: job.next_run_time for job in restarted.scheduler.get_jobs()} == rows


def test_a_job_changed_or_removed_before_its_batch_is_inserted_is_written_as_it_ends(managers):
    manager = managers()
    kept, moved, dropped = (ScheduledTask(name=name, interval_seconds=60, config=QUICK) for name in "abc")
    ScheduledTask.objects.bulk_create([kept, moved, dropped])
    manager.sync_jobs()
    DjangoJob.objects.all().delete()
    manager.store._memory.remove_all_jobs()
    manager._jobs.clear()
    later = db_now() + timedelta(hours=1)
    with manager.store.batched():
        manager.sync_jobs()  # a nested batch: the rows wait for the outer one
        assert not DjangoJob.objects.exists()
        manager.scheduler.modify_job(moved.job_id, next_run_time=later)
        manager.scheduler.remove_job(dropped.job_id)
    rows = dict(DjangoJob.objects.values_list("id", "next_run_time"))
    assert set(rows) == {kept.job_id, moved.job_id}
    assert rows[moved.job_id] == later


def test_a_row_already_in_the_table_is_replaced_by_the_batch(managers):
    manager = managers()
    task = ScheduledTask.objects.create(name="left", interval_seconds=60, config=QUICK)
    DjangoJob.objects.create(id=task.job_id, next_run_time=None, job_state=b"left by another node")
    manager.sync_jobs()
    row = DjangoJob.objects.get(id=task.job_id)
    assert row.next_run_time == manager.scheduler.get_job(task.job_id).next_run_time
    assert row.job_state != b"left by another node"
