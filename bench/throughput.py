"""Throughput: raise the number of 1-second no-op tasks until runs are late or missed.

A step keeps up when no occurrence is missed or skipped and the p99 lateness (start_time −
scheduled_for) stays below the 1 s interval; the sustained rate is the best step that kept up.
Beside it, the raw ceiling of the same database in the same run: threads doing the two single-row
commits a run needs at least (insert the execution, update it at the end), as fast as they can.
Usage: python bench/throughput.py [seconds per step] (BENCH_DATABASE_URL, default MariaDB zq_bench_throughput).
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime

from _common import percentile, setup, start_scheduler, stop_scheduler, table, wait_leader

STEP_SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 15.0
STEPS = [50, 100, 200, 300, 400, 600, 800]
POOL = 64
NOOP = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


def raw_ceiling(seconds: float = 5.0, threads: int = POOL) -> float:
    """Runs/s if a run cost nothing but two single-row commits."""
    from django.db import close_old_connections
    from django.utils import timezone

    from scheduler_app.models import ScheduledTask, TaskExecution

    task = ScheduledTask.objects.create(name="ceiling", task_type="manual_task", config={})
    done = [0] * threads
    stop = threading.Event()

    def worker(slot: int) -> None:
        while not stop.is_set():
            execution = TaskExecution.objects.create(
                task=task, status="running", trigger="manual", start_time=timezone.now()
            )
            TaskExecution.objects.filter(pk=execution.pk).update(status="success", end_time=timezone.now())
            done[slot] += 1
        close_old_connections()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in pool:
        thread.join()
    task.delete()
    return sum(done) / seconds


def step(count: int) -> list[object]:
    from scheduler_app.models import ScheduledTask, TaskExecution

    ScheduledTask.objects.all().delete()
    ScheduledTask.objects.bulk_create(
        ScheduledTask(name=f"tp-{i}", interval_seconds=1, config=NOOP, max_retries=0, timezone="UTC")
        for i in range(count)
    )
    proc = start_scheduler("--pool-size", str(POOL), "--log-level", "WARNING")
    wait_leader(proc)
    time.sleep(3)
    begin = datetime.now(UTC)
    time.sleep(STEP_SECONDS)
    end = datetime.now(UTC)
    time.sleep(2)
    stop_scheduler(proc)
    rows = TaskExecution.objects.filter(scheduled_for__gte=begin, scheduled_for__lt=end)
    late = [
        (s - d).total_seconds() * 1000
        for s, d in rows.filter(status="success").values_list("start_time", "scheduled_for")
    ]
    done = len(late)
    expected = count * int(STEP_SECONDS)
    missed = expected - rows.exclude(status="skipped").count()
    skipped = rows.filter(status="skipped").count()
    return [
        count,
        f"{done / STEP_SECONDS:.0f}",
        f"{percentile(late, 50):.0f}",
        f"{percentile(late, 99):.0f}",
        max(missed, 0),
        skipped,
    ]


def keeps_up(row: list[object]) -> bool:
    return not row[4] and not row[5] and float(row[3]) < 1000


if __name__ == "__main__":
    url = setup()
    print(f"database: {url.split('@')[-1]}; pool {POOL}; {STEP_SECONDS:.0f} s per step")
    ceiling = raw_ceiling()
    rows = []
    for count in STEPS:
        row = step(count)
        rows.append(row)
        print(
            table(["tasks/s due", "runs/s", "late p50 ms", "late p99 ms", "missed", "skipped"], [row]).splitlines()[-1],
            flush=True,
        )
        if not keeps_up(row):
            break
    print()
    print(table(["tasks/s due", "runs/s", "late p50 ms", "late p99 ms", "missed", "skipped"], rows))
    sustained = max((float(r[1]) for r in rows if keeps_up(r)), default=0.0)
    print(f"\nsustained: {sustained:.0f} runs/s (no missed or skipped run, p99 lateness under 1 s)")
    print(f"raw ceiling (2 single-row commits per run, same database): {ceiling:.0f} runs/s")
