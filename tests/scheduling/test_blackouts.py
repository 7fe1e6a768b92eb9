"""Blackout windows and jitter in the firing path (scheduling/firing.py): a skipped row with the
window as reason, a run deferred to the window's end (occurrence_at = planned, scheduled_for = due),
later occurrences of the same blackout covered by it, and jittered runs that wait `pending`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler_app import selectors
from scheduler_app.models import TaskExecution
from scheduler_app.occurrences import jitter_offset
from scheduler_app.runtime.clock import db_now
from scheduler_app.scheduling import dispatch
from scheduler_app.scheduling.firing import Occurrence, occurrences_fire
from tests.factories import BlackoutWindowFactory, ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


def windows_of(task):
    return selectors.blackouts_by_task(selectors.blackouts_in_force(), [task.pk])[task.pk]


def occurrence(task, at) -> Occurrence:
    return Occurrence(
        task_id=task.pk,
        task_name=task.name,
        overlap_policy=task.overlap_policy,
        scheduled_for=at,
        misfire_grace_seconds=task.misfire_grace_seconds,
        catch_up=task.catch_up,
        jitter_seconds=task.jitter_seconds,
        blackouts=windows_of(task),
        valid_until=task.valid_until,
    )


def fire(*occurrences):
    return occurrences_fire(occurrences=list(occurrences), worker="node-1", host="h", pid=7)


def once(*, start, end, action, task=None, **fields):
    return BlackoutWindowFactory(kind="once", starts_at=start, ends_at=end, action=action, task=task, **fields)


def test_an_occurrence_in_a_skip_window_is_recorded_skipped_with_the_window_named():
    task = ScheduledTaskFactory(config=QUICK)
    now = db_now()
    once(start=now - timedelta(minutes=5), end=now + timedelta(minutes=5), action="skip", name="Upgrade")
    started = fire(occurrence(task, now))
    assert started.rows == []
    row = TaskExecution.objects.get(task=task)
    assert row.status == "skipped"
    assert row.error_message.startswith("in the blackout window “Upgrade”")
    assert row.scheduled_for == row.occurrence_at == now


def test_a_window_of_another_task_or_a_disabled_one_does_not_apply():
    task, other = ScheduledTaskFactory.create_batch(2, config=QUICK)
    now = db_now()
    once(start=now - timedelta(minutes=5), end=now + timedelta(minutes=5), action="skip", task=other)
    once(start=now - timedelta(minutes=5), end=now + timedelta(minutes=5), action="skip", enabled=False)
    started = fire(occurrence(task, now))
    assert [row.status for row in started.rows] == ["running"]


def test_defer_runs_once_at_the_end_and_covers_the_later_occurrences():
    task = ScheduledTaskFactory(config=QUICK, misfire_grace_seconds=3600, overlap_policy="skip")
    now = db_now()
    end = now - timedelta(seconds=1)  # already over, so the deferred run is due at once
    once(start=now - timedelta(minutes=10), end=end, action="defer", task=task, name="Maintenance")
    first_planned = now - timedelta(minutes=5)
    started = fire(occurrence(task, first_planned))
    assert started.rows == []  # recorded pending, for the dispatcher
    deferred = TaskExecution.objects.get(task=task)
    assert (deferred.status, deferred.trigger) == ("pending", "schedule")
    assert deferred.occurrence_at == first_planned  # the occurrence it runs for
    assert deferred.scheduled_for == end  # when it is due: lateness is measured from here
    # A later occurrence inside the same blackout (another round) is covered by it.
    fire(occurrence(task, now - timedelta(minutes=4)))
    covered = TaskExecution.objects.get(task=task, occurrence_at=now - timedelta(minutes=4))
    assert covered.status == "skipped"
    assert covered.error_message.startswith("covered by the run deferred to")
    # The dispatcher starts the deferred run now that it is due, and its lateness is small.
    rows = selectors.pending_runs_due(now=db_now(), limit=10)
    claimed = dispatch.pending_start(rows=rows, worker="node-1", host="h", pid=7)
    assert [row.pk for row in claimed.rows] == [deferred.pk]
    deferred.refresh_from_db()
    assert deferred.status == "running"
    assert timedelta(0) <= deferred.start_time - deferred.scheduled_for < timedelta(seconds=5)


def test_a_run_deferred_to_the_future_waits_pending_until_then():
    task = ScheduledTaskFactory(config=QUICK)
    now = db_now()
    end = now + timedelta(minutes=30)
    once(start=now - timedelta(minutes=1), end=end, action="defer")
    fire(occurrence(task, now))
    row = TaskExecution.objects.get(task=task)
    assert (row.status, row.scheduled_for, row.occurrence_at) == ("pending", end, now)
    assert selectors.pending_runs_due(now=db_now(), limit=10) == []
    assert [due["id"] for due in selectors.pending_runs_due(now=end, limit=10)] == [row.pk]


def test_two_occurrences_due_at_one_instant_in_a_defer_window_give_one_run():
    task = ScheduledTaskFactory(config=QUICK, overlap_policy="queue")
    now = db_now()
    once(start=now - timedelta(minutes=1), end=now + timedelta(minutes=10), action="defer")
    owed = now + timedelta(microseconds=1)  # as the runs owed to a spring DST jump are spaced
    fire(occurrence(task, now), occurrence(task, owed))
    rows = dict(TaskExecution.objects.filter(task=task).values_list("occurrence_at", "status"))
    assert rows == {now: "pending", owed: "skipped"}


def test_jitter_records_the_run_pending_until_its_delayed_time():
    task = ScheduledTaskFactory(config=QUICK, interval_seconds=None, cron_expression="0 * * * *", jitter_seconds=3600)
    planned = db_now()
    delay = jitter_offset(task_id=task.pk, planned=planned, jitter_seconds=3600)
    assert delay > timedelta(0)
    started = fire(occurrence(task, planned))
    assert started.rows == []
    row = TaskExecution.objects.get(task=task)
    assert (row.status, row.occurrence_at, row.scheduled_for) == ("pending", planned, planned + delay)


def test_a_jittered_occurrence_is_skipped_at_once_behind_an_active_run_under_skip():
    task = ScheduledTaskFactory(config=QUICK, jitter_seconds=30, overlap_policy="skip")
    TaskExecutionFactory(task=task, status="running", start_time=db_now())
    fire(occurrence(task, db_now()))
    skipped = TaskExecution.objects.get(task=task, trigger="schedule")
    assert skipped.status == "skipped"
    assert "still active" in skipped.error_message


def test_a_round_without_windows_or_jitter_costs_no_query_more(django_assert_max_num_queries):
    tasks = ScheduledTaskFactory.create_batch(5, config=QUICK)
    due = db_now()
    occurrences = [occurrence(task, due) for task in tasks]
    with django_assert_max_num_queries(5):
        started = fire(*occurrences)
    assert len(started.rows) == 5
