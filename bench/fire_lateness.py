"""Fire lateness at the defaults: our runscheduler beside a bare APScheduler, in one invocation.

Lateness is measured where the task's own code begins, minus when it was due. Ours: the
`bench_probe` action (bench/probe) writes the instant its body began into its result; due =
scheduled_for. Also shown: the claim's start_time − due, and body start − start_time (the per-run
overhead between the claim and the task's code). Bare APScheduler (a BackgroundScheduler with its
default pool of 10 threads): the job records when it begins, paired with the scheduled run time
APScheduler submitted it for. Both run with the settings a user gets: no pool size is set.

Workloads: 50 tasks every 1 s for SECONDS (a burst of 50 every second), and 500 tasks on
`* * * * *` for MINUTES minutes (a burst of 500 every minute). Missed = occurrences due in the
window that did not run (ours: no row or a skipped row; bare: no call).

Usage: python bench/fire_lateness.py [seconds=60] [minutes=3]
(BENCH_DATABASE_URL, default MariaDB zq_bench_fire_lateness.)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from _common import percentile, setup, start_scheduler, stop_scheduler, table, wait_leader

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
MINUTES = int(sys.argv[2]) if len(sys.argv) > 2 else 3
PROBE = {"task_action": "bench_probe"}


def ours(count: int, *, cron: str | None, window: float) -> list[object]:
    from scheduler_app.models import ScheduledTask, TaskExecution

    TaskExecution.objects.all().delete()
    ScheduledTask.objects.all().delete()
    schedule = {"cron_expression": cron} if cron else {"interval_seconds": 1}
    ScheduledTask.objects.bulk_create(
        [
            ScheduledTask(name=f"bench-{i}", config=PROBE, max_retries=0, timezone="UTC", **schedule)
            for i in range(count)
        ]
    )
    proc = start_scheduler("--log-level", "WARNING", *os.environ.get("BENCH_SCHEDULER_ARGS", "").split())
    wait_leader(proc)
    opens = datetime.now(UTC) + timedelta(seconds=2)
    time.sleep((opens - datetime.now(UTC)).total_seconds() + window)
    closes = datetime.now(UTC)
    time.sleep(3)  # the last burst finishes
    stop_scheduler(proc)
    rows = TaskExecution.objects.filter(scheduled_for__gte=opens, scheduled_for__lt=closes)
    body, claim, overhead = [], [], []
    for due, start, status, result in rows.values_list("scheduled_for", "start_time", "status", "result"):
        if status != "success":
            continue
        began = float(result["message"])
        body.append((began - due.timestamp()) * 1000)
        claim.append((start - due).total_seconds() * 1000)
        overhead.append((began - start.timestamp()) * 1000)
    due_count = expected(count, cron, opens, closes)
    return [
        "ours (runscheduler)",
        len(body),
        *fmt(body),
        f"{percentile(claim, 99):.1f}",
        f"{percentile(overhead, 99):.1f}",
        max(0, due_count - len(body)),
    ]


def bare(count: int, *, cron: str | None, window: float) -> list[object]:
    from apscheduler.events import EVENT_JOB_SUBMITTED
    from apscheduler.schedulers.background import BackgroundScheduler

    submitted: dict[str, list[float]] = {}
    began: dict[str, list[float]] = {}
    lock = threading.Lock()

    def job(job_id: str) -> None:
        now = time.time()
        with lock:
            began.setdefault(job_id, []).append(now)

    def on_submit(event) -> None:
        with lock:
            submitted.setdefault(event.job_id, []).extend(t.timestamp() for t in event.scheduled_run_times)

    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_listener(on_submit, EVENT_JOB_SUBMITTED)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    for i in range(count):
        job_id = f"bare-{i}"
        trigger = (
            {"trigger": "cron", "minute": "*"} if cron else {"trigger": "interval", "seconds": 1, "start_date": first}
        )
        scheduler.add_job(job, args=[job_id], id=job_id, **trigger)
    scheduler.start()
    opens = datetime.now(UTC) + timedelta(seconds=2)
    time.sleep((opens - datetime.now(UTC)).total_seconds() + window)
    closes = datetime.now(UTC)
    time.sleep(3)
    scheduler.shutdown(wait=True)
    late = []
    for job_id, due_times in submitted.items():
        for due, at in zip(due_times, began.get(job_id, []), strict=False):  # in order: one run at a time per job
            if opens.timestamp() <= due < closes.timestamp():
                late.append((at - due) * 1000)
    due_count = expected(count, cron, opens, closes)
    return ["bare APScheduler (10 threads)", len(late), *fmt(late), "-", "-", max(0, due_count - len(late))]


def expected(count: int, cron: str | None, opens: datetime, closes: datetime) -> int:
    if cron:  # every minute boundary in the window
        first = (
            (opens + timedelta(minutes=1)).replace(second=0, microsecond=0)
            if opens.second or opens.microsecond
            else opens
        )
        minutes = 0
        while first + timedelta(minutes=minutes) < closes:
            minutes += 1
        return count * minutes
    return count * len(range(int(opens.timestamp()) + 1, int(closes.timestamp()) + 1))


def fmt(values: list[float]) -> list[str]:
    return [
        f"{percentile(values, 50):.1f}",
        f"{percentile(values, 99):.1f}",
        f"{max(values, default=float('nan')):.1f}",
    ]


if __name__ == "__main__":
    url = setup(probe=True)
    load = os.getloadavg()[0]
    print(f"database: {url.split('@')[-1]}; default settings; load average {load:.2f} on {os.cpu_count()} CPUs")
    headers = ["scheduler", "runs", "p50 ms", "p99 ms", "max ms", "claim p99 ms", "overhead p99 ms", "missed"]
    workloads = [
        (f"50 tasks every 1 s, {SECONDS:.0f} s", 50, None, SECONDS),
        (f"500 tasks on * * * * *, {MINUTES} min", 500, "* * * * *", MINUTES * 60.0),
    ]
    for title, count, cron, window in workloads:
        print(f"\n{title} (lateness = the task's code begins − due)")
        print(table(headers, [bare(count, cron=cron, window=window), ours(count, cron=cron, window=window)]))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
