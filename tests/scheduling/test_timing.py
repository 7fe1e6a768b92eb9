"""The scheduler process's side of a task's timing (scheduling/manager.py, engine.py): jobs built from
the calendar rule and validity window, blackout windows and jitter handed to the firing path, a
one-shot job parked once it fired, and timed pauses ended through the services."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import ScheduledTask
from scheduler_app.scheduling.backends import ThreadBackend
from scheduler_app.scheduling.engine import GuardedBackgroundScheduler, TaskJobStore
from scheduler_app.scheduling.manager import SchedulerManager, TaskSchedule
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_pause, tasks_resume_expired
from scheduler_app.triggers import CalendarTrigger, OneShotTrigger, ValidityTrigger, forget_calendar_snapshots
from tests.factories import BlackoutWindowFactory, CalendarFactory, ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


@pytest.fixture
def manager():
    forget_calendar_snapshots()
    manager = SchedulerManager(pool_size=1, backend=ThreadBackend(pool_size=1), resume_paused=tasks_resume_expired)
    manager.store = TaskJobStore()
    manager.scheduler = GuardedBackgroundScheduler(jobstores={"default": manager.store}, timezone=UTC)
    manager.scheduler.start(paused=True)
    yield manager
    manager.scheduler.shutdown(wait=False)


def schedule_of(task: ScheduledTask) -> TaskSchedule:
    row = ScheduledTask.objects.filter(pk=task.pk).values(*TaskSchedule.FIELDS, **TaskSchedule.EXPRESSIONS).get()
    return TaskSchedule(**row)


def test_jobs_get_the_calendar_and_validity_triggers_and_a_calendar_change_rebuilds_them(manager):
    calendar = CalendarFactory(name="SSE", days=[date(2030, 1, 1)])
    task = ScheduledTaskFactory(
        interval_seconds=None,
        cron_expression="30 16 * * *",
        calendar=calendar,
        valid_until=datetime(2031, 1, 1, tzinfo=UTC),
        config=QUICK,
    )
    manager.sync_jobs()
    job = manager.scheduler.get_job(task.job_id)
    assert isinstance(job.trigger, ValidityTrigger)
    assert isinstance(job.trigger.inner, CalendarTrigger)
    signature = manager._jobs[task.job_id]
    assert signature == schedule_of(task).signature
    manager.sync_jobs()
    assert manager.scheduler.get_job(task.job_id).trigger is job.trigger  # nothing changed: not rebuilt
    calendar.revision += 1  # what the calendar services do on every change of its days
    calendar.save(update_fields=["revision"])
    manager.sync_jobs()
    assert manager._jobs[task.job_id] != signature
    assert manager.scheduler.get_job(task.job_id).trigger is not job.trigger


def test_occurrences_carry_the_tasks_windows_and_jitter(manager):
    task = ScheduledTaskFactory(config=QUICK, jitter_seconds=20, valid_until=datetime(2031, 1, 1, tzinfo=UTC))
    other = ScheduledTaskFactory(config=QUICK)
    start, end = timezone.now(), timezone.now() + timedelta(hours=1)
    own = BlackoutWindowFactory(kind="once", starts_at=start, ends_at=end, task=task)
    shared = BlackoutWindowFactory(kind="once", starts_at=start, ends_at=end)
    BlackoutWindowFactory(kind="once", starts_at=start, ends_at=end, enabled=False)
    manager.sync_jobs()
    assert {window.id for window in manager._blackouts[task.pk]} == {own.pk, shared.pk}
    assert {window.id for window in manager._blackouts[other.pk]} == {shared.pk}
    job = manager.scheduler.get_job(task.job_id)
    manager._fire_scheduled = True  # keep the round's occurrences queued here, to look at them
    manager._on_due([(job, [start])])
    (fired,) = manager._fires
    assert (fired.jitter_seconds, fired.valid_until) == (20, task.valid_until)
    assert {window.id for window in fired.blackouts} == {own.pk, shared.pk}


def test_a_one_shot_job_whose_run_is_recorded_is_not_fired_again_when_rebuilt(manager):
    run_at = timezone.now() + timedelta(hours=1)
    task = ScheduledTaskFactory(interval_seconds=None, run_at=run_at, config=QUICK)
    manager.sync_jobs()
    job = manager.scheduler.get_job(task.job_id)
    assert isinstance(job.trigger, OneShotTrigger)
    assert job.next_run_time == run_at
    TaskExecutionFactory(task=task, trigger="schedule", status="success", scheduled_for=run_at, occurrence_at=run_at)
    manager._jobs[task.job_id] = "stale"  # as after an edit of something in the signature
    manager.sync_jobs()
    assert manager.scheduler.get_job(task.job_id).next_run_time is None


def test_a_timed_pause_ends_through_the_services_and_the_job_resumes_from_its_end(manager):
    task = ScheduledTaskFactory(interval_seconds=None, cron_expression="*/5 * * * *", config=QUICK)
    until = (timezone.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    task_pause(task=task, user=SYSTEM, until=until)
    manager.sync_jobs()
    assert manager.scheduler.get_job(task.job_id).next_run_time is None  # paused
    assert manager._next_pause_end == until
    manager._end_timed_pauses(until + timedelta(seconds=0.2))  # a turn just after the end
    task.refresh_from_db()
    assert (task.paused, task.paused_until) == (False, None)  # (the version bump: tests/services)
    # From the instant the pause ended: the occurrence due exactly then runs (a little late).
    assert manager.scheduler.get_job(task.job_id).next_run_time == until
    assert manager._next_pause_end is None


def test_a_timed_pause_resumed_by_hand_meanwhile_is_left_alone(manager):
    task = ScheduledTaskFactory(config=QUICK)
    until = timezone.now() + timedelta(hours=1)
    task_pause(task=task, user=SYSTEM, until=until)
    manager.sync_jobs()
    task_pause(task=task, user=SYSTEM, until=until + timedelta(days=1))  # paused longer, not seen yet
    manager._end_timed_pauses(until + timedelta(seconds=1))
    task.refresh_from_db()
    assert (task.paused, task.paused_until) == (True, until + timedelta(days=1))
    assert manager.scheduler.get_job(task.job_id).next_run_time is None
