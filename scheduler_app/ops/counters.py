"""Metric counters (OperationsCounter): added to in one statement, never decreased.

The metrics endpoint serves them from the web process, while the runs end in the scheduler and in
Celery workers: the counters live in the database, written by the leader's operations worker and
the notification senders. An addition is one upsert (INSERT ... ON CONFLICT / ON DUPLICATE KEY
UPDATE value = value + new), so concurrent writers never lose each other's counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import connection

from scheduler_app.models import OperationsCounter

CounterKey = tuple[str, int, str]  # (name, task id or 0, label)

RUNS = "runs"  # per task, label: the final status
LATENESS_BUCKET = "lateness_bucket"  # label: the bucket's upper bound ("+Inf" last); not cumulative
LATENESS_SUM = "lateness_sum"
DURATION_BUCKET = "duration_bucket"
DURATION_SUM = "duration_sum"
LEASE_CHANGES = "lease_changes"
NOTIFICATIONS = "notifications"  # label: "<channel>:<state>"

# Seconds; fire lateness of a healthy scheduler is milliseconds, a queue behind a busy pool seconds.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0, 24 * 3600.0)


def bucket_label(value: float, bounds: tuple[float, ...]) -> str:
    """The label of the (non-cumulative) bucket a value falls in."""
    for bound in bounds:
        if value <= bound:
            return repr(bound)
    return "+Inf"


def counters_add(*, increments: Mapping[CounterKey, float]) -> None:
    """Add to counters (creating them), in one statement for all of them."""
    items = [
        (name[:40], int(task_pk), label[:40], float(amount)) for (name, task_pk, label), amount in increments.items()
    ]
    items = [item for item in items if item[3]]
    if not items:
        return
    table = connection.ops.quote_name(OperationsCounter._meta.db_table)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(items))
    if connection.vendor == "mysql":
        upsert = "ON DUPLICATE KEY UPDATE value = value + VALUES(value)"
    else:  # SQLite and PostgreSQL
        upsert = f"ON CONFLICT (name, task_pk, label) DO UPDATE SET value = {table}.value + excluded.value"
    sql = f"INSERT INTO {table} (name, task_pk, label, value) VALUES {rows} {upsert}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [value for item in items for value in item])
