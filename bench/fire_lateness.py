"""Fire lateness: our runscheduler vs a bare APScheduler BackgroundScheduler, same 50 jobs (interval 1 s).

Ours: lateness = start_time − scheduled_for from the execution rows. Bare APScheduler: the job
function records when it starts; its k-th occurrence is due at start + k seconds. Missed = due
occurrences in the measured window with no run. Usage: python bench/fire_lateness.py [seconds] [jobs]
(BENCH_DATABASE_URL, default MariaDB zq_bench_fire_lateness; BENCH_POOL sets the pool size).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from _common import percentile, setup, start_scheduler, stop_scheduler, table, wait_leader

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
JOBS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
NOOP = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}


def measure_ours() -> list[object]:
    from scheduler_app.models import ScheduledTask, TaskExecution

    ScheduledTask.objects.all().delete()
    tasks = [
        ScheduledTask(name=f"bench-{i}", interval_seconds=1, config=NOOP, max_retries=0, timezone="UTC")
        for i in range(JOBS)
    ]
    ScheduledTask.objects.bulk_create(tasks)
    proc = start_scheduler(
        "--pool-size", os.environ.get("BENCH_POOL", str(max(JOBS + 14, 16))), "--log-level", "WARNING"
    )
    wait_leader(proc)
    time.sleep(2)  # let every job fire once before the window opens
    window_start = datetime.now(UTC)
    time.sleep(SECONDS)
    window_end = datetime.now(UTC)
    time.sleep(1.5)
    stop_scheduler(proc)
    rows = TaskExecution.objects.filter(scheduled_for__gte=window_start, scheduled_for__lt=window_end)
    started = [
        (start - due).total_seconds() * 1000
        for start, due in rows.filter(start_time__isnull=False).values_list("start_time", "scheduled_for")
    ]
    expected = JOBS * int(SECONDS)
    recorded = rows.exclude(status="skipped").count()
    return [
        "ours (runscheduler)",
        len(started),
        *fmt(started),
        max(0, expected - recorded),
        rows.filter(status="skipped").count(),
    ]


def measure_bare() -> list[object]:
    from apscheduler.schedulers.background import BackgroundScheduler

    samples: list[tuple[int, float]] = []
    lock = threading.Lock()

    def job(index: int) -> None:
        now = time.time()
        with lock:
            samples.append((index, now))

    scheduler = BackgroundScheduler(timezone=UTC)
    start = datetime.now(UTC) + timedelta(seconds=1)
    for i in range(JOBS):
        scheduler.add_job(job, "interval", seconds=1, start_date=start, args=[i], id=f"bare-{i}")
    scheduler.start()
    time.sleep(2 + SECONDS + 1.5)
    scheduler.shutdown(wait=True)
    origin = start.timestamp()
    window = (origin + 2, origin + 2 + int(SECONDS))
    late = []
    seen = set()
    for index, at in samples:
        due = origin + int(at - origin)  # occurrences are due on whole seconds after `start`
        if window[0] <= due < window[1]:
            late.append((at - due) * 1000)
            seen.add((index, due))
    expected = JOBS * int(SECONDS)
    return ["bare APScheduler", len(late), *fmt(late), max(0, expected - len(seen)), 0]


def fmt(values: list[float]) -> list[str]:
    return [
        f"{percentile(values, 50):.1f}",
        f"{percentile(values, 99):.1f}",
        f"{max(values, default=float('nan')):.1f}",
    ]


if __name__ == "__main__":
    url = setup()
    print(f"database: {url.split('@')[-1]}; {JOBS} jobs every 1 s; window {SECONDS:.0f} s")
    results = [measure_bare(), measure_ours()]
    print(table(["scheduler", "runs", "p50 ms", "p99 ms", "max ms", "missed", "skipped"], results))
