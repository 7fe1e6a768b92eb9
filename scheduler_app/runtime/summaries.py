"""What the lifecycle keeps true besides the execution rows: each task's latest execution, and the
per-task, per-day statistics.

Pages sort and filter tasks by their latest execution and show statistics over millions of runs; a
subquery per task or a scan of the executions made both take seconds at 10,000 tasks. So the
transitions (runtime/transitions.py) call these functions in the same transaction as the change
they make, one statement each whatever the batch:

- `tasks_refresh_latest`: the task's `latest_execution_*` columns, recomputed from the executions
  (the definition is selectors.latest_execution_of_task), so they can never drift whatever
  interleaves with them;
- `day_stats_add`: a run that reached a terminal state counts once in TaskDayStats (an upsert that
  adds to the row of its task, its local start day and its status).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Subquery, Value
from django.db.models.functions import Coalesce

from scheduler_app.models import ScheduledTask, TaskDayStats, TaskExecution
from scheduler_app.selectors import latest_execution_of_task


@dataclass(frozen=True)
class EndedRun:
    """A run that has just reached a terminal state, as the statistics count it."""

    task_id: int
    status: str
    start_time: datetime | None
    duration_seconds: float | None


def stats_day(start_time: datetime | None) -> date:
    """The day a run counts on: the local date of its start (TIME_ZONE), or NEVER_STARTED."""
    if start_time is None:
        return TaskDayStats.NEVER_STARTED
    return start_time.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def tasks_refresh_latest(*, task_ids: Collection[int] = (), execution_ids: Collection[int] = ()) -> None:
    """Recompute the stored latest execution of these tasks, or of the tasks of these executions
    (one UPDATE either way)."""
    if task_ids:
        tasks = ScheduledTask.objects.filter(pk__in=list(task_ids))
    elif execution_ids:
        tasks = ScheduledTask.objects.filter(
            pk__in=TaskExecution.objects.filter(pk__in=list(execution_ids)).values("task_id")
        )
    else:
        return
    latest = latest_execution_of_task()
    tasks.update(
        latest_execution_id=Subquery(latest.values("pk")[:1]),
        latest_execution_status=Coalesce(Subquery(latest.values("status")[:1]), Value("")),
        latest_execution_time=Subquery(latest.values("start_time")[:1]),
    )


def day_stats_add(*, ended: Iterable[EndedRun], sign: int = 1) -> None:
    """Count these runs in TaskDayStats (one upsert); sign=-1 takes them out again (a run whose final
    status an operator corrects)."""
    totals: dict[tuple[int, date, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for run in ended:
        bucket = totals[(run.task_id, stats_day(run.start_time), run.status)]
        bucket[0] += sign
        if run.duration_seconds is not None:
            bucket[1] += sign
            bucket[2] += sign * run.duration_seconds
    if not totals:
        return
    table = TaskDayStats._meta.db_table
    columns = "task_id, day, status, runs, timed_runs, duration_total"
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(totals))
    params: list[object] = []
    for (task_id, day, status), (runs, timed, seconds) in sorted(totals.items()):
        params += [task_id, connection.ops.adapt_datefield_value(day), status, runs, timed, seconds]
    if connection.vendor == "mysql":
        upsert = (
            f"INSERT INTO {table} ({columns}) VALUES {rows} ON DUPLICATE KEY UPDATE "
            "runs = runs + VALUES(runs), timed_runs = timed_runs + VALUES(timed_runs), "
            "duration_total = duration_total + VALUES(duration_total)"
        )
    else:  # PostgreSQL and SQLite
        upsert = (
            f"INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT (task_id, day, status) DO UPDATE SET "
            f"runs = {table}.runs + excluded.runs, timed_runs = {table}.timed_runs + excluded.timed_runs, "
            f"duration_total = {table}.duration_total + excluded.duration_total"
        )
    with connection.cursor() as cursor:
        cursor.execute(upsert, params)


def day_stats_take_out(*, run: EndedRun) -> bool:
    """Take one counted run out of TaskDayStats (a run whose final status an operator corrects); False
    when it was never counted (a row written behind the lifecycle's back), which leaves the table as it is.

    A plain conditional UPDATE, not day_stats_add(sign=-1): an upsert's negative insert row trips the
    table's non-negative check on SQLite before the conflict resolves."""
    timed = run.duration_seconds is not None
    changed = TaskDayStats.objects.filter(
        task_id=run.task_id,
        day=stats_day(run.start_time),
        status=run.status,
        runs__gte=1,
        timed_runs__gte=1 if timed else 0,
    ).update(
        runs=F("runs") - 1,
        timed_runs=F("timed_runs") - (1 if timed else 0),
        duration_total=F("duration_total") - (run.duration_seconds or 0.0),
    )
    return bool(changed)


def summaries_rebuild(*, batch_size: int = 1000) -> tuple[int, int]:
    """Recompute every task's stored latest execution and the day statistics from the executions
    there are now (for data written behind the lifecycle's back: a bulk import, SQL by hand). The
    statistics then count only the runs that still exist. Returns (tasks, statistics rows)."""
    task_ids = list(ScheduledTask.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(task_ids), batch_size):
        tasks_refresh_latest(task_ids=task_ids[start : start + batch_size])
    totals: dict[tuple[int, date, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    ended = TaskExecution.objects.filter(status__in=TaskExecution.TERMINAL_STATUSES).values_list(
        "task_id", "status", "start_time", "duration_seconds"
    )
    for task_id, status, start_time, duration in ended.iterator(chunk_size=5000):
        bucket = totals[(task_id, stats_day(start_time), status)]
        bucket[0] += 1
        if duration is not None:
            bucket[1] += 1
            bucket[2] += duration
    with transaction.atomic():
        TaskDayStats.objects.all().delete()
        TaskDayStats.objects.bulk_create(
            [
                TaskDayStats(task_id=task_id, day=day, status=status, runs=runs, timed_runs=timed, duration_total=total)
                for (task_id, day, status), (runs, timed, total) in totals.items()
            ],
            batch_size=1000,
        )
    return len(task_ids), len(totals)
