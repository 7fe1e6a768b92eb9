"""SCHEDULER_EXECUTION_BACKEND=celery end to end: a real runscheduler and real Celery workers.

Command, action and workflow tasks run on the workers (rows name the worker that ran them), a task's
`config["queue"]` routes it, terminate and pause reach a run on a worker, a run queued for a worker
is cancelled and its message revoked, and a worker killed with SIGKILL mid-run leaves an orphan that
the leader ends and retries, which a new worker then runs.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services.executions import execution_pause, execution_resume, execution_terminate
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_trigger
from tests.factories import ScheduledTaskFactory, user_with
from tests.scheduling.conftest import wait_for

pytestmark = [pytest.mark.process, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
TERMINAL = TaskExecution.TERMINAL_STATUSES


def manual(config: dict, **fields) -> ScheduledTask:
    fields.setdefault("task_type", "manual_task")
    return ScheduledTaskFactory(interval_seconds=None, config=config, **fields)


def status_of(execution: TaskExecution) -> str:
    return TaskExecution.objects.values_list("status", flat=True).get(pk=execution.pk)


def wait_status(execution: TaskExecution, *statuses: str, timeout: float = 15.0) -> TaskExecution:
    wait_for(lambda: status_of(execution) in statuses, timeout, message=f"#{execution.pk} to be {statuses}")
    execution.refresh_from_db()
    return execution


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def assert_ran_on(execution: TaskExecution, worker) -> None:
    """The row was claimed and run by this worker process, start to end."""
    assert execution.worker == worker.hostname, execution.worker
    assert execution.host == socket.gethostname()
    assert execution.pid == worker.pid
    assert execution.start_time is not None
    assert execution.end_time is not None
    if execution.trigger == TaskExecution.Trigger.WORKFLOW:
        # A step is written when it starts, already claimed: its start is its creation.
        assert abs((execution.start_time - execution.created_at).total_seconds()) < 1
    else:
        assert execution.start_time >= execution.created_at
    assert execution.heartbeat_at is not None
    assert execution.duration_seconds is not None


def test_command_action_and_workflow_run_on_workers_and_queues_route(celery_worker, celery_scheduler):
    main = celery_worker("w1", wait=False)
    other = celery_worker("w2", queues="zq-other", wait=False)
    main.wait_ready()
    other.wait_ready()
    scheduled = ScheduledTaskFactory(interval_seconds=1, config=QUICK, max_retries=0)
    routed = manual({**QUICK, "queue": "zq-other"})
    command = manual({"command": f"{sys.executable} -m scheduler_app.jobs.example_job --steps 2 --delay 0.1"})
    step_a = manual({"task_action": "example_task", "steps": 2, "duration_seconds": 0.2})
    step_b = manual(QUICK)
    workflow = manual(
        {
            "workflow_type": "serial",
            "on_failure": "stop",
            "tasks": [
                {"task_id": step_a.pk, "name": "a", "dependencies": []},
                {"task_id": step_b.pk, "name": "b", "dependencies": [step_a.pk]},
            ],
        },
        task_type="workflow",
        cron_expression="0 18 * * *",
    )
    process = celery_scheduler()
    runs = [task_trigger(task=task, user=SYSTEM) for task in (routed, command, workflow)]
    for execution in runs:
        wait_status(execution, *TERMINAL, timeout=20)
    wait_for(lambda: TaskExecution.objects.filter(task=scheduled, status="success").count() >= 3, 10, message="3 runs")
    process.stop()

    routed_run, command_run, workflow_run = (TaskExecution.objects.get(pk=run.pk) for run in runs)
    assert routed_run.status == "success"
    assert_ran_on(routed_run, other)  # config["queue"] chose the worker
    assert command_run.status == "success", command_run.error_message
    assert_ran_on(command_run, main)
    assert "step 2/2 done" in command_run.output_tail
    assert command_run.progress_percent == 100
    assert workflow_run.status == "success", workflow_run.error_message
    assert_ran_on(workflow_run, main)
    steps = list(TaskExecution.objects.filter(parent=workflow_run).order_by("start_time"))
    assert [step.task_id for step in steps] == [step_a.pk, step_b.pk]
    for step in steps:
        assert step.status == "success"
        assert step.trigger == "workflow"
        assert_ran_on(step, main)
    scheduled_runs = list(TaskExecution.objects.filter(task=scheduled).exclude(status="skipped").order_by("id"))
    finished = [run for run in scheduled_runs if run.status == "success"]
    assert len(finished) >= 3
    for run in finished:
        assert run.trigger == "schedule"
        assert_ran_on(run, main)
        assert 0 <= (run.start_time - run.scheduled_for).total_seconds() < 1.0  # lateness, as for threads
    # Every row: nothing left running, nothing left handed over except a last occurrence still queued.
    assert not TaskExecution.objects.filter(status__in=("running", "paused")).exists()
    leftovers = TaskExecution.objects.filter(status="pending").exclude(task=scheduled)
    assert not leftovers.exists(), list(leftovers.values())
    assert "handed over to Celery queue 'zquant'" in process.output()  # occurrences are handed over when they fire

    # The API and the admin show which worker ran a run.
    client = APIClient()
    client.force_authenticate(user_with("viewer", "view_taskexecution"))
    body = client.get(f"/api/v1/scheduler/executions/{command_run.pk}/").json()
    assert (body["worker"], body["host"], body["pid"]) == (main.hostname, socket.gethostname(), main.pid)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    page = admin.get("/admin/scheduler_app/taskexecution/").content.decode()
    assert main.hostname in page
    assert other.hostname in page


def kill_processes_with(marker: str) -> None:
    """Kill every process whose command line carries `marker` (a test's own, even after a failure)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read():
                    os.kill(int(entry), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


@pytest.fixture
def sleeper_marker():
    marker = f"zq-celery-sleep-{time.time_ns()}"
    yield marker
    kill_processes_with(marker)


def test_pause_resume_terminate_and_cancel_across_processes(celery_worker, celery_scheduler, sleeper_marker):
    worker = celery_worker("w1")
    marker = sleeper_marker
    sleeper = manual({"command": f"{sys.executable} -c 'import time; time.sleep(120)' {marker}"})
    nobody = manual({**QUICK, "queue": "zq-nobody"})  # no worker listens to this queue
    process = celery_scheduler()

    queued = task_trigger(task=nobody, user=SYSTEM)
    wait_for(
        lambda: TaskExecution.objects.filter(pk=queued.pk, handover_queue="zq-nobody").exists(),
        5,
        message="the run to be handed over",
    )
    assert status_of(queued) == "pending"  # a queued message is not a started run
    execution_terminate(execution=queued, user=SYSTEM)
    assert status_of(queued) == "terminated"
    wait_for(lambda: "revoked the Celery messages" in process.output(), 5, message="the revoke")

    execution = task_trigger(task=sleeper, user=SYSTEM)
    running = wait_for(
        lambda: TaskExecution.objects.filter(pk=execution.pk, status="running", child_pid__isnull=False).first(),
        15,
        message="the command to run on the worker",
    )
    assert running.worker == worker.hostname
    assert running.pid == worker.pid
    child = running.child_pid
    execution_pause(execution=running, user=SYSTEM)
    wait_status(running, "paused", timeout=5)
    with open(f"/proc/{child}/stat") as stat:
        # The row says paused only once the command is stopped (SIGSTOP reached it on the worker).
        assert stat.read().split()[2] == "T"
    execution_resume(execution=running, user=SYSTEM)
    wait_status(running, "running", timeout=5)
    began = time.monotonic()
    execution_terminate(execution=running, user=SYSTEM)
    ended = wait_status(running, "terminated", "failed", "success", timeout=10)
    assert ended.status == "terminated", ended.error_message
    assert time.monotonic() - began < 5
    assert ended.worker == worker.hostname
    wait_for(lambda: not process_exists(child), 5, message="the command's process group to be gone")
    assert not TaskExecution.objects.filter(parent=ended).exists()  # terminated runs are never retried
    assert worker.proc.poll() is None  # the worker lives on
    # The worker got the revoke broadcast ("Tasks flagged as revoked: zq-execution-N").
    wait_for(lambda: f"zq-execution-{queued.pk}" in worker.output(), 5, message="the worker to see the revoke")
    process.stop()


def hang_once(flag) -> dict:
    """A command whose first run hangs and whose next run (a retry) ends at once."""
    code = (
        "import os, sys, time; p = sys.argv[1]; again = os.path.exists(p); "
        "open(p, 'w').close(); again or time.sleep(120)"
    )
    return {"command": [sys.executable, "-c", code, str(flag)]}


def test_a_killed_worker_leaves_an_orphan_that_is_retried_on_a_new_worker(celery_worker, celery_scheduler, tmp_path):
    first = celery_worker("w1")
    task = manual(hang_once(tmp_path / "started-once"), max_retries=1, retry_interval=0)
    process = celery_scheduler()
    execution = task_trigger(task=task, user=SYSTEM)
    running = wait_for(
        lambda: TaskExecution.objects.filter(pk=execution.pk, status="running", child_pid__isnull=False).first(),
        15,
        message="the command to run on w1",
    )
    assert running.worker == first.hostname
    child = running.child_pid
    wait_for(lambda: (tmp_path / "started-once").exists(), 5, message="the command to begin its work")
    first.kill9()
    orphan = wait_status(running, "terminated", timeout=10)
    assert "orphaned" in orphan.error_message, orphan.error_message
    assert first.hostname in orphan.error_message
    assert orphan.end_time is not None
    wait_for(lambda: not process_exists(child), 5, message="the dead worker's command to be killed")

    retry = wait_for(lambda: TaskExecution.objects.filter(parent=orphan, trigger="retry").first(), 5, message="retry")
    assert retry.retry_count == 1
    # No worker is alive: the retry waits handed over, pending, and is not mistaken for an orphan.
    handed_over = TaskExecution.objects.filter(pk=retry.pk, status="pending").exclude(handover_queue="")
    wait_for(
        handed_over.exists,
        5,
        message="the retry to be handed over",
    )
    time.sleep(1.5)
    assert status_of(retry) == "pending"

    second = celery_worker("w2")
    done = wait_status(retry, *TERMINAL, timeout=20)
    assert done.status == "success", done.error_message
    assert_ran_on(done, second)
    process.stop()
    rows = list(TaskExecution.objects.filter(task=task).order_by("id"))
    assert [(row.status, row.trigger, row.retry_count) for row in rows] == [
        ("terminated", "manual", 0),
        ("success", "retry", 1),
    ]


def test_a_worker_without_heartbeats_is_orphaned_and_its_late_end_changes_nothing(
    celery_worker, celery_scheduler, tmp_path
):
    worker = celery_worker("w1")
    task = manual(hang_once(tmp_path / "started-once"), max_retries=1, retry_interval=0)
    process = celery_scheduler()
    execution = task_trigger(task=task, user=SYSTEM)
    running = wait_for(
        lambda: TaskExecution.objects.filter(pk=execution.pk, status="running", child_pid__isnull=False).first(),
        15,
        message="the command to run on w1",
    )
    wait_for(lambda: (tmp_path / "started-once").exists(), 5, message="the command to begin its work")
    os.kill(worker.pid, signal.SIGSTOP)  # alive but silent: a hung machine, a network partition
    try:
        orphan = wait_status(running, "terminated", timeout=12)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    assert "no heartbeat since" in orphan.error_message, orphan.error_message
    retry = wait_for(lambda: TaskExecution.objects.filter(parent=orphan, trigger="retry").first(), 5, message="retry")
    done = wait_status(retry, *TERMINAL, timeout=20)  # the woken worker runs the retry
    assert done.status == "success", done.error_message
    assert_ran_on(done, worker)
    # The woken worker saw its old run ended elsewhere and stopped it; the terminal row was not rewritten.
    wait_for(lambda: f"execution #{orphan.pk} had already ended" in worker.output(), 10, message="the late end")
    again = TaskExecution.objects.get(pk=orphan.pk)
    assert (again.status, again.error_message, again.end_time) == ("terminated", orphan.error_message, orphan.end_time)
    process.stop()
