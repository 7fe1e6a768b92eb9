"""Selectors: the page-level reads of tasks and executions, each in a constant number of queries.

Lists of tasks are read in two steps: task_list() filters and orders (computed columns are SQL
aliases), the caller takes a page of ids from it (an index-only query), and task_page() loads those
rows with their computed fields. So no subquery runs for rows outside the page (MySQL evaluates the
select list of every row an OFFSET skips).

"Latest execution" of a task is its execution with the highest id whose status is not `skipped`
(docs/internals.md); the list columns, the schedule status and the API all use that one definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_apscheduler.models import DjangoJob

from scheduler_app.conf import scheduler_settings
from scheduler_app.exceptions import InvalidRequest
from scheduler_app.models import ScheduledTask, SchedulerNode, SchedulerState, TaskExecution
from scheduler_app.schedules import describe_schedule, get_zone, next_fire_times

Status = TaskExecution.Status
ScheduleStatus = ScheduledTask.ScheduleStatus

FAILED_STATUSES = (Status.FAILED, Status.TERMINATED, Status.COMPLETED)
NOT_A_WORKFLOW = _("Task %(id)s is not a workflow; only workflows have steps.")
MAX_ID = 2**63 - 1  # BigAutoField; larger numbers cannot even be looked up on every database
ONLINE_HEARTBEATS = 3  # a node is online while its last heartbeat is younger than this many heartbeats


# ---------------------------------------------------------------------------------------------- tasks


def _latest_execution() -> QuerySet[TaskExecution]:
    return TaskExecution.objects.filter(task=OuterRef("pk")).exclude(status=Status.SKIPPED).order_by("-pk")


def _latest(field: str) -> Subquery:
    return Subquery(_latest_execution().values(field)[:1])


def _schedule_status() -> Case:
    """The rules of docs/internals.md, with one subquery for the latest execution's part."""
    from_latest = _latest_execution().annotate(
        mapped=Case(
            When(status__in=TaskExecution.STARTED_STATUSES, then=Value(ScheduleStatus.RUNNING)),
            When(status=Status.PENDING, then=Value(ScheduleStatus.PENDING)),
            When(status__in=FAILED_STATUSES, then=Value(ScheduleStatus.FAILED)),
            default=Value(ScheduleStatus.SUCCESS),
            output_field=CharField(),
        )
    )
    return Case(
        When(enabled=False, then=Value(ScheduleStatus.DISABLED)),
        When(paused=True, then=Value(ScheduleStatus.PAUSED)),
        default=Coalesce(Subquery(from_latest.values("mapped")[:1]), Value(ScheduleStatus.PENDING)),
        output_field=CharField(),
    )


def _next_run_time() -> Case:
    """The job store's next run time; null for manual, disabled and paused tasks."""
    job = DjangoJob.objects.filter(id=OuterRef("job_id")).values("next_run_time")[:1]
    return Case(
        When(Q(enabled=False) | Q(paused=True) | Q(task_type=ScheduledTask.TaskType.MANUAL_TASK), then=Value(None)),
        default=Subquery(job),
        output_field=DateTimeField(),
    )


def schedule_status_of(*, enabled: bool, paused: bool, latest_status: str | None) -> str:
    """The same rules as the SQL of task_list()'s `schedule_status`, for rows already in memory."""
    if not enabled:
        return ScheduleStatus.DISABLED
    if paused:
        return ScheduleStatus.PAUSED
    if latest_status in TaskExecution.STARTED_STATUSES:
        return ScheduleStatus.RUNNING
    if latest_status in (None, Status.PENDING):
        return ScheduleStatus.PENDING
    if latest_status in FAILED_STATUSES:
        return ScheduleStatus.FAILED
    return ScheduleStatus.SUCCESS


def task_list() -> QuerySet[ScheduledTask]:
    """Every task, with the computed columns as aliases: filter and order on them, then load a page with task_page().

    Aliases (usable in filter() and order_by(), not selected): latest_execution_time (start time of
    the latest execution), schedule_status, next_run_time. Filtering or ordering on the first two
    evaluates a correlated subquery for every task, so it costs time in proportion to the number of
    tasks; everything else (task fields, next_run_time) stays cheap.
    """
    return ScheduledTask.objects.alias(
        latest_execution_time=_latest("start_time"),
        schedule_status=_schedule_status(),
        next_run_time=_next_run_time(),
    )


def task_page(*, ids: Sequence[int]) -> list[ScheduledTask]:
    """The tasks with these ids, in this order, with every computed field; two queries whatever the page size.

    Attributes added: created_by_username, updated_by_username, next_run_time, latest_execution_id,
    latest_execution_status, latest_execution_time (its start time; null while it waits),
    latest_execution_progress, latest_execution_current_item, schedule_status. The latest execution
    is found per task with one index probe (a subquery on the page's rows only), then read by
    primary key; nothing is evaluated for rows outside the page.
    """
    ids = list(ids)
    if not ids:
        return []
    found = {
        task.pk: task
        for task in ScheduledTask.objects.filter(pk__in=ids).annotate(
            created_by_username=F("created_by__username"),
            updated_by_username=F("updated_by__username"),
            latest_execution_id=_latest("pk"),
            next_run_time=_next_run_time(),
        )
    }
    latest_ids = [task.latest_execution_id for task in found.values() if task.latest_execution_id]
    latest = (
        {
            row["pk"]: row
            for row in TaskExecution.objects.filter(pk__in=latest_ids).values(
                "pk", "status", "start_time", "progress_percent", "current_item"
            )
        }
        if latest_ids
        else {}
    )
    for task in found.values():
        row = latest.get(task.latest_execution_id, {})
        task.latest_execution_status = row.get("status")
        task.latest_execution_time = row.get("start_time")
        task.latest_execution_progress = row.get("progress_percent")
        task.latest_execution_current_item = row.get("current_item")
        task.schedule_status = schedule_status_of(
            enabled=task.enabled, paused=task.paused, latest_status=task.latest_execution_status
        )
    return [found[pk] for pk in ids if pk in found]


def task_get(*, pk: int | str) -> ScheduledTask:
    """One task with the fields of task_page(); raises ScheduledTask.DoesNotExist (also for a bad id)."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        number = 0
    tasks = task_page(ids=[number]) if 0 < number <= MAX_ID else []
    if not tasks:
        raise ScheduledTask.DoesNotExist(f"No task {pk!r}")
    return tasks[0]


def schedule_description(task: ScheduledTask) -> str:
    return describe_schedule(cron_expression=task.cron_expression, interval_seconds=task.interval_seconds)


def workflow_step_ids(config: Any) -> list[int]:
    """The task ids a workflow config lists, in config order (tolerant of a malformed config)."""
    items = config.get("tasks") if isinstance(config, dict) else None
    if not isinstance(items, list):
        return []
    ids = [item.get("task_id") for item in items if isinstance(item, dict)]
    return [task_id for task_id in ids if isinstance(task_id, int) and not isinstance(task_id, bool)]


def workflows_using_task(*, task_id: int) -> list[ScheduledTask]:
    """The workflows whose config lists the task as a step (workflows are few: read them all)."""
    workflows = (
        ScheduledTask.objects.filter(task_type=ScheduledTask.TaskType.WORKFLOW)
        .exclude(pk=task_id)
        .only("pk", "name", "enabled", "config")
        .order_by("name")
    )
    return [workflow for workflow in workflows if task_id in workflow_step_ids(workflow.config)]


def workflow_steps(*, task: ScheduledTask) -> list[ScheduledTask]:
    """The tasks a workflow runs, annotated like task_list(), in config order; InvalidRequest if no workflow."""
    if task.task_type != ScheduledTask.TaskType.WORKFLOW:
        raise InvalidRequest(gettext(NOT_A_WORKFLOW) % {"id": task.pk}, code="not_a_workflow")
    return task_page(ids=workflow_step_ids(task.config))


def task_next_runs(*, task: ScheduledTask, count: int = 5, now: datetime | None = None) -> dict[str, Any]:
    """The readable schedule and the next `count` fire times, in the task's timezone.

    A manual task has none. Cron times do not depend on when the job was added; an interval job's
    times are counted from the job store's next run time when the scheduler holds the job.
    """
    now = now or timezone.now()
    answer: dict[str, Any] = {"description": schedule_description(task), "timezone": task.timezone, "next_runs": []}
    if not task.is_scheduled:
        return answer
    anchor = None
    if task.interval_seconds and task.enabled and not task.paused:
        anchor = DjangoJob.objects.filter(id=task.job_id).values_list("next_run_time", flat=True).first()
    if anchor is not None and anchor > now:
        zone = get_zone(task.timezone)
        step = timedelta(seconds=task.interval_seconds)
        answer["next_runs"] = [(anchor + step * index).astimezone(zone) for index in range(count)]
    else:
        answer["next_runs"] = next_fire_times(
            cron_expression=task.cron_expression,
            interval_seconds=task.interval_seconds,
            timezone=task.timezone,
            count=count,
            now=now,
        )
    return answer


# ---------------------------------------------------------------------------------------------- executions


def execution_list() -> QuerySet[TaskExecution]:
    """Every execution, newest first; pass a page of it to executions_with_task_names().

    No join here: with ORDER BY id and LIMIT, MySQL reads the newest rows straight from the primary
    key, where a join to the tasks could make it sort the whole table.
    """
    return TaskExecution.objects.order_by("-pk")


def executions_with_task_names(executions: Sequence[TaskExecution]) -> list[TaskExecution]:
    """Set `task_name` on each execution (one query for the whole page)."""
    executions = list(executions)
    task_ids = {execution.task_id for execution in executions}
    names = dict(ScheduledTask.objects.filter(pk__in=task_ids).values_list("pk", "name")) if task_ids else {}
    for execution in executions:
        execution.task_name = names.get(execution.task_id, "")
    return executions


def execution_get(*, pk: int | str) -> TaskExecution:
    """One execution with `task_name` and `children_ids` (its child runs); raises DoesNotExist (also for a bad id)."""
    try:
        number = int(pk)
    except (TypeError, ValueError):
        number = 0
    if not 0 < number <= MAX_ID:
        raise TaskExecution.DoesNotExist(f"No execution {pk!r}")
    execution = TaskExecution.objects.get(pk=number)
    executions_with_task_names([execution])
    execution.children_ids = list(
        TaskExecution.objects.filter(parent_id=execution.pk).order_by("pk").values_list("pk", flat=True)
    )
    return execution


# ---------------------------------------------------------------------------------------------- statistics


def _day_bounds(*, days: int, now: datetime) -> list[datetime]:
    """Local midnights (current timezone) from `days - 1` days ago up to tomorrow: days + 1 bounds."""
    zone = timezone.get_current_timezone()
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    return [datetime.combine(first + timedelta(days=offset), time(), tzinfo=zone) for offset in range(days + 1)]


def task_stats(*, task: ScheduledTask | None = None, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Counts, success rate and durations of one task's executions (or all), computed in the database.

    - total: every execution, any status; success: `success`;
    - failed: `failed`, `terminated` and `completed` (a workflow with failed steps) — the same
      grouping as the schedule status; running: `running` and `paused`; pending; skipped;
    - success_rate: success / (success + failed), 0..1, 0 when nothing has finished;
    - avg_duration_seconds: mean duration of the runs that have one (null when none);
    - latest_execution_time: the latest start time;
    - by_day: `days` local days up to today, by start time: {date, success, failed, other, total}.
    One query (one pass over the rows) whatever their number: grouped by status and day.
    """
    now = now or timezone.now()
    executions = TaskExecution.objects.all() if task is None else TaskExecution.objects.filter(task=task)
    bounds = _day_bounds(days=days, now=now)
    # Day buckets come from a CASE over precomputed local midnights: no database time zone support is
    # needed (MySQL's CONVERT_TZ needs its time zone tables), and days with a DST change are exact.
    day_of = Case(
        When(Q(start_time__isnull=True) | Q(start_time__lt=bounds[0]) | Q(start_time__gte=bounds[-1]), then=None),
        *(When(start_time__lt=bounds[index + 1], then=Value(index)) for index in range(days)),
        output_field=IntegerField(),
    )
    rows = (
        executions.order_by()
        .annotate(day=day_of)
        .values("status", "day")
        .annotate(
            n=Count("pk"), timed=Count("duration_seconds"), seconds=Sum("duration_seconds"), latest=Max("start_time")
        )
    )
    counts: dict[str, int] = {}
    timed, seconds, latest = 0, 0.0, None
    series = [
        {"date": bounds[index].date(), "success": 0, "failed": 0, "other": 0, "total": 0} for index in range(days)
    ]
    for row in rows:
        status, n = row["status"], row["n"]
        counts[status] = counts.get(status, 0) + n
        timed += row["timed"]
        seconds += row["seconds"] or 0.0
        if row["latest"] is not None and (latest is None or row["latest"] > latest):
            latest = row["latest"]
        if row["day"] is not None:
            bucket = series[row["day"]]
            key = "success" if status == Status.SUCCESS else "failed" if status in FAILED_STATUSES else "other"
            bucket[key] += n
            bucket["total"] += n
    success = counts.get(Status.SUCCESS, 0)
    failed = sum(counts.get(status, 0) for status in FAILED_STATUSES)
    finished = success + failed
    return {
        "total": sum(counts.values()),
        "success": success,
        "failed": failed,
        "running": sum(counts.get(status, 0) for status in TaskExecution.STARTED_STATUSES),
        "pending": counts.get(Status.PENDING, 0),
        "skipped": counts.get(Status.SKIPPED, 0),
        "success_rate": round(success / finished, 4) if finished else 0.0,
        "avg_duration_seconds": round(seconds / timed, 3) if timed else None,
        "latest_execution_time": latest,
        "by_day": series,
    }


# ---------------------------------------------------------------------------------------------- scheduler


def _node(node: SchedulerNode) -> dict[str, Any]:
    return {
        "node_id": node.node_id,
        "host": node.host,
        "pid": node.pid,
        "started_at": node.started_at,
        "last_heartbeat": node.last_heartbeat,
        "version_seen": node.version_seen,
        "jobs": node.jobs,
    }


def scheduler_status(*, now: datetime | None = None) -> dict[str, Any]:
    """Is a scheduler process alive, which one leads, and what it has (from the state and node rows).

    online: some running node beat within ONLINE_HEARTBEATS × SCHEDULER_HEARTBEAT_SECONDS. leader:
    the live node holding an unexpired lease. jobs: the jobs in the job store. version: the schedule
    version. last_heartbeat: the newest heartbeat of any node (also when offline).
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=ONLINE_HEARTBEATS * scheduler_settings.HEARTBEAT_SECONDS)
    nodes = list(SchedulerNode.objects.filter(stopped_at__isnull=True, last_heartbeat__gte=cutoff))
    state = SchedulerState.objects.filter(pk=1).first()
    lease_valid = state is not None and state.leader and state.lease_expires_at and state.lease_expires_at > now
    leader = next((node for node in nodes if lease_valid and node.node_id == state.leader), None)
    return {
        "online": bool(nodes),
        "leader": _node(leader) if leader else None,
        "standbys": [_node(node) for node in nodes if node is not leader],
        "jobs": DjangoJob.objects.count(),
        "version": state.schedule_version if state else 0,
        "changed_at": state.changed_at if state else None,
        "last_heartbeat": SchedulerNode.objects.aggregate(latest=Max("last_heartbeat"))["latest"],
        "checked_at": now,
    }
