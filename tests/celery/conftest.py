"""Real Celery workers (separate processes) against the local Redis, beside a real scheduler process.

The broker is a Redis database of its own for each test session: the first free one of databases
5-15 of the local Redis (a lock key marks it taken), so two test sessions running at once never
share queues or revokes; it is flushed before each test. REDIS_TEST_URL (redis://host:port/db) names
one instead. Without Redis or Celery these tests are skipped, except in CI (CI=true), where they must
run: there a missing broker is a failure, not a skip.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scheduling.conftest import BASE_DIR, database_url, scheduler, wait_for

__all__ = ["scheduler"]  # the runscheduler fixture, reused

REDIS_SERVER = "redis://127.0.0.1:6379"
TEST_DATABASES = range(5, 16)
LOCK_KEY = "zquant-test-session"
# The scheduler and the workers of these tests: quick heartbeats, quick orphan detection.
FAST_LIVENESS = {"SCHEDULER_HEARTBEAT_SECONDS": "0.5", "SCHEDULER_ORPHAN_SECONDS": "4"}
CELERY_ENV = {
    "SCHEDULER_EXECUTION_BACKEND": "celery",
    "SCHEDULER_CELERY_REQUEUE_SECONDS": "60",
    **FAST_LIVENESS,
}


def _unavailable() -> str | None:
    try:
        import celery  # noqa: F401
        import redis
    except ImportError as error:
        return f"Celery is not installed ({error}); pip install -e '.[celery]'"
    url = os.environ.get("REDIS_TEST_URL", REDIS_SERVER)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except Exception as error:
        return f"Redis is not reachable at {url} ({error})"
    return None


@pytest.fixture(scope="session")
def broker():
    """The broker URL of this test session (a Redis database nobody else uses meanwhile)."""
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the Celery tests (.ci/run starts Redis)")
        pytest.skip(reason)
    import redis

    if os.environ.get("REDIS_TEST_URL"):
        yield os.environ["REDIS_TEST_URL"]
        return
    for number in TEST_DATABASES:
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{number}")
        if client.set(LOCK_KEY, os.getpid(), nx=True, ex=3600):
            break
    else:
        pytest.fail(f"every Redis database {TEST_DATABASES} is taken by another test session ({LOCK_KEY})")
    try:
        yield f"{REDIS_SERVER}/{number}"
    finally:
        client.delete(LOCK_KEY)


@pytest.fixture
def clean_broker(broker) -> str:
    import redis

    client = redis.Redis.from_url(broker)
    client.flushdb()
    client.set(LOCK_KEY, os.getpid(), ex=3600)  # still ours
    return broker


class WorkerProcess:
    def __init__(self, name: str, proc: subprocess.Popen, log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def hostname(self) -> str:
        return f"{self.name}@{os.uname().nodename}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for(
            lambda: " ready." in self.output() or self.proc.poll() is not None, timeout, message=f"{self.name} ready"
        )
        assert self.proc.poll() is None, self.output()

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def celery_worker(transactional_db, clean_broker, tmp_path):
    """Start `celery -A zquant_site worker` processes; stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(name: str, *, queues: str = "zquant", concurrency: int = 4, wait: bool = True) -> WorkerProcess:
        log = tmp_path / f"worker-{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "zquant_site",
            "worker",
            "-n",
            f"{name}@%h",
            "-Q",
            queues,
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": clean_broker, **CELERY_ENV}
        proc = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )
        worker = WorkerProcess(name, proc, log)
        started.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def celery_scheduler(scheduler, clean_broker):
    """The real runscheduler with SCHEDULER_EXECUTION_BACKEND=celery."""

    def start(*args: str, env: dict[str, str] | None = None, **kwargs):
        return scheduler(*args, env={"CELERY_BROKER_URL": clean_broker, **CELERY_ENV, **(env or {})}, **kwargs)

    return start
