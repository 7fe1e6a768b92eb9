"""Selectors: the page-level reads of tasks and executions, each in a constant number of queries.

Lists of tasks are read in two steps: task_list() filters and orders (computed columns are SQL
aliases), the caller takes a page of ids from it (an index-only query), and task_page() loads those
rows with their computed fields. So no subquery runs for rows outside the page (MySQL evaluates the
select list of every row an OFFSET skips).

"Latest execution" of a task is its execution with the highest id that is neither `skipped` nor a
retry still waiting to run (docs/internals.md): a task whose runs keep failing shows its failure
while the next attempt waits, not "waiting". The list columns, the schedule status and the API all
use that one definition.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Substr
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_apscheduler.models import DjangoJob

from scheduler_app import previews
from scheduler_app.conf import scheduler_settings
from scheduler_app.exceptions import BrokenSchedule, InvalidRequest
from scheduler_app.models import (
    MAX_ID,
    BlackoutWindow,
    Calendar,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    OperationsCounter,
    OperatorAction,
    ScheduledTask,
    SchedulerNode,
    SchedulerState,
    TaskDayStats,
    TaskExecution,
)
from scheduler_app.occurrences import Blackout
from scheduler_app.schedules import InvalidSchedule, describe_schedule
from scheduler_app.triggers import TaskTiming, calendar_snapshot, describe_timing, timing_of

Status = TaskExecution.Status
ScheduleStatus = ScheduledTask.ScheduleStatus

FAILED_STATUSES = (Status.FAILED, Status.TERMINATED, Status.COMPLETED)
NOT_A_WORKFLOW = _("Task %(id)s is not a workflow; only workflows have steps.")
BROKEN_SCHEDULE = _("The task's stored schedule cannot be used: %(error)s Fix its cron expression or timezone.")
ONLINE_HEARTBEATS = 3  # a node is online while its last heartbeat is younger than this many heartbeats


# ---------------------------------------------------------------------------------------------- tasks


def latest_execution_of_task() -> QuerySet[TaskExecution]:
    """The definition of a task's latest execution, as a subquery on OuterRef("pk"): the highest id
    that is neither skipped nor a retry still waiting to run. runtime.summaries stores it on the task."""
    waiting_retry = Q(status=Status.PENDING, trigger=TaskExecution.Trigger.RETRY)
    return (
        TaskExecution.objects.filter(task=OuterRef("pk"))
        .exclude(status=Status.SKIPPED)
        .exclude(waiting_retry)
        .order_by("-pk")
    )


def _schedule_status() -> Case:
    """The rules of docs/internals.md, on the task's own columns (its stored latest execution)."""
    return Case(
        When(enabled=False, then=Value(ScheduleStatus.DISABLED)),
        When(paused=True, then=Value(ScheduleStatus.PAUSED)),
        When(latest_execution_status__in=TaskExecution.STARTED_STATUSES, then=Value(ScheduleStatus.RUNNING)),
        When(latest_execution_status__in=FAILED_STATUSES, then=Value(ScheduleStatus.FAILED)),
        When(latest_execution_status=Status.SUCCESS, then=Value(ScheduleStatus.SUCCESS)),
        default=Value(ScheduleStatus.PENDING),
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
    if latest_status in (None, "", Status.PENDING):
        return ScheduleStatus.PENDING
    if latest_status in FAILED_STATUSES:
        return ScheduleStatus.FAILED
    return ScheduleStatus.SUCCESS


def task_list() -> QuerySet[ScheduledTask]:
    """Every task, with the computed columns as aliases: filter and order on them, then load a page with task_page().

    Aliases (usable in filter() and order_by(), not selected): schedule_status (from the task's own
    columns, its stored latest execution included) and next_run_time (the job store's). Ordering by
    latest_execution_time uses the task's stored column. Nothing here costs a subquery per task but
    next_run_time, one index probe into the job table.
    """
    return ScheduledTask.objects.alias(schedule_status=_schedule_status(), next_run_time=_next_run_time())


def task_page(*, ids: Sequence[int]) -> list[ScheduledTask]:
    """The tasks with these ids, in this order, with every computed field; two queries whatever the page size.

    Attributes added: created_by_username, updated_by_username, next_run_time,
    latest_execution_progress, latest_execution_current_item, schedule_status (the task's stored
    latest_execution_id, _status and _time are its own columns). The latest execution's progress is
    read by primary key; nothing is evaluated for rows outside the page.
    """
    ids = list(ids)
    if not ids:
        return []
    user_name_field = get_user_model().USERNAME_FIELD  # a custom user model may have no `username`
    found = {
        task.pk: task
        for task in ScheduledTask.objects.filter(pk__in=ids).annotate(
            created_by_username=F(f"created_by__{user_name_field}"),
            updated_by_username=F(f"updated_by__{user_name_field}"),
            calendar_name=F("calendar__name"),
            event_calendar_name=F("event_calendar__name"),
            next_run_time=_next_run_time(),
        )
    }
    latest_ids = [task.latest_execution_id for task in found.values() if task.latest_execution_id]
    latest = (
        {
            row["pk"]: row
            for row in TaskExecution.objects.filter(pk__in=latest_ids).values("pk", "progress_percent", "current_item")
        }
        if latest_ids
        else {}
    )
    for task in found.values():
        row = latest.get(task.latest_execution_id, {})
        task.latest_execution_status = task.latest_execution_status or None
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


def _calendar_names(task: ScheduledTask) -> tuple[str | None, str | None]:
    """The names of the task's calendars: annotated by task_page(), else read (one query each)."""
    names = []
    for field in ("calendar", "event_calendar"):
        if getattr(task, f"{field}_id") is None:
            names.append(None)
        elif hasattr(task, f"{field}_name"):
            names.append(getattr(task, f"{field}_name"))
        else:
            names.append(getattr(task, field).name)
    return names[0], names[1]


def schedule_description(task: ScheduledTask) -> str:
    """The schedule in words, calendar rule and validity window included, plus the jitter; for a
    schedule the services would refuse (written by SQL), what is wrong with it, so that every page
    showing it still renders."""
    try:
        if not task.is_scheduled:
            return describe_schedule(cron_expression=None, interval_seconds=None)
        calendar_name, event_calendar_name = _calendar_names(task)
        text = describe_timing(timing_of(task), calendar_name=calendar_name, event_calendar_name=event_calendar_name)
    except InvalidSchedule as error:
        return gettext("Unreadable schedule: %(error)s") % {"error": error}
    if task.jitter_seconds:
        text += gettext(", plus 0 to %(seconds)s s of jitter") % {"seconds": task.jitter_seconds}
    return text


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


def _preview_answer(result: previews.Preview, viewer: tzinfo) -> dict[str, Any]:
    return {
        "next_runs": result.next_runs,
        "viewer_timezone": str(viewer),
        "runs": result.runs,
        "removed": result.removed,
        "removed_truncated": result.removed_truncated,
        "notes": result.notes,
    }


def task_next_runs(
    *, task: ScheduledTask, count: int = 5, now: datetime | None = None, viewer_zone: tzinfo | None = None
) -> dict[str, Any]:
    """The readable schedule and the next `count` runs, in the task's timezone and the viewer's (the
    active timezone), each marked with what moved it, and the occurrences removed, with why
    (previews.py): `description`, `timezone`, `next_runs` (when each run starts), `viewer_timezone`,
    `runs`, `removed`, `removed_truncated`, `notes`.

    A manual task has none. An interval job's times are counted from the job store's next run time
    when the scheduler holds the job. Blackout windows (the task's and the global ones), its jitter and
    a timed pause apply as the scheduler applies them; a task paused without an end is noted.
    """
    now = now or timezone.now()
    viewer = viewer_zone or timezone.get_current_timezone()
    answer: dict[str, Any] = {
        "description": schedule_description(task),
        "timezone": task.timezone,
        **_preview_answer(previews.Preview(), viewer),
    }
    if not task.is_scheduled:
        return answer
    anchor = None
    if task.interval_seconds and task.enabled and not task.paused:
        anchor = DjangoJob.objects.filter(id=task.job_id).values_list("next_run_time", flat=True).first()
    try:
        result = previews.preview(
            timing=timing_of(task),
            count=count,
            now=now,
            viewer_zone=viewer,
            task_id=task.pk,
            jitter_seconds=task.jitter_seconds,
            blackouts=blackouts_by_task(blackouts_in_force(), [task.pk])[task.pk],
            paused_until=task.paused_until if task.paused else None,
            start_date=anchor if anchor is not None and anchor > now else None,
        )
    except InvalidSchedule as error:
        # Only SQL written behind the services' back gets here: they refuse such a schedule at save.
        raise BrokenSchedule(gettext(BROKEN_SCHEDULE) % {"error": error}) from error
    if task.paused and task.paused_until is None:
        result.notes.append(gettext("Paused: none of these runs happens until the task is resumed."))
    answer.update(_preview_answer(result, viewer))
    return answer


def schedule_preview(
    *,
    timing: TaskTiming,
    count: int,
    task_id: int | None = None,
    jitter_seconds: int = 0,
    now: datetime | None = None,
    viewer_zone: tzinfo | None = None,
) -> dict[str, Any]:
    """A schedule not saved (yet): its description and next runs like task_next_runs(), with the global
    blackout windows and, for `task_id` (the task being edited), its own. Raises InvalidSchedule."""
    now = now or timezone.now()
    viewer = viewer_zone or timezone.get_current_timezone()
    named = [pk for pk in (timing.calendar_id, timing.event_calendar_id) if pk is not None]
    names = dict(Calendar.objects.filter(pk__in=named).values_list("pk", "name")) if named else {}
    windows = blackouts_in_force()
    blackouts = (
        blackouts_by_task(windows, [task_id])[task_id]
        if task_id is not None
        else tuple(window for window in windows if window.task_id is None)
    )
    result = previews.preview(
        timing=timing,
        count=count,
        now=now,
        viewer_zone=viewer,
        task_id=task_id,
        jitter_seconds=jitter_seconds,
        blackouts=blackouts,
    )
    description = describe_timing(
        timing, calendar_name=names.get(timing.calendar_id), event_calendar_name=names.get(timing.event_calendar_id)
    )
    if jitter_seconds:
        description += gettext(", plus 0 to %(seconds)s s of jitter") % {"seconds": jitter_seconds}
    return {"description": description, "timezone": timing.timezone, **_preview_answer(result, viewer)}


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


# ---------------------------------------------------------------------------------------------- the lifecycle's reads
#
# What the scheduler, the runner and the services read to decide what a run does next. Each is one
# query whatever the number of tasks or rows asked about.

# Runs that are due the moment they are written (their scheduled_for is the request time, stamped by
# whatever clock the web process has): the dispatcher does not hold them back by scheduled_for.
IMMEDIATE_TRIGGERS = (TaskExecution.Trigger.MANUAL, TaskExecution.Trigger.RESUME)


class ActiveRun(NamedTuple):
    """An active run, as the overlap decision needs it (runtime.overlap)."""

    id: int
    started: bool  # running, paused, or handed over to a Celery worker (on its way)


def handed_over_filter() -> Q:
    """Runs sent to a Celery queue that no worker has started yet."""
    return Q(status=Status.PENDING) & ~Q(handover_queue="")


def _active_by_task(rows: QuerySet[TaskExecution]) -> dict[int, list[ActiveRun]]:
    found: dict[int, list[ActiveRun]] = {}
    for task_id, pk, status, queue in rows.order_by("id").values_list("task_id", "id", "status", "handover_queue"):
        started = status in TaskExecution.STARTED_STATUSES or bool(queue)
        found.setdefault(task_id, []).append(ActiveRun(pk, started))
    return found


def active_runs(*, task_ids: Collection[int]) -> dict[int, list[ActiveRun]]:
    """Every active run (pending, handed over, running, paused) of these tasks, oldest first."""
    if not task_ids:
        return {}
    return _active_by_task(TaskExecution.objects.filter(task_id__in=task_ids, status__in=TaskExecution.ACTIVE_STATUSES))


def runs_holding_the_schedule(*, task_ids: Collection[int], now: datetime) -> dict[int, list[ActiveRun]]:
    """The runs a due occurrence of these tasks must wait for or be skipped behind: started and
    handed-over runs, and pending runs that are due (a retry due later does not hold the schedule)."""
    if not task_ids:
        return {}
    due = Q(status=Status.PENDING) & (Q(scheduled_for__lte=now) | Q(trigger__in=IMMEDIATE_TRIGGERS))
    holding = Q(status__in=TaskExecution.STARTED_STATUSES) | handed_over_filter() | due
    return _active_by_task(TaskExecution.objects.filter(holding, task_id__in=task_ids))


def started_runs(*, task_ids: Collection[int]) -> dict[int, list[ActiveRun]]:
    """Started and handed-over runs of these tasks (what a queued run waits for)."""
    if not task_ids:
        return {}
    started = Q(status__in=TaskExecution.STARTED_STATUSES) | handed_over_filter()
    return _active_by_task(TaskExecution.objects.filter(started, task_id__in=task_ids))


def pending_runs_due(*, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Due pending runs the dispatcher may start, in the order they became due.

    Runs handed over to Celery are their worker's to start; workflow steps are their workflow's.
    """
    due = Q(scheduled_for__lte=now) | Q(trigger__in=IMMEDIATE_TRIGGERS)
    return list(
        TaskExecution.objects.filter(due, status=Status.PENDING, handover_queue="")
        .exclude(trigger=TaskExecution.Trigger.WORKFLOW)
        .order_by("scheduled_for", "id")
        .values("id", "task_id", "trigger", "task__enabled", "task__paused", "task__overlap_policy")[:limit]
    )


def handovers_open() -> list[int]:
    """Ids of the runs handed over to Celery and not started yet."""
    return list(TaskExecution.objects.filter(handed_over_filter()).values_list("id", flat=True))


def executions_handed_over_state(*, execution_ids: Collection[int]) -> list[tuple[int, str, str]]:
    """(id, status, hand-over queue) of these runs: what became of runs sent to Celery."""
    rows = TaskExecution.objects.filter(pk__in=list(execution_ids)).values_list("pk", "status", "handover_queue")
    return list(rows)


class DeferralSpan(NamedTuple):
    """An occurrence deferred out of a blackout [start, end), as firing asks whether it is covered."""

    task_id: int
    start: datetime
    end: datetime
    planned: datetime


def runs_deferred_out_of(*, spans: Sequence[DeferralSpan]) -> dict[DeferralSpan, datetime]:
    """For each span, the due time of an earlier occurrence of its task deferred out of the same
    blackout (planned in [start, planned), due at or after its end, not skipped); one query."""
    if not spans:
        return {}
    condition = Q()
    for span in spans:
        condition |= Q(
            task_id=span.task_id,
            occurrence_at__gte=span.start,
            occurrence_at__lt=span.planned,
            scheduled_for__gte=span.end,
        )
    rows = (
        TaskExecution.objects.filter(condition, trigger=TaskExecution.Trigger.SCHEDULE)
        .exclude(status=Status.SKIPPED)
        .values_list("task_id", "occurrence_at", "scheduled_for")
    )
    found: dict[DeferralSpan, datetime] = {}
    for task_id, occurrence_at, scheduled_for in rows:
        for span in spans:
            if (
                span.task_id == task_id
                and span.start <= occurrence_at < span.planned
                and scheduled_for >= span.end
                and span not in found
            ):
                found[span] = scheduled_for
    return found


def occurrence_recorded(*, task_id: int, occurrence_at: datetime) -> bool:
    """Has the occurrence a row (run, pending or skipped)?"""
    return TaskExecution.objects.filter(task_id=task_id, occurrence_at=occurrence_at).exists()


def blackouts_in_force() -> list[Blackout]:
    """Every enabled blackout window, with the days of the calendar a daily one follows (two queries,
    plus two per calendar not read by this process at its current revision)."""
    rows = BlackoutWindow.objects.filter(enabled=True).values(
        "id",
        "name",
        "action",
        "kind",
        "timezone",
        "from_time",
        "until_time",
        "starts_at",
        "ends_at",
        "task_id",
        "calendar_id",
        "calendar__revision",
    )
    windows = []
    for row in rows:
        calendar_id, revision = row.pop("calendar_id"), row.pop("calendar__revision")
        calendar = calendar_snapshot(calendar_id, revision) if calendar_id is not None else None
        windows.append(Blackout(**row, calendar=calendar))
    return windows


def blackouts_by_task(windows: Sequence[Blackout], task_ids: Collection[int]) -> dict[int, tuple[Blackout, ...]]:
    """The windows that apply to each task: its own and the global ones."""
    shared = tuple(window for window in windows if window.task_id is None)
    own: dict[int, list[Blackout]] = {}
    for window in windows:
        if window.task_id is not None:
            own.setdefault(window.task_id, []).append(window)
    return {task_id: (*own.get(task_id, ()), *shared) for task_id in task_ids}


def task_configs(*, task_ids: Collection[int]) -> dict[int, Any]:
    return dict(ScheduledTask.objects.filter(pk__in=list(task_ids)).values_list("pk", "config"))


def task_names(*, task_ids: Collection[int]) -> dict[int, str]:
    return dict(ScheduledTask.objects.filter(pk__in=list(task_ids)).values_list("pk", "name"))


def succeeded_steps(*, workflow_execution_id: int) -> dict[int, int]:
    """task id → execution id of the steps of a workflow run that succeeded."""
    steps = TaskExecution.objects.filter(
        parent_id=workflow_execution_id, trigger=TaskExecution.Trigger.WORKFLOW, status=Status.SUCCESS
    )
    return dict(steps.values_list("task_id", "pk"))


def execution_outcome(*, execution_id: int) -> tuple[str, str]:
    """(status, error message) of one execution."""
    return TaskExecution.objects.filter(pk=execution_id).values_list("status", "error_message").get()


def orphan_candidates(
    *, stale_before: datetime, host: str, node_id: str, exclude: Collection[int]
) -> list[TaskExecution]:
    """Started runs that may have lost their worker: no heartbeat since `stale_before`, or a worker
    on this host other than this process (whose pid the caller checks). Runs in `exclude` (this
    process executes them) are left out."""
    maybe_lost = Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True) | (Q(host=host) & ~Q(worker=node_id))
    rows = TaskExecution.objects.filter(maybe_lost, status__in=TaskExecution.STARTED_STATUSES)
    return list(rows.exclude(pk__in=list(exclude)))


def started_runs_of_worker(*, worker: str) -> list[TaskExecution]:
    """The running and paused runs a worker (a scheduler node) holds."""
    return list(TaskExecution.objects.filter(worker=worker, status__in=TaskExecution.STARTED_STATUSES))


def lease_expires_at() -> datetime | None:
    """When the current leader's lease runs out (by the database's clock), or None without a leader."""
    return SchedulerState.objects.filter(pk=1).values_list("lease_expires_at", flat=True).first()


def stranded_steps() -> list[TaskExecution]:
    """Pending workflow steps whose workflow run has ended or is gone: nothing will ever start them.

    The lifecycle never leaves one (steps are written when they start), but rows written by earlier
    versions, or by hand, may exist.
    """
    live = TaskExecution.objects.filter(pk=OuterRef("parent_id"), status__in=TaskExecution.ACTIVE_STATUSES)
    steps = TaskExecution.objects.filter(status=Status.PENDING, trigger=TaskExecution.Trigger.WORKFLOW)
    return list(steps.filter(~Exists(live))[:500])


# ---------------------------------------------------------------------------------------------- statistics


def task_stats(*, task: ScheduledTask | None = None, days: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """Counts, success rate and durations of one task's executions (or all), without a scan.

    Ended runs come from TaskDayStats, which the lifecycle keeps as runs end (and which outlives the
    pruning of old executions); active runs are counted live (few, by the status index).
    - total: every execution, any status; success: `success`;
    - failed: `failed`, `terminated` and `completed` (a workflow with failed steps) — the same
      grouping as the schedule status; running: `running` and `paused`; pending; skipped;
    - success_rate: success / (success + failed), 0..1, 0 when nothing has finished;
    - avg_duration_seconds: mean duration of the ended runs that have one (null when none);
    - latest_execution_time: the latest start time;
    - by_day: `days` days of TIME_ZONE up to today, by start day: {date, success, failed, other, total}.
    A constant number of queries (four) whatever the number of runs.
    """
    now = now or timezone.now()
    today = now.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    first = today - timedelta(days=days - 1)
    stats = TaskDayStats.objects.all() if task is None else TaskDayStats.objects.filter(task=task)
    executions = TaskExecution.objects.all() if task is None else TaskExecution.objects.filter(task=task)
    counts: dict[str, int] = {}
    timed, seconds = 0, 0.0
    series = {
        first + timedelta(days=offset): {"success": 0, "failed": 0, "other": 0, "total": 0} for offset in range(days)
    }

    def add_to_day(day: date | None, status: str, n: int) -> None:
        bucket = series.get(day)
        if bucket is not None:
            key = "success" if status == Status.SUCCESS else "failed" if status in FAILED_STATUSES else "other"
            bucket[key] += n
            bucket["total"] += n

    for status, runs, timed_runs, total in (
        stats.order_by().values("status").annotate(n=Sum("runs"), t=Sum("timed_runs"), d=Sum("duration_total"))
    ).values_list("status", "n", "t", "d"):
        counts[status] = counts.get(status, 0) + runs
        timed += timed_runs
        seconds += total or 0.0
    for day, status, runs in (
        stats.filter(day__gte=first, day__lte=today).order_by().values("day", "status").annotate(n=Sum("runs"))
    ).values_list("day", "status", "n"):
        add_to_day(day, status, runs)
    zone = ZoneInfo(settings.TIME_ZONE)
    for status, start_time in executions.filter(status__in=TaskExecution.ACTIVE_STATUSES).values_list(
        "status", "start_time"
    ):
        counts[status] = counts.get(status, 0) + 1
        if start_time is not None:
            add_to_day(start_time.astimezone(zone).date(), status, 1)
    latest = executions.aggregate(latest=Max("start_time"))["latest"]
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
        "by_day": [{"date": day, **bucket} for day, bucket in series.items()],
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
        "clock_skew_seconds": node.clock_skew_seconds,
    }


def database_now() -> datetime:
    """The database server's current time (UTC, aware), from one query: the clock every process shares."""
    vendor = connection.vendor
    if vendor == "sqlite":
        sql = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
    elif vendor == "mysql":
        sql = "SELECT UTC_TIMESTAMP(6)"
    else:  # PostgreSQL
        sql = "SELECT clock_timestamp()"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    if isinstance(value, str):
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def scheduler_status(*, now: datetime | None = None) -> dict[str, Any]:
    """Is a scheduler process alive, which one leads, and what it has (from the state and node rows).

    online: some running node beat within ONLINE_HEARTBEATS × SCHEDULER_HEARTBEAT_SECONDS. leader:
    the live node holding an unexpired lease. jobs: the jobs in the job store. version: the schedule
    version. last_heartbeat: the newest heartbeat of any node (also when offline). Ages are measured
    by the database's clock, the one the nodes write their heartbeats by.
    """
    now = now or database_now()
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


# ---------------------------------------------------------------------------------------------- operations
#
# What the leader's operations worker (scheduling/operations.py), the metrics endpoint and retention
# read. Every read is bounded whatever the size of the history: a window past a watermark on an
# index, the active rows, one index seek per task, or a LIMIT.

# A failure for the alerts and for retention's "last failure": the run did not succeed.
FAILURE_STATUSES = (Status.FAILED, Status.COMPLETED, Status.TERMINATED)
FEED_FIELDS = (
    "id",
    "task_id",
    "status",
    "trigger",
    "terminate_requested",
    "retry_count",
    "scheduled_for",
    "start_time",
    "end_time",
    "duration_seconds",
)
ERROR_PREVIEW = 500


def finished_runs_after(*, end_time: datetime, execution_id: int, until: datetime, limit: int) -> list[dict[str, Any]]:
    """Runs that reached a final state after the watermark (end_time, id) and by `until`, in that
    order; `error` is the start of the error message. An index range on end_time."""
    after = Q(end_time__gt=end_time) | Q(end_time=end_time, pk__gt=execution_id)
    rows = (
        TaskExecution.objects.filter(after, end_time__lte=until)
        .order_by("end_time", "id")
        .annotate(error=Substr("error_message", 1, ERROR_PREVIEW))
        .values(*FEED_FIELDS, "error")
    )
    return list(rows[:limit])


# Ids per lookup on the parent index. Most rows have no parent, so the index's statistics say a value
# matches many rows; past eq_range_index_dive_limit values (200) MySQL trusts them and scans the whole
# index, below it it looks each value up.
PARENT_LOOKUP_CHUNK = 100


def children_of(*, execution_ids: Collection[int], trigger: str | None = None) -> list[tuple[int, int, str, int]]:
    """(id, parent id, status, task id) of the runs naming these as parent (optionally of one trigger),
    by the parent index in chunks."""
    ids = sorted(set(execution_ids))
    found: list[tuple[int, int, str, int]] = []
    for start in range(0, len(ids), PARENT_LOOKUP_CHUNK):
        rows = TaskExecution.objects.filter(parent_id__in=ids[start : start + PARENT_LOOKUP_CHUNK])
        if trigger is not None:
            rows = rows.filter(trigger=trigger)
        found += rows.order_by().values_list("id", "parent_id", "status", "task_id")
    return found


def retried_execution_ids(*, execution_ids: Collection[int]) -> set[int]:
    """Those of these runs that have a retry (a row naming them as parent with trigger retry)."""
    return {parent for _id, parent, _s, _t in children_of(execution_ids=execution_ids, trigger="retry")}


def open_notification_events(*, kind: str, limit: int = 1000) -> list[NotificationEvent]:
    """Failures (or outages) that no recovery has closed yet, oldest first."""
    return list(NotificationEvent.objects.filter(kind=kind, resolved_at__isnull=True).order_by("id")[:limit])


def started_runs_progress(*, limit: int = 5000) -> list[dict[str, Any]]:
    """Running and paused runs with their progress and heartbeat (the stuck-run check)."""
    rows = TaskExecution.objects.filter(status__in=TaskExecution.STARTED_STATUSES).order_by("id")
    fields = ("id", "task_id", "status", "start_time", "heartbeat_at", "progress_percent", "processed_items")
    return list(rows.values(*fields, "total_items", "current_item")[:limit])


def recent_success_durations(*, task_id: int, limit: int = 20) -> list[float]:
    """Durations of the task's latest successful runs (one index range on task and status)."""
    rows = TaskExecution.objects.filter(task_id=task_id, status=Status.SUCCESS, duration_seconds__isnull=False)
    return list(rows.order_by("-id").values_list("duration_seconds", flat=True)[:limit])


def unclaimed_handovers(*, due_before: datetime, limit: int = 1000) -> list[dict[str, Any]]:
    """Runs handed over to Celery, due before `due_before`, that no worker has started."""
    rows = TaskExecution.objects.filter(handed_over_filter(), scheduled_for__lt=due_before).order_by("id")
    return list(rows.values("id", "task_id", "handover_queue", "scheduled_for")[:limit])


def notification_subscription_list() -> QuerySet[NotificationSubscription]:
    return NotificationSubscription.objects.order_by("name", "id")


def notification_subscriptions_for(*, kind: str, task_ids: Collection[int]) -> list[NotificationSubscription]:
    """Enabled subscriptions that want this kind of event for these tasks (or every task)."""
    flag = NotificationSubscription.KIND_FLAGS[kind]
    scope = Q(task__isnull=True) | Q(task_id__in=[task_id for task_id in task_ids if task_id])
    return list(NotificationSubscription.objects.filter(scope, enabled=True, **{flag: True}).order_by("id"))


def notified_recently(
    *, subscription_ids: Collection[int], kinds: Collection[str], since: datetime
) -> set[tuple[int, str, int | None]]:
    """(subscription, kind, task) that had a notification (sent or on its way) since `since`."""
    if not subscription_ids:
        return set()
    rows = NotificationDelivery.objects.filter(
        subscription_id__in=list(subscription_ids), kind__in=list(kinds), created_at__gte=since
    ).exclude(state=NotificationDelivery.State.SUPPRESSED)
    return set(rows.values_list("subscription_id", "kind", "task_id"))


def deliveries_due(*, now: datetime, limit: int, kinds: Collection[str] | None = None) -> list[int]:
    """Ids of pending notifications whose (next) attempt is due, oldest first."""
    rows = NotificationDelivery.objects.filter(state=NotificationDelivery.State.PENDING, next_attempt_at__lte=now)
    if kinds is not None:
        rows = rows.filter(kind__in=list(kinds))
    return list(rows.order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])


def delivery_with_event(*, delivery_id: int) -> NotificationDelivery:
    return NotificationDelivery.objects.select_related("event", "event__task", "subscription").get(pk=delivery_id)


# ---------------------------------------------------------------------------------------------- metrics


def metrics_counters() -> list[tuple[str, int, str, float]]:
    """Every counter (name, task, label, value): rows per task and status, not per run."""
    return list(OperationsCounter.objects.values_list("name", "task_pk", "label", "value"))


def all_task_names() -> dict[int, str]:
    """Every task's name (rows per task: bounded by the tasks, not the runs)."""
    return dict(ScheduledTask.objects.order_by().values_list("pk", "name"))


def metrics_runs_now(*, now: datetime) -> dict[str, int]:
    """Active runs by state, runs handed over to Celery and not started, and pending runs that are due
    and wait for the dispatcher (the queue depth). Reads the active rows only (status index)."""
    active = dict(
        TaskExecution.objects.filter(status__in=TaskExecution.ACTIVE_STATUSES)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    due = Q(scheduled_for__lte=now) | Q(trigger__in=IMMEDIATE_TRIGGERS)
    pending_due = TaskExecution.objects.filter(due, status=Status.PENDING, handover_queue="").count()
    handed_over = TaskExecution.objects.filter(handed_over_filter()).count()
    found = {status: active.get(status, 0) for status in TaskExecution.ACTIVE_STATUSES}
    return {**found, "due": pending_due, "handed_over": handed_over}


def metrics_outbox() -> dict[str, int]:
    """Notifications waiting to be sent, by state (pending, sending)."""
    waiting = (NotificationDelivery.State.PENDING, NotificationDelivery.State.SENDING)
    rows = NotificationDelivery.objects.filter(state__in=waiting).order_by().values_list("state")
    return {state: count for state, count in rows.annotate(n=Count("pk"))}


# ---------------------------------------------------------------------------------------------- retention


def retention_policies() -> dict[int, tuple[int | None, int | None]]:
    """task id → (retention_days, retention_max_runs) as the task sets them (None: the default)."""
    rows = ScheduledTask.objects.values_list("pk", "retention_days", "retention_max_runs")
    return {pk: (days, count) for pk, days, count in rows}


RETENTION_FIELDS = ("id", "task_id", "status", "trigger", "parent_id", "end_time")


def execution_id_bounds() -> tuple[int, int] | None:
    """The lowest and highest execution id (two primary-key reads), or None without executions."""
    found = TaskExecution.objects.aggregate(low=Min("pk"), high=Max("pk"))
    return None if found["low"] is None else (found["low"], found["high"])


def runs_in_id_range(*, after_id: int, up_to_id: int) -> list[dict[str, Any]]:
    """The runs with after_id < id <= up_to_id (a primary-key range), what retention decides by."""
    rows = TaskExecution.objects.filter(pk__gt=after_id, pk__lte=up_to_id).order_by("id")
    return list(rows.values(*RETENTION_FIELDS))


def run_id_beyond_count(*, task_id: int, keep: int) -> int | None:
    """The id of the task's newest run beyond the newest `keep` (index on the task), or None."""
    rows = TaskExecution.objects.filter(task_id=task_id).order_by("-id").values_list("id", flat=True)
    return next(iter(rows[keep : keep + 1]), None)


def last_run_id(*, task_id: int, status: str) -> int | None:
    """The id of the task's newest run in this state: one index dive (MAX on task, status, id)."""
    return TaskExecution.objects.filter(task_id=task_id, status=status).aggregate(last=Max("pk"))["last"]


def parents_of_active_runs() -> set[int]:
    """Runs an active run still needs: the run a resume reads its checkpoint from, the workflow run
    whose succeeded steps a retried workflow reuses, the workflow run of an active step."""
    rows = TaskExecution.objects.filter(status__in=TaskExecution.ACTIVE_STATUSES, parent_id__isnull=False)
    return set(rows.order_by().values_list("parent_id", flat=True))


def workflow_steps_of(*, execution_ids: Collection[int]) -> list[tuple[int, int, str, int]]:
    """(id, parent id, status, task id) of the workflow steps of these runs (index on parent)."""
    return children_of(execution_ids=execution_ids, trigger=TaskExecution.Trigger.WORKFLOW)


def existing_execution_ids(*, execution_ids: Collection[int]) -> set[int]:
    if not execution_ids:
        return set()
    return set(TaskExecution.objects.filter(pk__in=list(execution_ids)).order_by().values_list("pk", flat=True))


def notification_events_before(*, before: datetime, limit: int) -> list[int]:
    """Ids of notification events detected before `before` (index on detected_at)."""
    rows = NotificationEvent.objects.filter(detected_at__lt=before).order_by("detected_at")
    return list(rows.values_list("id", flat=True)[:limit])


def notification_events_count_before(*, before: datetime) -> int:
    return NotificationEvent.objects.filter(detected_at__lt=before).count()


# ---------------------------------------------------------------------------------------------- audit


class TaskVersion(NamedTuple):
    """One version of a task as the history kept it, with what it changed against the version before."""

    record: Any  # the historical row (simple-history)
    changes: list[dict[str, Any]]  # [{field, old, new}], empty for the first version


def task_history(*, task_id: int) -> QuerySet:
    """The versions of a task, newest first (a deleted task's too: they are kept by its id)."""
    return ScheduledTask.history.filter(id=task_id).select_related("history_user").order_by("-history_id")


def task_versions(*, records: Sequence[Any]) -> list[TaskVersion]:
    """The versions of a page of task_history(), each with its changes (one query for the version
    before the oldest of the page)."""
    if not records:
        return []
    oldest = records[-1]
    before = ScheduledTask.history.filter(id=oldest.id, history_id__lt=oldest.history_id).order_by("-history_id")
    chain = [*records, before.first()]
    versions = []
    for record, previous in pairwise(chain):
        changes = []
        if previous is not None:
            delta = record.diff_against(previous)
            changes = [
                {"field": change.field, "old": change.old, "new": change.new}
                for change in sorted(delta.changes, key=lambda change: change.field)
            ]
        versions.append(TaskVersion(record, changes))
    return versions


def task_actions(*, task_id: int) -> QuerySet[OperatorAction]:
    """The operators' actions on a task and its runs, newest first."""
    return OperatorAction.objects.filter(task_id=task_id).order_by("-at", "-id")
