"""TaskJobStore: the leader's jobs in memory, mirrored to django-apscheduler's DjangoJob table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.triggers.interval import IntervalTrigger
from django_apscheduler.models import DjangoJob

from scheduler_app.scheduling import engine
from scheduler_app.scheduling.engine import JOB_FUNC, GuardedBackgroundScheduler, OccurrenceExecutor, TaskJobStore

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def store():
    broken: list[str] = []
    store = TaskJobStore(on_broken_job=lambda job_id, error: broken.append(job_id))
    scheduler = GuardedBackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    store.start(scheduler, "default")
    store.broken = broken
    return store


def make_job(store: TaskJobStore, job_id: str, next_run_time: datetime) -> Job:
    return Job(
        store._scheduler,
        id=job_id,
        func=JOB_FUNC,
        trigger=IntervalTrigger(seconds=1, start_date=START, timezone=UTC),
        executor="default",
        args=(),
        kwargs={"task_id": 1, "signature": "s"},
        name=job_id,
        misfire_grace_time=None,
        coalesce=False,
        max_instances=1,
        next_run_time=next_run_time,
    )


def test_rounds_read_memory_only_and_fired_jobs_are_written_in_one_statement(store, django_assert_num_queries):
    for index in range(3):
        store.add_job(make_job(store, f"job-{index}", START))
    with django_assert_num_queries(0):
        due = store.get_due_jobs(START)
        for job in due:
            job._modify(next_run_time=START + timedelta(seconds=1))
            store.advance(job)
        assert store.get_next_run_time() == START + timedelta(seconds=1)
    assert set(DjangoJob.objects.values_list("next_run_time", flat=True)) == {START}  # not written yet
    with django_assert_num_queries(1):
        assert store.flush() == 3
    assert set(DjangoJob.objects.values_list("next_run_time", flat=True)) == {START + timedelta(seconds=1)}
    assert store.flush() == 0


def test_a_failed_flush_keeps_the_next_run_times_for_the_next_try(store, monkeypatch):
    job = make_job(store, "job", START)
    store.add_job(job)
    job._modify(next_run_time=START + timedelta(seconds=5))
    store.advance(job)

    def database_down(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(engine.connection, "cursor", database_down)
    with pytest.raises(RuntimeError):
        store.flush()
    monkeypatch.undo()
    assert store.flush() == 1
    assert DjangoJob.objects.get(id="job").next_run_time == START + timedelta(seconds=5)


def test_load_takes_the_table_over_and_parks_a_job_it_cannot_unpickle(store):
    store.add_job(make_job(store, "good", START))
    DjangoJob.objects.create(id="broken", next_run_time=START, job_state=b"not a pickle")
    other = TaskJobStore(on_broken_job=lambda job_id, error: store.broken.append(job_id))
    other.start(store._scheduler, "default")
    assert other.load() == 1
    assert [job.id for job in other.get_all_jobs()] == ["good"]
    assert store.broken == ["broken"]
    parked = DjangoJob.objects.get(id="broken")
    assert parked.next_run_time is None  # kept, never deleted; rebuilt from its task by the manager


def test_remove_deletes_the_row_and_an_unknown_job_is_a_lookup_error(store):
    job = make_job(store, "job", START)
    store.add_job(job)
    store.advance(job)
    store.remove_job("job")
    assert store.lookup_job("job") is None
    assert not DjangoJob.objects.filter(id="job").exists()
    assert store.flush() == 0  # the queued write went with it
    with pytest.raises(JobLookupError):
        store.remove_job("job")


def test_the_executor_hands_over_one_batch_per_round():
    batches = []
    executor = OccurrenceExecutor(batches.append)
    executor.submit_job("job-a", [START])
    executor.submit_job("job-b", [START, START + timedelta(seconds=1)])
    executor.end_round()
    executor.end_round()  # nothing due: no empty batch
    assert batches == [[("job-a", [START]), ("job-b", [START, START + timedelta(seconds=1)])]]


def test_held_jobs_keep_their_old_next_run_time_in_the_table_until_released(store):
    jobs = [make_job(store, f"job-{index}", START) for index in range(2)]
    for job in jobs:
        store.add_job(job)
        job._modify(next_run_time=START + timedelta(seconds=1))
        store.advance(job)
    assert store.flush(hold={"job-0"}) == 1  # job-0's occurrence is not recorded yet
    assert dict(DjangoJob.objects.values_list("id", "next_run_time")) == {
        "job-0": START,
        "job-1": START + timedelta(seconds=1),
    }
    assert store.flush() == 1
    assert DjangoJob.objects.get(id="job-0").next_run_time == START + timedelta(seconds=1)


def test_many_distinct_next_run_times_go_in_one_bulk_statement(store, django_assert_num_queries):
    jobs = [make_job(store, f"job-{index}", START) for index in range(30)]
    for index, job in enumerate(jobs):
        store.add_job(job)
        job._modify(next_run_time=START + timedelta(seconds=index + 1))
        store.advance(job)
    with django_assert_num_queries(1):
        assert store.flush() == 30
    assert DjangoJob.objects.get(id="job-29").next_run_time == START + timedelta(seconds=30)


def test_load_takes_the_next_run_time_from_the_column_and_a_change_writes_the_whole_row(store):
    job = make_job(store, "job", START)
    store.add_job(job)
    job._modify(next_run_time=START + timedelta(seconds=7))
    store.advance(job)
    store.flush()  # the column only: the pickled state still says START
    other = TaskJobStore()
    other.start(store._scheduler, "default")
    other.load()
    assert other.lookup_job("job").next_run_time == START + timedelta(seconds=7)
    job._modify(next_run_time=None)  # paused
    store.update_job(job)
    assert DjangoJob.objects.get(id="job").next_run_time is None
    other.load()
    assert other.lookup_job("job").next_run_time is None


def test_a_trigger_without_more_fire_times_parks_its_job_instead_of_removing_it():
    from scheduler_app.triggers import OneShotTrigger

    batches = []
    store = TaskJobStore()
    scheduler = GuardedBackgroundScheduler(
        jobstores={"default": store}, executors={"default": OccurrenceExecutor(batches.append)}, timezone=UTC
    )
    scheduler.clock = lambda: START
    store.start(scheduler, "default")
    scheduler._executors["default"].start(scheduler, "default")
    job = make_job(store, "once", START)
    job._modify(trigger=OneShotTrigger(START))
    store.add_job(job)
    scheduler._round()
    scheduler._executors["default"].end_round()
    assert [[(fired.id, times) for fired, times in batch] for batch in batches] == [[("once", [START])]]
    parked = store.lookup_job("once")
    assert parked is not None  # still mirrors its task
    assert parked.next_run_time is None
    store.flush()
    assert DjangoJob.objects.get(id="once").next_run_time is None
