"""Execution backends side by side: the scheduler's thread pool, then 1 and 2 Celery workers.

Each phase runs N interval tasks due every second (one-second no-op runs) for S seconds on the
same database, with a fresh runscheduler (and fresh workers), and reports runs/s, lateness
(start_time − scheduled_for) and the occurrences that did not succeed. Needs the celery extra and
Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/4, flushed first).
Usage: python bench/celery_throughput.py [tasks] [seconds] (BENCH_DATABASE_URL, default: MariaDB, see _common.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from _common import percentile, setup, start_scheduler, start_workers, stop_scheduler, stop_workers, table, wait_leader

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 25.0
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")
POOL = 64  # thread backend: executions at once; celery backend: the leader's own firing threads
CONCURRENCY = 8  # threads per Celery worker
NOOP = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
HEADERS = ["backend", "workers", "tasks/s due", "runs/s", "late p50 ms", "late p99 ms", "missed"]


def phase(backend: str, workers: int) -> list[object]:
    import redis

    from scheduler_app.models import ScheduledTask, TaskExecution

    redis.Redis.from_url(BROKER).flushdb()
    TaskExecution.objects.all().delete()
    ScheduledTask.objects.all().delete()
    ScheduledTask.objects.bulk_create(
        ScheduledTask(name=f"bench-{i}", interval_seconds=1, config=NOOP, max_retries=0, timezone="UTC")
        for i in range(TASKS)
    )
    pool: list[subprocess.Popen] = []
    proc = None
    try:
        pool = start_workers(workers, concurrency=CONCURRENCY) if workers else []
        proc = start_scheduler(
            "--pool-size",
            str(POOL),
            "--log-level",
            "WARNING",
            env={"SCHEDULER_EXECUTION_BACKEND": backend},
            log=f"/tmp/bench-scheduler-{backend}-{workers}.log",
        )
        wait_leader(proc)
        time.sleep(3)  # warm up
        begin = datetime.now(UTC)
        time.sleep(SECONDS)
        end = datetime.now(UTC)
        time.sleep(3)  # let the last runs of the window finish
    finally:
        if proc is not None:
            stop_scheduler(proc)
        stop_workers(pool)
    rows = TaskExecution.objects.filter(scheduled_for__gte=begin, scheduled_for__lt=end)
    late = [
        (start - due).total_seconds() * 1000
        for start, due in rows.filter(status="success").values_list("start_time", "scheduled_for")
    ]
    expected = TASKS * int(SECONDS)
    return [
        backend,
        workers or "-",
        TASKS,
        f"{len(late) / SECONDS:.0f}",
        f"{percentile(late, 50):.0f}",
        f"{percentile(late, 99):.0f}",
        max(expected - len(late), 0),
    ]


if __name__ == "__main__":
    os.environ["CELERY_BROKER_URL"] = BROKER
    url = setup()
    print(
        f"database: {url.split('@')[-1]}; broker: {BROKER}; {os.cpu_count()} cores; {TASKS} one-second no-op "
        f"tasks for {SECONDS:.0f} s per phase; thread pool {POOL}; Celery workers with {CONCURRENCY} threads each",
        flush=True,
    )
    rows = []
    for backend, workers in (("thread", 0), ("celery", 1), ("celery", 2)):
        rows.append(phase(backend, workers))
        print(table(HEADERS, [rows[-1]]).splitlines()[-1], flush=True)
    print()
    print(table(HEADERS, rows))
