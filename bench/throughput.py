"""Throughput: raise the number of 1-second tasks until runs fall behind.

Every task runs the `bench_probe` action (bench/probe), which records the instant its own code began;
lateness = that instant − the occurrence's due time (scheduled_for). A window of S whole seconds holds
exactly tasks × S occurrences, and each lands in exactly one column:
  ok       succeeded, its code began less than 1 s after due
  late     succeeded, its code began 1 s or more after due (its next occurrence was already due)
  skipped  a row the overlap policy marked skipped
  failed   failed, terminated or completed with failures
  pending  still pending or running when the step is read (3 s after the window closed)
  missed   no row at all
A step keeps up when every occurrence is ok; the sustained rate is the best step that kept up. Beside
it, the raw ceiling of the same database in the same run: threads doing the two single-row commits a
run needs at least (insert the execution, update it at the end), as fast as they can. The goal: one
scheduler process at the defaults sustains 60% of that ceiling.

Configurations, one after the other: one runscheduler process at the defaults (nothing set), then the
Celery backend with WORKERS worker processes (so the runs use more than one process's CPU), each a
thread pool of CONCURRENCY, on Redis (BENCH_BROKER_URL, default redis://127.0.0.1:6379/14, flushed).
Usage: python bench/throughput.py [seconds per step=15] [--no-celery]
(BENCH_DATABASE_URL, default MariaDB zq_bench_throughput).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from _common import percentile, setup, start_scheduler, start_workers, stop_scheduler, stop_workers, table, wait_leader

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
STEP_SECONDS = int(ARGS[0]) if ARGS else 15
CELERY = "--no-celery" not in sys.argv
STEPS = [50, 100, 200, 300, 400, 600, 800, 1000]
BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
WORKERS = 2
CONCURRENCY = 16
CEILING_THREADS = 64
PROBE = {"task_action": "bench_probe"}
HEADERS = ["config", "tasks/s due", "runs/s", "body p50 ms", "body p99 ms", "ok", "late", "skipped"]
HEADERS += ["failed", "pending", "missed"]
FAILED = {"failed", "terminated", "completed"}
PENDING = {"pending", "running", "paused"}


def raw_ceiling(seconds: float = 5.0, threads: int = CEILING_THREADS) -> float:
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


def step(config: str, count: int) -> list[object]:
    from scheduler_app.models import ScheduledTask, TaskExecution

    TaskExecution.objects.all().delete()
    ScheduledTask.objects.all().delete()
    ScheduledTask.objects.bulk_create(
        ScheduledTask(name=f"tp-{i}", interval_seconds=1, config=PROBE, max_retries=0, timezone="UTC")
        for i in range(count)
    )
    workers = []
    proc = None
    try:
        if config == "celery":
            import redis

            redis.Redis.from_url(BROKER).flushdb()
            workers = start_workers(WORKERS, concurrency=CONCURRENCY)
        env = {"SCHEDULER_EXECUTION_BACKEND": "celery"} if config == "celery" else {}
        proc = start_scheduler("--log-level", "WARNING", env=env)
        wait_leader(proc)
        time.sleep(3)  # warm up
        begin = datetime.now(UTC)
        end = begin + timedelta(seconds=STEP_SECONDS)
        time.sleep(STEP_SECONDS + 3)  # the window, then the runs due at its end finish
        counts = tally(TaskExecution.objects.filter(scheduled_for__gte=begin, scheduled_for__lt=end))
    finally:
        if proc is not None:
            stop_scheduler(proc)
        stop_workers(workers)
    body = counts.pop("body")
    counts["missed"] = max(0, count * STEP_SECONDS - sum(counts.values()))
    return [
        config,
        count,
        f"{(counts['ok'] + counts['late']) / STEP_SECONDS:.0f}",
        f"{percentile(body, 50):.0f}",
        f"{percentile(body, 99):.0f}",
        *(counts[k] for k in ("ok", "late", "skipped", "failed", "pending", "missed")),
    ]


def tally(rows) -> dict:
    counts: dict = {"ok": 0, "late": 0, "skipped": 0, "failed": 0, "pending": 0, "body": []}
    for due, status, result in rows.values_list("scheduled_for", "status", "result"):
        if status == "success":
            late = (float(result["message"]) - due.timestamp()) * 1000
            counts["body"].append(late)
            counts["ok" if late < 1000 else "late"] += 1
        elif status == "skipped":
            counts["skipped"] += 1
        elif status in FAILED:
            counts["failed"] += 1
        elif status in PENDING:
            counts["pending"] += 1
    return counts


def keeps_up(row: list[object]) -> bool:
    return not any(row[6:])


def climb(config: str) -> list[list[object]]:
    rows = []
    for count in STEPS:
        rows.append(step(config, count))
        print(table(HEADERS, [rows[-1]]).splitlines()[-1], flush=True)
        if not keeps_up(rows[-1]):
            break
    return rows


def sustained(rows: list[list[object]]) -> float:
    return max((float(r[2]) for r in rows if keeps_up(r)), default=0.0)


if __name__ == "__main__":
    os.environ["CELERY_BROKER_URL"] = BROKER
    url = setup(probe=True)
    print(
        f"database: {url.split('@')[-1]}; {os.cpu_count()} CPUs; {STEP_SECONDS} s per step; load average "
        f"{os.getloadavg()[0]:.2f}",
        flush=True,
    )
    ceiling = raw_ceiling()
    print(f"raw ceiling: {ceiling:.0f} runs/s", flush=True)
    results = {"thread": climb("thread")}
    if CELERY:
        results["celery"] = climb("celery")
    print()
    print(table(HEADERS, [row for rows in results.values() for row in rows]))
    print(f"\nraw ceiling (2 single-row commits per run, {CEILING_THREADS} threads): {ceiling:.0f} runs/s")
    labels = {
        "thread": "one runscheduler process at the defaults",
        "celery": f"Celery backend, {WORKERS} worker processes × {CONCURRENCY} threads",
    }
    for config, rows in results.items():
        rate = sustained(rows)
        share = rate / ceiling * 100 if ceiling else 0.0
        verdict = "" if config != "thread" else f" (goal 60%: {'met' if share >= 60 else 'not met'})"
        print(f"sustained, {labels[config]}: {rate:.0f} runs/s = {share:.0f}% of the ceiling{verdict}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
