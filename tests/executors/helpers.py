"""Helpers for tests that run executions for real (threads, child processes, the monitor)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from scheduler_app.executors import command
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.runtime import runner as runs
from scheduler_app.runtime import transitions
from scheduler_app.runtime.context import ExecutionContext
from scheduler_app.runtime.monitor import ExecutionMonitor
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory


def make_task(config: dict[str, Any], **fields: Any) -> ScheduledTask:
    fields.setdefault("task_type", ScheduledTask.TaskType.MANUAL_TASK)
    if fields["task_type"] == ScheduledTask.TaskType.MANUAL_TASK:
        fields.setdefault("interval_seconds", None)
    return ScheduledTaskFactory(config=config, **fields)


def make_execution(task: ScheduledTask, **fields: Any) -> TaskExecution:
    return TaskExecutionFactory(task=task, **fields)


def run_config(config: dict[str, Any], **task_fields: Any) -> TaskExecution:
    """Create a task with `config`, run one execution of it synchronously, return the final row."""
    execution = make_execution(make_task(config, **task_fields))
    return runs.execution_run(execution_id=execution.pk)


class Runner:
    """Runs an execution in a background thread (as the scheduler's pool would)."""

    def __init__(self, execution_id: int) -> None:
        self.execution_id = execution_id
        self.result: TaskExecution | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = runs.execution_run(execution_id=self.execution_id)
        except BaseException as error:  # pragma: no cover - reported by join()
            self.error = error
        finally:
            connections.close_all()

    def join(self, timeout: float = 30) -> TaskExecution:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the execution did not finish in time"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def wait_for(predicate: Callable[[], Any], *, timeout: float = 10, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def row(execution_id: int) -> TaskExecution:
    return TaskExecution.objects.get(pk=execution_id)


def request(execution_id: int, **flags: Any) -> None:
    """Set control flags as the services do (terminate_requested=True, is_paused=True, ...)."""
    assert TaskExecution.objects.filter(pk=execution_id).update(**flags) == 1


def live_group_members(pgid: int) -> list[int]:
    """Pids of processes (zombies excepted) whose process group is `pgid`, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def python_command(code: str, *args: str) -> list[str]:
    """A command (argv list) that runs Python code in the child."""
    return ["python", "-c", code, *args]


@pytest.fixture
def fast(monkeypatch):
    """Short intervals: flags reach runs within 0.1 s, progress is written at once, quick kills."""
    monkeypatch.setattr(ExecutionMonitor, "poll_interval", 0.05)
    monkeypatch.setattr(ExecutionContext, "progress_interval", 0.0)
    monkeypatch.setattr(ExecutionContext, "output_interval", 0.0)
    monkeypatch.setattr(ExecutionContext, "pause_poll", 0.02)
    monkeypatch.setattr(command, "KILL_GRACE_SECONDS", 1.0)
    monkeypatch.setattr(transitions, "FINISH_RETRY_DELAYS", (0.0, 0.0, 0.0))


def start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


class Tracked:
    """Processes a test saw (pid and start time, so a reused pid is not mistaken for them)."""

    def __init__(self) -> None:
        self.processes: dict[int, int] = {}

    def add(self, *pids: int) -> None:
        for pid in pids:
            started = start_time(pid)
            assert started is not None, f"process {pid} is not running"
            self.processes[pid] = started

    def alive(self) -> list[int]:
        """The tracked processes that still run (zombies count as gone)."""
        return [
            pid
            for pid, started in self.processes.items()
            if start_time(pid) == started and process_state(pid) not in ("Z", "X", None)
        ]

    def kill_all(self) -> None:
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
