"""Retention on a big history: 10,000 tasks and 1,000,000 executions on MariaDB.

Seeds the database like bench/api_list.py (history 4 to 100 days deep, the last run of some tasks
active), but in the order a scheduler writes runs (by time, the tasks interleaved, so that ids follow
time as in production), then runs one retention pass (scheduling/retention.py, the code the leader
runs) twice:
first the age rule alone (30 days), then the count rule alone (50 runs per task). Every SQL statement
is timed through a connection execute_wrapper; prints rows deleted, rows/s, statements, and the
p99 and longest statement, with the slowest statement's start. Goal: no statement over 100 ms.

Usage: python bench/retention.py [--tasks N] [--executions N] [--batch-size N]
Database: BENCH_DATABASE_URL, else mysql://root@127.0.0.1:3306/zq_bench_retention (recreated).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

DEFAULT_DB = "mysql://root@127.0.0.1:3306/zq_bench_retention"


class StatementTimer:
    """An execute_wrapper: the duration of every statement, and the slowest one."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.slowest = (0.0, "")

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            took = time.perf_counter() - started
            self.seconds.append(took)
            if took > self.slowest[0]:
                self.slowest = (took, " ".join(sql.split())[:90])


def measure(label: str, **settings_values) -> tuple[list[object], str]:
    from _common import percentile
    from django.db import connection
    from django.test.utils import override_settings

    from scheduler_app.models import TaskExecution
    from scheduler_app.runtime.clock import db_now
    from scheduler_app.scheduling.retention import RetentionPass

    before = TaskExecution.objects.count()
    timer = StatementTimer()
    with override_settings(**settings_values), connection.execute_wrapper(timer):
        started = time.perf_counter()
        report = RetentionPass(now=db_now()).run()
        elapsed = time.perf_counter() - started
    deleted = before - TaskExecution.objects.count()
    assert deleted == report.total, (deleted, report.total)
    ms = [value * 1000 for value in timer.seconds]
    row = [
        label,
        f"{deleted:,}",
        f"{elapsed:.1f}",
        f"{deleted / elapsed:,.0f}" if elapsed else "-",
        report.statements,
        len(ms),
        f"{percentile(ms, 99):.1f}",
        f"{max(ms):.1f}",
    ]
    return row, f"{label}: slowest {timer.slowest[0] * 1000:.1f} ms: {timer.slowest[1]}"


def seed_in_time_order(n_tasks: int, n_executions: int) -> None:
    """Tasks as bench/api_list.py makes them; their runs inserted oldest first, all tasks interleaved."""
    import random
    from datetime import UTC, datetime, timedelta

    from api_list import LATEST, STATUSES, _insert
    from django.db import connection

    from scheduler_app.models import ScheduledTask, TaskExecution

    ScheduledTask.objects.bulk_create(
        [
            ScheduledTask(name=f"bench task {i:05}", interval_seconds=60 * (1 + i % 30), config={"task_action": "x"})
            for i in range(n_tasks)
        ],
        batch_size=2000,
    )
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    plan = []  # (when, task, last of its task?)
    per_task = n_executions // n_tasks
    for pk in ScheduledTask.objects.order_by("pk").values_list("pk", flat=True):
        spacing = timedelta(hours=rng.choice((1, 6, 24)))  # history reaches back 4 to 100 days
        plan += [(now - spacing * (per_task - number), pk, number == per_task - 1) for number in range(per_task)]
    plan.sort()
    fields = [field for field in TaskExecution._meta.concrete_fields if not field.primary_key]
    static = {field.attname: field.get_db_prep_save(field.get_default(), connection) for field in fields}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {connection.ops.quote_name(TaskExecution._meta.db_table)} ({columns}) VALUES ({marks})"
    stamp = connection.ops.adapt_datetimefield_value
    started, batch = time.perf_counter(), []
    for when, pk, last in plan:
        status = LATEST[pk % len(LATEST)] if last else rng.choice(STATUSES)
        ran, finished = status not in ("pending", "skipped"), status not in ("pending", "skipped", "running", "paused")
        duration = rng.uniform(1, 300) if finished else None
        values = {
            **static,
            "task_id": pk,
            "status": status,
            "trigger": "schedule",
            "scheduled_for": stamp(when),
            "start_time": stamp(when) if ran else None,
            "end_time": stamp(when + timedelta(seconds=duration)) if finished else stamp(when) if not ran else None,
            "duration_seconds": duration,
            "result": '{"message": "bench"}',
            "error_message": "boom" if status == "failed" else "",
            "progress_percent": 100.0 if finished else 0.0,
            "created_at": stamp(when),
            "updated_at": stamp(when),
        }
        batch.append(tuple(values[field.attname] for field in fields))
        if len(batch) >= 5000:
            _insert(connection, sql, batch)
            batch = []
    if batch:
        _insert(connection, sql, batch)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE TABLE {TaskExecution._meta.db_table}")
        cursor.fetchall()
    print(f"seeded {len(plan):,} executions of {n_tasks} tasks in time order in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=250)
    args = parser.parse_args()
    import api_list

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    api_list.connect(url, reset=True)
    seed_in_time_order(args.tasks, args.executions)
    from _common import table
    from django.db import connection

    from scheduler_app.models import TaskExecution

    total = TaskExecution.objects.count()
    load_before = os.getloadavg()[0]
    common = {"SCHEDULER_RETENTION_BATCH_SIZE": args.batch_size, "SCHEDULER_NOTIFY_RETENTION_DAYS": 0}
    rows, slowest = [], []
    for label, values in (
        ("age (30 days)", {"SCHEDULER_RETENTION_DAYS": 30, "SCHEDULER_RETENTION_PER_TASK": 0}),
        ("count (50 per task)", {"SCHEDULER_RETENTION_DAYS": 0, "SCHEDULER_RETENTION_PER_TASK": 50}),
    ):
        row, slow = measure(label, **common, **values)
        rows.append(row)
        slowest.append(slow)
    where = f"{connection.vendor} {connection.settings_dict['NAME']}"
    print(f"\n{where}: {args.tasks} tasks, {total:,} executions, batch {args.batch_size}")
    headers = ["rule", "deleted", "seconds", "rows/s", "deletes", "statements", "p99 ms", "max ms"]
    print(table(headers, rows))
    for line in slowest:
        print(line)
    print(f"load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
