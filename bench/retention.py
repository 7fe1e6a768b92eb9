"""Retention on a big history: 10,000 tasks and 1,000,000 executions on MariaDB.

Seeds the database like bench/api_list.py (history 4 to 100 days deep, the last run of some tasks
active), then runs one retention pass (scheduling/retention.py, the code the leader runs) twice:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    import api_list

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    api_list.connect(url, reset=True)
    api_list.seed(args.tasks, args.executions)
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
