"""The real `runscheduler` process: firing on time, propagation, run now, stop, downtime, overlap, DST."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_apscheduler.models import DjangoJob
from rest_framework.test import APIClient

from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_trigger
from tests.factories import ScheduledTaskFactory, operator_user
from tests.scheduling.conftest import wait_for

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


def slow(seconds: float) -> dict:
    return {"task_action": "example_task", "steps": 10, "duration_seconds": seconds}


def runs_of(task, **filters):
    return list(TaskExecution.objects.filter(task=task, **filters).order_by("scheduled_for", "id"))


def next_run_time(task: ScheduledTask):
    return DjangoJob.objects.filter(id=task.job_id).values_list("next_run_time", flat=True).first()


def lateness(execution: TaskExecution) -> float:
    return (execution.start_time - execution.scheduled_for).total_seconds()


def test_interval_task_fires_on_time(scheduler):
    task = ScheduledTaskFactory(interval_seconds=1, config=QUICK)
    process = scheduler()
    wait_for(lambda: len(runs_of(task, status="success")) >= 3, 10, message="three runs")
    runs = runs_of(task, status="success")[:3]
    assert all(run.trigger == "schedule" for run in runs)
    assert all(run.scheduled_for.microsecond == 0 for run in runs)  # intervals count whole seconds
    assert [(b.scheduled_for - a.scheduled_for).total_seconds() for a, b in itertools.pairwise(runs)] == [
        1.0,
        1.0,
    ]
    assert max(lateness(run) for run in runs) < 0.5
    assert process.stop() == 0
    assert f"fire task={task.pk}" in process.output()


def test_cron_task_fires_at_its_minute_in_its_timezone(scheduler):
    # 18:29:58 in Shanghai = 10:29:58 UTC; the clock of the scheduler process is moved there.
    task = ScheduledTaskFactory(
        interval_seconds=None, cron_expression="30 18 * * *", timezone="Asia/Shanghai", config=QUICK
    )
    scheduler(clock="2026-11-23T10:29:58+00:00")
    run = wait_for(lambda: runs_of(task, status="success"), 10, message="the 18:30 run")[0]
    assert run.scheduled_for == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    assert lateness(run) < 0.5
    tomorrow = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    wait_for(lambda: next_run_time(task) == tomorrow, 2, message="the next run time written back")


def test_autumn_overlap_fires_once_with_a_moved_clock(scheduler):
    # New York falls back at 2026-11-01 02:00 EDT; 01:30 happens at 05:30 and again at 06:30 UTC.
    task = ScheduledTaskFactory(
        interval_seconds=None, cron_expression="30 1 * * *", timezone="America/New_York", config=QUICK
    )
    scheduler(clock="2026-11-01T05:29:58+00:00")
    wait_for(lambda: runs_of(task, status="success"), 10, message="the first 01:30 run")
    tomorrow = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)  # tomorrow 01:30 EST, not 06:30 UTC today
    wait_for(lambda: next_run_time(task) == tomorrow, 2, message=f"next run {next_run_time(task)}")


def test_edit_through_the_api_takes_effect_within_a_second(scheduler):
    task = ScheduledTaskFactory(interval_seconds=3600, config=QUICK)
    scheduler()
    before = DjangoJob.objects.get(id=task.job_id).next_run_time
    client = APIClient()
    client.force_authenticate(operator_user("ops"))
    sent = timezone.now()
    response = client.patch(f"/api/v1/scheduler/tasks/{task.pk}/", {"interval_seconds": 2}, format="json")
    assert response.status_code == 200, response.content
    changed = wait_for(
        lambda: DjangoJob.objects.filter(id=task.job_id).exclude(next_run_time=before).first(),
        1.0,
        message="reschedule",
    )
    assert changed.next_run_time <= sent + timedelta(seconds=3)
    wait_for(lambda: runs_of(task, status="success"), 6, message="a run on the new schedule")


def test_pause_disable_and_delete_reach_the_scheduler(scheduler):
    task = ScheduledTaskFactory(interval_seconds=3600, config=QUICK)
    scheduler()
    client = APIClient()
    client.force_authenticate(operator_user("ops"))
    assert client.post(f"/api/v1/scheduler/tasks/{task.pk}/pause/").status_code == 200
    wait_for(lambda: DjangoJob.objects.get(id=task.job_id).next_run_time is None, 1.0, message="pause")
    assert client.post(f"/api/v1/scheduler/tasks/{task.pk}/resume/").status_code == 200
    wait_for(lambda: DjangoJob.objects.get(id=task.job_id).next_run_time is not None, 1.0, message="resume")
    assert client.post(f"/api/v1/scheduler/tasks/{task.pk}/disable/").status_code == 200
    wait_for(lambda: not DjangoJob.objects.filter(id=task.job_id).exists(), 1.0, message="disable")
    assert client.post(f"/api/v1/scheduler/tasks/{task.pk}/enable/").status_code == 200
    wait_for(lambda: DjangoJob.objects.filter(id=task.job_id).exists(), 1.0, message="enable")
    assert client.delete(f"/api/v1/scheduler/tasks/{task.pk}/").status_code == 204
    wait_for(lambda: not DjangoJob.objects.filter(id=task.job_id).exists(), 1.0, message="delete")


def test_run_now_starts_within_a_second(scheduler):
    task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config=QUICK)
    scheduler()
    execution = task_trigger(task=task, user=SYSTEM)
    assert execution.status == "pending"
    started = wait_for(
        lambda: TaskExecution.objects.filter(pk=execution.pk, start_time__isnull=False).first(), 2, message="start"
    )
    assert (started.start_time - execution.created_at).total_seconds() < 1.0
    wait_for(lambda: TaskExecution.objects.get(pk=execution.pk).status == "success", 5, message="success")


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return open(f"/proc/{pid}/stat").read().split()[2] != "Z"


def test_sigterm_during_a_long_command_leaves_nothing_running(scheduler):
    marker = f"zq-sleep-{time.time_ns()}"
    command = f"{sys.executable} -c 'import sys, time; time.sleep(120)' {marker}"
    task = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None, config={"command": command})
    process = scheduler()
    execution = task_trigger(task=task, user=SYSTEM)
    running = wait_for(
        lambda: TaskExecution.objects.filter(pk=execution.pk, status="running", child_pid__isnull=False).first(),
        5,
        message="the command to run",
    )
    assert _process_exists(running.child_pid)
    began = time.monotonic()
    assert process.stop(signal.SIGTERM) == 0
    assert time.monotonic() - began < 3 + 10  # grace (3 s in tests) plus the terminate round
    execution.refresh_from_db()
    assert execution.status == "terminated"
    assert "SIGTERM" in execution.error_message
    assert not _process_exists(running.child_pid)
    leftover = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.strip()
    assert leftover == ""
    assert not TaskExecution.objects.filter(status__in=("running", "paused")).exists()


def test_downtime_gives_one_catch_up_run_and_skipped_records(scheduler):
    task = ScheduledTaskFactory(interval_seconds=1, config=QUICK)
    first = scheduler()
    wait_for(lambda: runs_of(task, status="success"), 5, message="a first run")
    assert first.stop() == 0
    stopped_at = timezone.now()
    time.sleep(4.5)
    scheduler()
    wait_for(lambda: runs_of(task, status="skipped"), 5, message="skipped records")
    wait_for(lambda: runs_of(task, status="success", scheduled_for__gt=stopped_at), 5, message="the catch-up run")
    after_stop = [run for run in runs_of(task) if run.scheduled_for > stopped_at]
    catch_up = next(run for run in after_stop if run.status == "success")
    # Every occurrence missed during the downtime is recorded, and one run covers them all. (Later
    # occurrences may be skipped too on a loaded machine, by the overlap policy: not checked here.)
    missed = [run for run in after_stop if run.scheduled_for < catch_up.scheduled_for]
    assert len(missed) >= 3
    assert all(run.status == "skipped" for run in missed)
    assert all("scheduler was not running" in run.error_message for run in missed)
    assert all(catch_up.scheduled_for.isoformat() in run.error_message for run in missed)
    assert lateness(catch_up) < 1.0


@pytest.mark.parametrize("policy", ["skip", "queue", "allow", "replace"])
def test_overlap_policies(scheduler, policy):
    task = ScheduledTaskFactory(interval_seconds=1, overlap_policy=policy, config=slow(2.5), max_retries=0)
    process = scheduler()
    time.sleep(4.2)
    process.stop()
    runs = runs_of(task)
    statuses = [run.status for run in runs]
    if policy == "skip":
        assert "skipped" in statuses
        assert all("still active" in run.error_message for run in runs if run.status == "skipped")
        started = [run for run in runs if run.start_time]
        assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(started))
    elif policy == "queue":
        assert "skipped" not in statuses
        started = [run for run in runs if run.start_time]
        assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(started))
    elif policy == "allow":
        started = [run for run in runs if run.start_time]
        assert len(started) >= 3
        assert started[1].start_time < started[0].end_time  # really overlapping
    else:
        assert "terminated" in statuses
        first = runs[0]
        assert first.status == "terminated"


def test_orphans_of_a_dead_process_are_terminated_and_retried_at_startup(scheduler):
    task = ScheduledTaskFactory(
        task_type="manual_task", interval_seconds=None, config=QUICK, max_retries=1, retry_interval=0
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    orphan = TaskExecution.objects.create(
        task=task,
        status="running",
        trigger="manual",
        scheduled_for=timezone.now(),
        start_time=timezone.now(),
        heartbeat_at=timezone.now(),
        host=socket.gethostname(),
        pid=dead.pid,
        worker="gone-node",
    )
    scheduler()
    orphan.refresh_from_db()
    assert orphan.status == "terminated"
    assert "orphaned" in orphan.error_message
    retry = wait_for(lambda: TaskExecution.objects.filter(parent=orphan, trigger="retry").first(), 5, message="retry")
    wait_for(lambda: TaskExecution.objects.get(pk=retry.pk).status == "success", 10, message="retry success")


def test_a_broken_trigger_is_reported_and_others_keep_firing(scheduler):
    broken = ScheduledTaskFactory(interval_seconds=None, cron_expression="0 * * * *", config=QUICK)
    ScheduledTask.objects.filter(pk=broken.pk).update(timezone="Mars/Olympus")  # bypasses validation
    healthy = ScheduledTaskFactory(interval_seconds=1, config=QUICK)
    process = scheduler()
    wait_for(lambda: runs_of(healthy, status="success"), 5, message="the healthy task")
    broken.refresh_from_db()
    assert "Unknown timezone" in broken.schedule_error
    assert "has no working trigger" in process.output()


def test_a_timed_pause_ends_by_itself_through_the_services(scheduler):
    from scheduler_app.models import SchedulerState
    from scheduler_app.services.tasks import task_pause

    task = ScheduledTaskFactory(interval_seconds=1, config=QUICK)
    until = timezone.now() + timedelta(seconds=3)
    task_pause(task=task, user=SYSTEM, until=until)
    process = scheduler()
    version = SchedulerState.objects.get(pk=1).schedule_version
    wait_for(lambda: DjangoJob.objects.filter(id=task.job_id, next_run_time=None).exists(), 2, message="paused job")
    assert not runs_of(task)
    first = wait_for(lambda: runs_of(task, status="success"), 15, message="a run after the pause")[0]
    task.refresh_from_db()
    assert (task.paused, task.paused_until) == (False, None)
    assert SchedulerState.objects.get(pk=1).schedule_version > version  # resumed through the services
    # From the end of the pause on: the first occurrence at or after it, nothing before it.
    assert until <= first.scheduled_for < until + timedelta(seconds=1)
    assert lateness(first) < 0.5
    assert all(run.scheduled_for >= until for run in runs_of(task))
    assert f"task={task.pk} {task.name!r}: paused until" in process.output()


def test_a_trading_day_task_does_not_fire_on_a_holiday(scheduler):
    from datetime import date

    from tests.factories import CalendarFactory

    holiday = CalendarFactory(name="SSE", days=[date(2026, 11, 24)])  # Tuesday
    task = ScheduledTaskFactory(
        interval_seconds=None, cron_expression="30 18 * * *", timezone="Asia/Shanghai", calendar=holiday, config=QUICK
    )
    scheduler(clock="2026-11-23T10:29:58+00:00")  # Monday 18:29:58 in Shanghai
    run = wait_for(lambda: runs_of(task, status="success"), 10, message="Monday's run")[0]
    assert run.scheduled_for == datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
    wednesday = datetime(2026, 11, 25, 10, 30, tzinfo=UTC)  # Tuesday is not an occurrence at all
    wait_for(lambda: next_run_time(task) == wednesday, 2, message="the next run on Wednesday")
    assert len(runs_of(task)) == 1  # nothing recorded for the holiday: not due, not skipped
