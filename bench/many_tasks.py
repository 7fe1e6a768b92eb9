"""Many tasks: `runscheduler` with 10,000 defined tasks, started on an empty job store and restarted.

Seeded: half cron tasks (daily, at minutes hours away from now), half interval tasks (hourly to
daily), none of which fires during the run, plus a few tasks every second (the first fire). The
scheduler is a real process at the defaults. Measured per start:
- first fire: from starting the process to the first execution row of a task every second (read
  every 20 ms), and to the moment its own code began (bench/probe's `bench_probe` action);
- RSS: the process's resident set (/proc/<pid>/status) after the every-second tasks are disabled
  and it settled;
- idle CPU: its user + system time over 30 s (/proc/<pid>/stat), as % of one core.
The restart starts the same process again on the job table the first start wrote.

Usage: python bench/many_tasks.py [tasks=10000] [--database URL]
(default mysql://root@127.0.0.1:3306/zq_scale_bench)
"""

from __future__ import annotations

import argparse
import os
import random
import time
from datetime import UTC, datetime

from _common import setup, start_scheduler, stop_scheduler, table, wait_leader

SOON = 5  # tasks every second: the first fire
IDLE_SECONDS = 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def seed(count: int) -> list[int]:
    """`count` tasks, none due during the run but the SOON every-second ones (returned)."""
    from scheduler_app.models import ScheduledTask

    hour = datetime.now(UTC).hour
    quiet_hours = [h for h in range(24) if min((h - hour) % 24, (hour - h) % 24) >= 2]
    rows = []
    for i in range(count - SOON):
        common = {"name": f"many-{i}", "config": {"task_action": "bench_probe"}, "timezone": "UTC", "max_retries": 0}
        if i % 2:
            rows.append(ScheduledTask(interval_seconds=random.randint(3600, 86400), **common))
        else:
            cron = f"{random.randint(0, 59)} {random.choice(quiet_hours)} * * {random.choice(['*', '1-5', '0,6'])}"
            rows.append(ScheduledTask(cron_expression=cron, **common))
    ScheduledTask.objects.bulk_create(rows, batch_size=1000)
    soon = ScheduledTask.objects.bulk_create(
        [
            ScheduledTask(
                name=f"soon-{i}",
                interval_seconds=1,
                config={"task_action": "bench_probe"},
                timezone="UTC",
                max_retries=0,
            )
            for i in range(SOON)
        ]
    )
    return [task.pk for task in soon]


def set_soon(task_ids: list[int], *, enabled: bool) -> None:
    from scheduler_app.models import ScheduledTask
    from scheduler_app.services.state import schedule_version_bump

    ScheduledTask.objects.filter(pk__in=task_ids).update(enabled=enabled)
    schedule_version_bump(task_ids=task_ids)


def one_start(label: str, soon: list[int]) -> list[object]:
    from scheduler_app.models import TaskExecution

    after = TaskExecution.objects.order_by("-id").values_list("id", flat=True).first() or 0
    set_soon(soon, enabled=True)
    started = time.time()
    proc = start_scheduler("--log-level", "WARNING")
    try:
        deadline = time.monotonic() + 180
        while not TaskExecution.objects.filter(id__gt=after, task_id__in=soon).exists():
            if proc.poll() is not None:
                raise SystemExit(f"scheduler exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit("no fire within 180 s")
            time.sleep(0.02)
        first_row = time.time() - started
        wait_leader(proc)
        while not (
            run := TaskExecution.objects.filter(id__gt=after, task_id__in=soon, status="success").order_by("id").first()
        ):
            time.sleep(0.02)
        body = float(run.result["message"]) - started
        set_soon(soon, enabled=False)
        time.sleep(5)  # the change applied, the last runs finished
        rss = rss_mb(proc.pid)
        before_cpu = cpu_seconds(proc.pid)
        time.sleep(IDLE_SECONDS)
        idle = (cpu_seconds(proc.pid) - before_cpu) / IDLE_SECONDS * 100
    finally:
        stop_scheduler(proc)
    return [label, f"{first_row:.2f}", f"{body:.2f}", f"{rss:.0f}", f"{idle:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tasks", nargs="?", type=int, default=10_000)
    parser.add_argument("--database", default="mysql://root@127.0.0.1:3306/zq_scale_bench")
    args = parser.parse_args()
    print(f"$ python bench/many_tasks.py {args.tasks} --database {args.database}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    setup(args.database, probe=True)
    from django_apscheduler.models import DjangoJob

    soon = seed(args.tasks)
    assert not DjangoJob.objects.exists()
    rows = [one_start("first start (empty job store)", soon)]
    jobs = DjangoJob.objects.count()
    rows.append(one_start("restart", soon))
    print(f"{args.tasks} tasks ({jobs} jobs after the first start), runscheduler at the defaults")
    headers = ["start", "first fire (row) s", "first body s", "RSS MB", f"idle CPU % ({IDLE_SECONDS} s)"]
    print(table(headers, rows))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
