"""Fixtures that run the real scheduler process against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from scheduler_app.models import SchedulerNode, TaskExecution

BASE_DIR = Path(settings.BASE_DIR)


def database_url() -> str:
    """The test database, as a DATABASE_URL for the processes a test starts."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    scheme, port = ("postgres", 5432) if connection.vendor == "postgresql" else ("mysql", 3306)
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"{scheme}://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or port}/{db['NAME']}"


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.05, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message or condition}")


class SchedulerProcess:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_leader(self, timeout: float = 20.0) -> None:
        wait_for(
            lambda: SchedulerNode.objects.filter(pid=self.pid, is_leader=True).exists() or self.proc.poll() is not None,
            timeout,
            message="the scheduler to lead",
        )
        assert self.proc.poll() is None, self.output()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@pytest.fixture
def scheduler(transactional_db, tmp_path):
    """Start `manage.py runscheduler` (optionally with a moved clock); stopped at the end of the test."""
    started: list[SchedulerProcess] = []

    def start(*args: str, clock: str | None = None, env: dict[str, str] | None = None, wait: bool = True):
        log = tmp_path / f"scheduler-{len(started)}.log"
        command = ["manage.py", "runscheduler", "--poll-seconds", "0.1", *args]
        if clock:
            command = ["-m", "tests.scheduling.clock", clock, *command[1:]]
        child_env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "SCHEDULER_SHUTDOWN_GRACE": "3",
            "SCHEDULER_LEASE_SECONDS": "3",
            **(env or {}),
        }
        proc = subprocess.Popen(
            [sys.executable, *command],
            cwd=BASE_DIR,
            env=child_env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = SchedulerProcess(proc, log)
        started.append(process)
        if wait:
            process.wait_leader()
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGTERM)
            try:
                process.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.proc.pid, signal.SIGKILL)
                process.proc.wait()
    nodes = SchedulerNode.objects.filter(pid__in=[process.pid for process in started]).values_list("node_id")
    left = TaskExecution.objects.filter(status__in=TaskExecution.STARTED_STATUSES, worker__in=nodes)
    assert not left.exists(), "a stopped scheduler left executions running"
