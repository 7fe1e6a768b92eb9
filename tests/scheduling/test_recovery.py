"""Orphan recovery (scheduling/recovery.py): every active row without a live owner is ended, with the
reason, and retried per its task's policy; rows a live owner works on are never touched."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import TaskExecution
from scheduler_app.scheduling.recovery import orphans_recover
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

HOST = socket.gethostname()


@pytest.fixture
def dead_pid():
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def started(task, **fields) -> TaskExecution:
    now = timezone.now()
    fields = {"start_time": now, "heartbeat_at": now, "host": HOST, "pid": os.getpid(), "worker": "me", **fields}
    return TaskExecutionFactory(task=task, status="running", scheduled_for=now, **fields)


def recover(**kwargs) -> int:
    return orphans_recover(node_id="me", host=HOST, now=timezone.now(), **kwargs)


def test_a_run_of_a_dead_process_on_this_host_is_ended_at_once_and_retried(dead_pid):
    task = ScheduledTaskFactory(max_retries=1)
    lost = started(task, pid=dead_pid, worker="other-node")
    assert recover() == 1
    lost.refresh_from_db()
    assert lost.status == "terminated"
    assert "its process is gone" in lost.error_message
    assert TaskExecution.objects.filter(parent=lost, trigger="retry", status="pending").exists()


def test_a_run_without_a_heartbeat_is_ended_and_a_live_one_is_not(settings):
    settings.SCHEDULER_ORPHAN_SECONDS = 30
    task = ScheduledTaskFactory()
    quiet = started(task, host="elsewhere", worker="far-node", heartbeat_at=timezone.now() - timedelta(minutes=2))
    beating = started(task, host="elsewhere", worker="far-node")
    assert recover() == 1
    quiet.refresh_from_db()
    beating.refresh_from_db()
    assert (quiet.status, beating.status) == ("terminated", "running")
    assert "no heartbeat since" in quiet.error_message


def test_runs_this_process_executes_are_never_touched(settings):
    settings.SCHEDULER_ORPHAN_SECONDS = 30
    mine = started(ScheduledTaskFactory(), heartbeat_at=timezone.now() - timedelta(minutes=2))
    assert recover(local_ids={mine.pk}) == 0
    mine.refresh_from_db()
    assert mine.status == "running"


def test_steps_are_not_retried_one_by_one(dead_pid):
    started(ScheduledTaskFactory(max_retries=3), pid=dead_pid, worker="other-node", trigger="workflow")
    assert recover() == 1
    assert not TaskExecution.objects.filter(trigger="retry").exists()


@pytest.mark.parametrize("parent_status", ["failed", "terminated", "success", None])
def test_a_pending_step_whose_workflow_run_ended_is_ended_too(parent_status):
    """Rows the lifecycle no longer writes (earlier versions created every step pending up front); a
    left-over one held its task's run-now back forever ("RunActive ... pending")."""
    workflow = ScheduledTaskFactory(task_type="workflow", config={})
    step_task = ScheduledTaskFactory()
    parent = TaskExecutionFactory(task=workflow, status=parent_status or "success")
    step = TaskExecutionFactory(task=step_task, status="pending", trigger="workflow", parent=parent)
    if parent_status is None:
        parent.delete()
    assert recover() == 1
    step.refresh_from_db()
    assert step.status == "terminated"
    assert "ended without it" in step.error_message


def test_a_pending_step_of_a_running_workflow_is_left_to_its_workflow():
    parent = started(ScheduledTaskFactory(task_type="workflow", config={}))
    step = TaskExecutionFactory(task=ScheduledTaskFactory(), status="pending", trigger="workflow", parent=parent)
    assert recover() == 0
    step.refresh_from_db()
    assert step.status == "pending"
