"""Schedule changes reaching the scheduler: notifications (PostgreSQL's LISTEN/NOTIFY) applied task by
task when they follow the version seen, the poll's full reconciliation otherwise, and a change that
takes effect from its commit."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from scheduler_app.models import ScheduledTask, SchedulerState
from scheduler_app.runtime.clock import db_now
from scheduler_app.scheduling.backends import ThreadBackend
from scheduler_app.scheduling.engine import GuardedBackgroundScheduler, TaskJobStore
from scheduler_app.scheduling.listener import SCHEDULE_CHANNEL, ScheduleChange, parse_change
from scheduler_app.scheduling.manager import SchedulerManager
from scheduler_app.services import state
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_update
from tests.factories import ScheduledTaskFactory
from tests.scheduling.conftest import wait_for

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's; elsewhere the poll is the only way"
)


class TestParseChange:
    def test_a_version_and_tasks(self):
        assert parse_change('{"version": 7, "tasks": [3, 1]}') == ScheduleChange(7, frozenset({1, 3}))

    def test_any_task(self):
        assert parse_change('{"version": 7, "tasks": "*"}') == ScheduleChange(7, None)

    @pytest.mark.parametrize(
        "payload", ["", "not json", "[1, 2]", '{"tasks": [1]}', '{"version": true, "tasks": [1]}', '{"version": "7"}']
    )
    def test_anything_unreadable_leaves_the_version_unknown(self, payload):
        assert parse_change(payload).version is None

    def test_tasks_that_are_not_ids_mean_any_task(self):
        assert parse_change('{"version": 2, "tasks": [1, "x"]}') == ScheduleChange(2, None)


def test_the_payload_names_the_version_and_at_most_a_bounded_number_of_tasks():
    assert json.loads(state.notification_payload(version=4, task_ids=[2, 1])) == {"version": 4, "tasks": [1, 2]}
    assert json.loads(state.notification_payload(version=4, task_ids=[1, state.EVERYTHING]))["tasks"] == "*"
    many = range(state.MAX_NOTIFIED_TASKS + 1)
    assert json.loads(state.notification_payload(version=4, task_ids=many))["tasks"] == "*"


@pytest.fixture
def manager(db):
    manager = SchedulerManager(pool_size=1, backend=ThreadBackend(pool_size=1))
    manager.store = TaskJobStore()
    manager.scheduler = GuardedBackgroundScheduler(jobstores={"default": manager.store}, timezone=UTC)
    manager.scheduler.start(paused=True)
    manager.is_leader, manager._lease_until = True, time.monotonic() + 600
    manager._leading_since = db_now()
    SchedulerState.objects.get_or_create(pk=1)
    yield manager
    manager.scheduler.shutdown(wait=False)


def current_version() -> int:
    return SchedulerState.objects.values_list("schedule_version", flat=True).get(pk=1)


class TestNotifiedChanges:
    def test_the_next_version_is_applied_to_its_tasks_only(self, manager, django_assert_max_num_queries):
        edited, other = ScheduledTaskFactory(config=QUICK), ScheduledTaskFactory(config=QUICK)
        manager.sync_jobs()
        manager._version_seen = seen = current_version()
        untouched = manager.scheduler.get_job(other.job_id).next_run_time
        ScheduledTask.objects.filter(pk=edited.pk).update(interval_seconds=7)
        ScheduledTask.objects.filter(pk=other.pk).update(interval_seconds=9)  # not notified: not applied
        manager._schedule_changed(ScheduleChange(manager._version_seen + 1, frozenset({edited.pk})))
        with django_assert_max_num_queries(3):  # the tasks, the windows, the rebuilt job's row
            manager._apply_notified_changes()
        assert manager._version_seen == seen + 1
        assert "interval[0:00:07]" in str(manager.scheduler.get_job(edited.job_id).trigger)
        assert manager.scheduler.get_job(other.job_id).next_run_time == untouched
        assert manager._tasks[other.pk].interval_seconds != 9

    def test_a_task_gone_or_disabled_loses_its_job_and_a_new_one_gets_one(self, manager):
        deleted, disabled = ScheduledTaskFactory(config=QUICK), ScheduledTaskFactory(config=QUICK)
        manager.sync_jobs()
        manager._version_seen = 5
        created = ScheduledTaskFactory(config=QUICK)
        ScheduledTask.objects.filter(pk=deleted.pk).delete()
        ScheduledTask.objects.filter(pk=disabled.pk).update(enabled=False)
        manager._schedule_changed(ScheduleChange(6, frozenset({deleted.pk, disabled.pk, created.pk})))
        manager._apply_notified_changes()
        assert manager.scheduler.get_job(deleted.job_id) is None
        assert manager.scheduler.get_job(disabled.job_id) is None
        assert manager.scheduler.get_job(created.job_id) is not None
        assert set(manager._tasks) == {created.pk}

    @pytest.mark.parametrize(
        "change",
        [ScheduleChange(7, frozenset({1})), ScheduleChange(None, frozenset({1})), ScheduleChange(6, None)],
        ids=["a gap", "an unknown version", "any task"],
    )
    def test_anything_but_the_next_version_is_left_to_the_full_reconciliation(self, manager, change):
        manager._version_seen = 5
        manager._schedule_changed(change)
        manager._apply_notified_changes()
        assert manager._version_seen == -1  # the next turn reconciles everything

    def test_versions_already_reconciled_are_ignored(self, manager, django_assert_num_queries):
        manager._version_seen = 5
        manager._schedule_changed(ScheduleChange(5, frozenset({1})))
        with django_assert_num_queries(0):
            manager._apply_notified_changes()
        assert manager._version_seen == 5

    def test_consecutive_changes_are_applied_together(self, manager):
        first, second = ScheduledTaskFactory(config=QUICK), ScheduledTaskFactory(config=QUICK)
        manager.sync_jobs()
        manager._version_seen = 5
        ScheduledTask.objects.filter(pk__in=[first.pk, second.pk]).update(interval_seconds=11)
        manager._schedule_changed(ScheduleChange(7, frozenset({second.pk})))
        manager._schedule_changed(ScheduleChange(6, frozenset({first.pk})))
        manager._apply_notified_changes()
        assert manager._version_seen == 7
        assert all(manager._tasks[pk].interval_seconds == 11 for pk in (first.pk, second.pk))


def test_a_change_counts_from_its_commit_while_this_process_leads(manager, time_machine):
    """An edit seen 0.4 s after its commit still gets the occurrence due in between (late), instead
    of the scheduler counting the new interval from when it looked."""
    time_machine.move_to(datetime(2030, 1, 1, 12, 0, 0, 500000, tzinfo=UTC), tick=False)
    manager._leading_since = timezone.now() - timedelta(minutes=1)
    task = ScheduledTaskFactory(interval_seconds=3600, config=QUICK)
    manager.sync_jobs()
    time_machine.move_to(datetime(2030, 1, 1, 12, 0, 1, 700000, tzinfo=UTC), tick=False)
    task_update(task=task, data={"interval_seconds": 1}, user=SYSTEM)  # committed at 12:00:01.7
    time_machine.move_to(datetime(2030, 1, 1, 12, 0, 2, 100000, tzinfo=UTC), tick=False)
    manager.sync_jobs()  # seen at 12:00:02.1: the run due at 12:00:02 is not lost
    assert manager.scheduler.get_job(task.job_id).next_run_time == datetime(2030, 1, 1, 12, 0, 2, tzinfo=UTC)


def test_a_change_made_before_this_process_led_counts_from_when_it_looks(manager, time_machine):
    time_machine.move_to(datetime(2030, 1, 1, 12, 0, 1, 700000, tzinfo=UTC), tick=False)
    task = ScheduledTaskFactory(interval_seconds=1, config=QUICK)
    time_machine.move_to(datetime(2030, 1, 1, 12, 0, 2, 100000, tzinfo=UTC), tick=False)
    manager._leading_since = timezone.now()
    manager.sync_jobs()
    assert manager.scheduler.get_job(task.job_id).next_run_time == datetime(2030, 1, 1, 12, 0, 3, tzinfo=UTC)


@postgresql_only
def test_the_bump_notifies_after_its_commit_and_a_rollback_notifies_nothing(transactional_db):
    listener = connection.get_new_connection(connection.get_connection_params())
    listener.autocommit = True
    listener.execute(f"LISTEN {SCHEDULE_CHANNEL}")
    try:
        task = ScheduledTaskFactory(config=QUICK)
        with transaction.atomic():
            state.schedule_touch(task_ids=[task.pk])
            transaction.set_rollback(True)
        assert list(listener.notifies(timeout=0.2)) == []
        with transaction.atomic():
            state.schedule_touch(task_ids=[task.pk])
            state.schedule_touch(task_ids=[task.pk + 1000])
        [notification] = list(listener.notifies(timeout=1.0, stop_after=1))
        assert json.loads(notification.payload) == {"version": current_version(), "tasks": [task.pk, task.pk + 1000]}
    finally:
        listener.close()


@postgresql_only
def test_an_edit_reaches_a_real_scheduler_without_waiting_for_its_poll(scheduler):
    """With a 4 s poll, the edit is applied from its notification and its first run follows at once."""
    task = ScheduledTaskFactory(interval_seconds=3600, config=QUICK)
    process = scheduler("--poll-seconds", "4")
    process.wait_leader()
    wait_for(lambda: "listening for schedule changes" in process.output(), 10, message="the LISTEN")
    task_update(task=task, data={"interval_seconds": 1}, user=SYSTEM)
    edited = time.monotonic()
    wait_for(lambda: task.executions.filter(status="success").exists(), 5, message="the first run on the new schedule")
    assert time.monotonic() - edited < 1.5
    assert f"applied to tasks [{task.pk}]" in process.output()
