"""Every change of an execution's status, each one named function doing one conditional write.

Nothing else in the code writes `status` (a test greps for it), nor `start_time`, `end_time` or the
control flags. Each UPDATE names the states it may leave (`status__in=...`), so a terminal row
(success, failed, completed, terminated, skipped) is never changed again, and reports whether it
won: two processes racing for one row cannot both win. Times are the database's clock (db_now).

    (insert) ──execution_queue────────────────► pending ──executions_claim──► running ◄─┐
    (insert) ──executions_record_round────────► running | pending | skipped            │
    (insert) ──execution_start_step───────────► running          execution_mark_paused │ execution_mark_running
    (insert) ──execution_record_skipped_step──► skipped                      ▼          │
                                                                           paused ──────┘
    pending ──executions_skip──► skipped        running ──execution_release──► pending
    pending ──executions_cancel──► terminated   running | paused ──execution_finish──► success | failed |
    active ──execution_orphan──► terminated                                            completed | terminated
    failed / orphaned ──execution_schedule_retry──► (insert) pending
    failed | terminated | completed ──execution_mark(success)──► success     (an operator's correction)
    success | completed ──execution_mark(failed)──► failed

Flags, not states: `executions_request_pause` / `_request_resume` (is_paused) and
`executions_request_terminate` (terminate_requested) are read by the runner, which then moves the
row itself; `executions_hand_over` marks pending rows as sent to a Celery queue.

Each change keeps the task's stored latest execution and its day statistics true in the same
transaction (runtime.summaries): a run counts in the statistics once, when it reaches its terminal
state; `executions_delete` removes rows (retention) and leaves the statistics as they were.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from scheduler_app import selectors
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.results import trim_result
from scheduler_app.runtime.clock import db_now
from scheduler_app.runtime.identity import identity_is_alive
from scheduler_app.runtime.summaries import EndedRun, day_stats_add, day_stats_take_out, tasks_refresh_latest
from scheduler_app.selectors import handed_over_filter

logger = logging.getLogger("scheduler_app.runs")

Status = TaskExecution.Status
Trigger = TaskExecution.Trigger
ACTIVE = TaskExecution.ACTIVE_STATUSES
STARTED = TaskExecution.STARTED_STATUSES
MAX_RETRY_DELAY_SECONDS = 30 * 24 * 3600
# Final-state writes are retried through database outages for about five minutes (0.5 s, 1 s, 2 s,
# then every 3 s), so a run that ends while the database restarts still records how it ended.
FINISH_RETRY_DELAYS: tuple[float, ...] = (0.5, 1, 2, *([3] * 99))


@dataclass
class Outcome:
    """How a run ended, as the runner determined it: the final status, the result and the error."""

    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


# --------------------------------------------------------------------------- inserts


def execution_queue(
    *,
    task_id: int,
    trigger: str,
    scheduled_for: datetime | None = None,
    triggered_by_id: int | None = None,
    parent_id: int | None = None,
    result: dict[str, Any] | None = None,
    current_item: str = "",
    retry_count: int = 0,
    config_override: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> TaskExecution:
    """— → pending: a run that the scheduler claims when it is due (run now, resume, retry).

    `config_override` (validated by the caller) replaces keys of the task's config for this run."""
    now = now or db_now()
    execution = TaskExecution(
        task_id=task_id,
        status=Status.PENDING,
        trigger=trigger,
        scheduled_for=scheduled_for or now,
        triggered_by_id=triggered_by_id,
        parent_id=parent_id,
        retry_count=retry_count,
        current_item=current_item[:255],
        config_override=config_override,
    )
    execution.set_result(result)
    with transaction.atomic():
        execution.save(force_insert=True)
        if trigger != Trigger.RETRY:  # a retry still waiting is not the task's latest execution
            tasks_refresh_latest(task_ids=[task_id])
    return execution


@dataclass(frozen=True)
class PlannedOccurrence:
    """What the scheduler decided for one due occurrence (scheduling.firing): start it at once, queue it
    (`pending` for the dispatcher), hand it over to a Celery `queue`, or record it skipped (`reason`).

    `due_at` is when a queued run becomes due, when that is not its planned time (`occurrence_at`):
    a run with jitter, or one deferred to the end of a blackout window. It is the row's
    `scheduled_for`, so lateness is measured against when the run was due.
    """

    START = "start"
    QUEUE = "queue"
    HAND_OVER = "hand_over"
    SKIP = "skip"

    task_id: int
    occurrence_at: datetime
    kind: str
    reason: str = ""
    queue: str = ""
    due_at: datetime | None = None


def executions_record_round(
    *,
    planned: Sequence[PlannedOccurrence],
    worker: str,
    host: str,
    pid: int,
    now: datetime | None = None,
    refresh_latest: bool = True,
) -> list[TaskExecution]:
    """— → running | pending | skipped: one scheduling round's occurrences, in one INSERT per kind.

    Started rows are claimed by `worker` in the insert itself; a queued row with a `due_at` (jitter, a
    blackout's deferral) waits `pending` until then, for the dispatcher. The unique (task, occurrence_at) key
    is the rule for clashes: an occurrence that is recorded already (another scheduler fired it, or
    this one before a crash) is left out, never run twice. Returns the recorded runs (not the
    skipped rows), with their ids. With `refresh_latest=False` the caller refreshes the tasks' stored
    latest execution itself, right after it has started the runs (their start comes first).
    """
    now = now or db_now()
    runs: list[TaskExecution] = []
    skipped: list[TaskExecution] = []
    for item in planned:
        fields = {"task_id": item.task_id, "trigger": Trigger.SCHEDULE}
        fields.update(scheduled_for=item.due_at or item.occurrence_at, occurrence_at=item.occurrence_at)
        if item.kind == PlannedOccurrence.SKIP:
            skipped.append(TaskExecution(status=Status.SKIPPED, end_time=now, error_message=item.reason, **fields))
        elif item.kind == PlannedOccurrence.START:
            started = {"start_time": now, "heartbeat_at": now, "worker": worker[:255], "host": host[:255]}
            runs.append(TaskExecution(status=Status.RUNNING, pid=pid, **started, **fields))
        elif item.kind == PlannedOccurrence.HAND_OVER:
            handover = {"handover_queue": item.queue[:100], "handed_over_at": now}
            runs.append(TaskExecution(status=Status.PENDING, **handover, **fields))
        else:
            runs.append(TaskExecution(status=Status.PENDING, **fields))
    if not skipped and not refresh_latest:
        return _insert_occurrences(runs)  # one statement: no transaction to open (a round's usual case)
    with transaction.atomic():
        day_stats_add(ended=[_ended(row) for row in _insert_occurrences(skipped)])
        recorded = _insert_occurrences(runs)
        if refresh_latest:
            tasks_refresh_latest(task_ids={row.task_id for row in recorded})
    return recorded


def _insert_occurrences(rows: list[TaskExecution]) -> list[TaskExecution]:
    """Insert a round's rows; an occurrence recorded already is left out (see executions_record_round).

    Rows that differ only in their task (a round's usual case: due at one instant, started or queued
    the same way) go in one INSERT … SELECT from the tasks, whose parameters are the shared values
    once and the task ids: building it costs next to nothing whatever the batch, a task deleted
    meanwhile gets no row, and the new ids come back with it where the database can say them.
    """
    if not rows:
        return []
    groups: dict[tuple, list[TaskExecution]] = {}
    for row in rows:
        groups.setdefault(tuple(getattr(row, name) for name in _SHARED_COLUMNS), []).append(row)
    try:
        # One statement per group is atomic by itself; inside a transaction a savepoint keeps a clash
        # from breaking it. (Outside one, a savepoint would cost three more round trips.)
        with transaction.atomic() if connection.in_atomic_block or len(groups) > 1 else contextlib.nullcontext():
            recorded = [row for group in groups.values() for row in _insert_group(group)]
    except IntegrityError:
        return _insert_one_by_one(rows)
    return recorded


# The columns of a round's row that are the same for a whole group (everything but the task).
_SHARED_COLUMNS = (
    "status",
    "trigger",
    "scheduled_for",
    "occurrence_at",
    "start_time",
    "heartbeat_at",
    "end_time",
    "worker",
    "host",
    "pid",
    "handover_queue",
    "handed_over_at",
    "error_message",
)


def _insert_group(group: list[TaskExecution]) -> list[TaskExecution]:
    meta = TaskExecution._meta
    quote = connection.ops.quote_name
    now = timezone.now()
    model = group[0]
    columns = [column for column in meta.concrete_fields if not column.primary_key and column.attname != "task_id"]
    values = []
    for column in columns:
        value = now if column.attname in ("created_at", "updated_at") else getattr(model, column.attname)
        values.append(column.get_db_prep_save(value, connection))
    task_ids = [row.task_id for row in group]
    returning = connection.features.can_return_rows_from_bulk_insert
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({quote('task_id')}, {', '.join(quote(c.column) for c in columns)}) "
        f"SELECT {quote('id')}, {', '.join(['%s'] * len(columns))} FROM {quote(ScheduledTask._meta.db_table)} "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(task_ids))})"
        + (f" RETURNING {quote('id')}, {quote('task_id')}" if returning else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *task_ids])
        if returning:
            ids = {task_id: pk for pk, task_id in cursor.fetchall()}
    if not returning:  # read the new ids back by their occurrence
        written = TaskExecution.objects.filter(task_id__in=task_ids, occurrence_at=model.occurrence_at)
        ids = dict(written.values_list("task_id", "id"))
    recorded = []
    for row in group:
        if row.task_id in ids:  # a task deleted meanwhile got no row
            row.pk = ids[row.task_id]
            row.created_at = row.updated_at = now
            row._state.adding = False
            recorded.append(row)
    return recorded


def _insert_one_by_one(rows: list[TaskExecution]) -> list[TaskExecution]:
    """The fallback when a row of the batch is recorded already: each on its own, the clashes left out."""
    recorded = []
    for row in rows:
        row.pk = None
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            logger.warning(
                "task=%s occurrence=%s is recorded already (fired by another scheduler); not run twice",
                row.task_id,
                row.occurrence_at.isoformat(),
            )
            continue
        recorded.append(row)
    return recorded


def _insert_step(*, parent: TaskExecution, task_id: int, status: str, **fields: Any) -> TaskExecution:
    step = TaskExecution(
        task_id=task_id,
        status=status,
        trigger=Trigger.WORKFLOW,
        parent_id=parent.pk,
        triggered_by_id=parent.triggered_by_id,
        **fields,
    )
    with transaction.atomic():
        step.save(force_insert=True)
        if status == Status.SKIPPED:
            day_stats_add(ended=[_ended(step)])
        else:
            tasks_refresh_latest(task_ids=[task_id])
    return step


def execution_start_step(
    *, parent: TaskExecution, task_id: int, worker: str, host: str, pid: int, now: datetime | None = None
) -> TaskExecution:
    """— → running: a workflow step, claimed by the workflow's own worker as it is written.

    Steps are written only when they start (or are skipped), so a crash can never leave a step row
    waiting for a workflow that is gone: a started step has a worker and a heartbeat like any run.
    """
    now = now or db_now()
    claimed = {"start_time": now, "heartbeat_at": now, "worker": worker[:255], "host": host[:255], "pid": pid}
    return _insert_step(parent=parent, task_id=task_id, status=Status.RUNNING, **claimed)


def execution_record_skipped_step(
    *, parent: TaskExecution, task_id: int, reason: str, now: datetime | None = None
) -> TaskExecution:
    """— → skipped: a workflow step that will not run (a dependency failed, the workflow stopped)."""
    now = now or db_now()
    return _insert_step(parent=parent, task_id=task_id, status=Status.SKIPPED, end_time=now, error_message=reason)


def retry_delay_seconds(*, retry_interval: float, retry_backoff: float, retry_count: int) -> float:
    """Wait before the retry of a run that was itself attempt `retry_count` (0 = the first run)."""
    try:
        delay = float(retry_interval) * float(retry_backoff) ** retry_count
    except OverflowError:
        delay = MAX_RETRY_DELAY_SECONDS
    return min(delay, MAX_RETRY_DELAY_SECONDS)


def execution_schedule_retry(
    *, execution: TaskExecution, now: datetime | None = None, delay_seconds: float | None = None
) -> TaskExecution | None:
    """(insert) pending: the retry of a failed or orphaned run, when its task has attempts left.

    The caller decides which endings deserve a retry (failed runs, orphaned ones; never runs
    terminated by a user or a shutdown, never skipped ones). Workflow steps are never retried one
    by one: their workflow is. The task's current retry settings apply; the retry is due after
    `retry_interval × retry_backoff^retry_count` seconds, or `delay_seconds`.
    """
    if execution.trigger == Trigger.WORKFLOW:
        return None
    task = (
        ScheduledTask.objects.filter(pk=execution.task_id)
        .values("max_retries", "retry_interval", "retry_backoff")
        .first()
    )
    if task is None or execution.retry_count >= task["max_retries"]:
        return None
    now = now or db_now()
    if delay_seconds is None:
        delay_seconds = retry_delay_seconds(
            retry_interval=task["retry_interval"],
            retry_backoff=task["retry_backoff"],
            retry_count=execution.retry_count,
        )
    retry = execution_queue(
        task_id=execution.task_id,
        trigger=Trigger.RETRY,
        scheduled_for=now + timedelta(seconds=delay_seconds),
        triggered_by_id=execution.triggered_by_id,
        parent_id=execution.pk,
        retry_count=execution.retry_count + 1,
        config_override=execution.config_override,  # a retry repeats the run as it was asked for
        now=now,
    )
    logger.info(
        "execution #%s: retry %s of %s is #%s, due %s",
        execution.pk,
        retry.retry_count,
        task["max_retries"],
        retry.pk,
        retry.scheduled_for.isoformat(),
    )
    return retry


# --------------------------------------------------------------------------- pending → running and back


def executions_claim(
    *, execution_ids: Sequence[int], worker: str, host: str, pid: int, now: datetime | None = None
) -> list[TaskExecution]:
    """pending → running for `worker`, in one UPDATE; returns the rows it won, with their tasks."""
    if not execution_ids:
        return []
    now = now or db_now()
    worker = worker[:255]
    with transaction.atomic():
        TaskExecution.objects.filter(pk__in=execution_ids, status=Status.PENDING).update(
            status=Status.RUNNING,
            start_time=now,
            heartbeat_at=now,
            worker=worker,
            host=host[:255],
            pid=pid,
            updated_at=now,
        )
        won = TaskExecution.objects.select_related("task").filter(
            pk__in=execution_ids, status=Status.RUNNING, worker=worker, start_time=now
        )
        won = list(won.order_by("scheduled_for", "id"))
        tasks_refresh_latest(task_ids={row.task_id for row in won})
    return won


def execution_claim(*, execution_id: int, worker: str = "", now: datetime | None = None) -> bool:
    """pending → running for one row (a Celery worker, a tool); True when this caller owns the run.

    `worker` names the claimer (default: this host and process)."""
    now = now or db_now()
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    with transaction.atomic():
        claimed = TaskExecution.objects.filter(pk=execution_id, status=Status.PENDING).update(
            status=Status.RUNNING,
            start_time=now,
            heartbeat_at=now,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            worker=worker[:255],
            updated_at=now,
        )
        if claimed:
            tasks_refresh_latest(execution_ids=[execution_id])
    return claimed == 1


def execution_release(*, execution_id: int, worker: str, reason: str, now: datetime | None = None) -> bool:
    """running → pending: a run its claimer will not start after all (it lost the leader lease).

    Only while `worker` still holds it and nothing has begun; the dispatcher of the current leader
    then starts it. Returns whether the row was handed back.
    """
    now = now or db_now()
    with transaction.atomic():
        released = TaskExecution.objects.filter(
            pk=execution_id, status=Status.RUNNING, worker=worker[:255], child_pid__isnull=True
        ).update(
            status=Status.PENDING, start_time=None, heartbeat_at=None, worker="", host="", pid=None, updated_at=now
        )
        if released:
            tasks_refresh_latest(execution_ids=[execution_id])
    if released:
        logger.warning("execution #%s handed back unstarted: %s", execution_id, reason)
    return bool(released)


def executions_hand_over(
    *, execution_ids: Sequence[int], queue: str, now: datetime | None = None
) -> list[TaskExecution]:
    """Mark pending rows as sent to a Celery queue (still pending: a worker claims one when it starts
    it); returns the rows handed over here, with their tasks."""
    if not execution_ids:
        return []
    now = now or db_now()
    queue = queue[:100]
    TaskExecution.objects.filter(pk__in=execution_ids, status=Status.PENDING, handover_queue="").update(
        handover_queue=queue, handed_over_at=now, updated_at=now
    )
    handed = TaskExecution.objects.select_related("task").filter(
        handed_over_filter(), pk__in=execution_ids, handover_queue=queue, handed_over_at=now
    )
    return list(handed)


def handovers_requeue(*, older_than: datetime, now: datetime | None = None) -> list[int]:
    """Hand back to the dispatcher the runs sent to Celery before `older_than` that no worker started.

    Their message was lost (a leader that died before sending it, a broker that lost it, a worker
    killed with messages it had reserved). Sending one twice is safe: only one claim can win.
    """
    now = now or db_now()
    stale = TaskExecution.objects.filter(handed_over_filter(), handed_over_at__lt=older_than)
    ids = list(stale.values_list("id", flat=True)[:1000])
    if not ids:
        return []
    reset = TaskExecution.objects.filter(handed_over_filter(), pk__in=ids, handed_over_at__lt=older_than).update(
        handover_queue="", handed_over_at=None, updated_at=now
    )
    if reset:
        logger.warning("%s runs sent to Celery were not started in time; they are sent again: %s", reset, ids[:20])
    return ids


# --------------------------------------------------------------------------- control flags and pause


def executions_request_pause(*, execution_ids: Sequence[int], now: datetime | None = None) -> int:
    """Ask the runner to pause running runs (is_paused); it moves them to `paused` itself."""
    now = now or db_now()
    return TaskExecution.objects.filter(pk__in=execution_ids, status=Status.RUNNING).update(
        is_paused=True, updated_at=now
    )


def executions_request_resume(*, execution_ids: Sequence[int], now: datetime | None = None) -> int:
    """Ask the runner to continue paused runs (or running ones whose pause was not carried out yet)."""
    now = now or db_now()
    return (
        TaskExecution.objects.filter(pk__in=execution_ids, status__in=STARTED)
        .filter(Q(status=Status.PAUSED) | Q(is_paused=True))
        .update(is_paused=False, updated_at=now)
    )


def _move(execution_id: int, leaves: str, becomes: str, now: datetime | None) -> bool:
    with transaction.atomic():
        moved = TaskExecution.objects.filter(pk=execution_id, status=leaves).update(
            status=becomes, updated_at=now or db_now()
        )
        if moved:
            tasks_refresh_latest(execution_ids=[execution_id])
    return bool(moved)


def execution_mark_paused(*, execution_id: int, now: datetime | None = None) -> bool:
    """running → paused: the runner holds the work (set by the run's own context)."""
    return _move(execution_id, Status.RUNNING, Status.PAUSED, now)


def execution_mark_running(*, execution_id: int, now: datetime | None = None) -> bool:
    """paused → running: the runner continues the work."""
    return _move(execution_id, Status.PAUSED, Status.RUNNING, now)


def executions_request_terminate(*, execution_ids: Sequence[int], reason: str = "", now: datetime | None = None) -> int:
    """Ask the runners of started runs to stop (terminate_requested); the reason becomes their error."""
    now = now or db_now()
    fields: dict[str, Any] = {"terminate_requested": True, "is_paused": False, "updated_at": now}
    if reason:
        fields["error_message"] = reason
    return TaskExecution.objects.filter(pk__in=execution_ids, status__in=STARTED).update(**fields)


def _end_pending(execution_ids: Sequence[int], status: str, now: datetime, **fields: Any) -> int:
    """pending → `status` for these rows, counted in the statistics, the tasks' latest kept true."""
    with transaction.atomic():
        changed = TaskExecution.objects.filter(pk__in=execution_ids, status=Status.PENDING).update(
            status=status, end_time=now, updated_at=now, **fields
        )
        if changed:
            ended = TaskExecution.objects.filter(pk__in=execution_ids, status=status, end_time=now)
            rows = list(ended.only("task_id", "status", "start_time", "duration_seconds"))
            day_stats_add(ended=[_ended(row) for row in rows])
            tasks_refresh_latest(task_ids={row.task_id for row in rows})
    return changed


def executions_cancel(*, execution_ids: Sequence[int], reason: str, now: datetime | None = None) -> int:
    """pending → terminated: runs stopped before anything started them (handed-over ones included)."""
    now = now or db_now()
    return _end_pending(execution_ids, Status.TERMINATED, now, terminate_requested=True, error_message=reason)


def executions_stop(*, execution_ids: Sequence[int], reason: str, now: datetime | None = None) -> int:
    """Stop active runs whatever their state: cancel the pending ones, ask the started ones to
    terminate (a row claimed between the two statements is caught by the second). Returns the rows
    changed."""
    if not execution_ids:
        return 0
    now = now or db_now()
    cancelled = executions_cancel(execution_ids=execution_ids, reason=reason, now=now)
    return cancelled + executions_request_terminate(execution_ids=execution_ids, reason=reason, now=now)


def executions_skip(*, execution_ids: Sequence[int], reason: str, now: datetime | None = None) -> int:
    """pending → skipped: queued runs that will not run (a retry of a task disabled meanwhile)."""
    now = now or db_now()
    return _end_pending(execution_ids, Status.SKIPPED, now, error_message=reason)


# --------------------------------------------------------------------------- the end of a run


def execution_finish(
    *, execution: TaskExecution, outcome: Outcome, progress: dict[str, Any] | None = None, now: datetime | None = None
) -> tuple[bool, dict[str, Any] | None]:
    """running | paused → success | failed | completed | terminated: the one final write.

    A terminate request seen here wins over the outcome (it was asked for before the run could
    record its end), and a reason written with the request becomes the run's error. A failed run
    (not a workflow step) gets its retry row in the same transaction. `progress` are the progress
    fields the run recorded and has not written yet. Returns whether the row was written and, when
    exactly the computed fields were written, those fields (so the caller needs no read-back).
    """
    [result] = executions_finish(finals=[(execution, outcome, progress)], now=now)
    return result


def executions_finish(
    *, finals: Sequence[tuple[TaskExecution, Outcome, dict[str, Any] | None]], now: datetime | None = None
) -> list[tuple[bool, dict[str, Any] | None]]:
    """execution_finish for many runs in one transaction: one commit, one statistics upsert and one
    refresh of the tasks' latest execution for the whole batch (the process's finisher writes the
    runs that end together this way). Returns execution_finish's answer for each, in order."""
    now = now or db_now()
    answers: list[tuple[bool, dict[str, Any] | None]] = []
    ended: list[EndedRun] = []
    with transaction.atomic():
        quick = _finish_quick_runs(finals, now) if len(finals) > 1 else {}
        for index, (execution, outcome, progress) in enumerate(finals):
            if index in quick:
                answer, fields = (True, quick[index]), quick[index]
            else:
                answer, fields = _finish_one(execution, outcome, progress, now)
            answers.append(answer)
            if fields is not None:
                run = EndedRun(execution.task_id, fields["status"], execution.start_time, fields["duration_seconds"])
                ended.append(run)
        day_stats_add(ended=ended)
        tasks_refresh_latest(task_ids={run.task_id for run in ended})
    return answers


# What the quick path writes: the final fields of _final_fields, and the progress fields a run may
# not have recorded (those keep their values).
_QUICK_COLUMNS = (
    "status",
    "end_time",
    "duration_seconds",
    "result",
    "error_message",
    "estimated_end_time",
    "is_paused",
    "heartbeat_at",
    "updated_at",
    "progress_percent",
    "current_item",
)
_QUICK_OPTIONAL = ("processed_items", "total_items", "output_tail")


def _finish_quick_runs(
    finals: Sequence[tuple[TaskExecution, Outcome, dict[str, Any] | None]], now: datetime
) -> dict[int, dict[str, Any]]:
    """The common case of a batch (runs that succeeded, with no terminate request) in one executemany
    of one prepared conditional UPDATE, instead of an ORM query per run: index in `finals` → the
    fields written, for the runs it wrote. The others (failures, terminate requests, rows ended
    elsewhere meanwhile) are left to _finish_one."""
    quick = [
        (index, execution, _final_fields(execution, outcome, progress, now))
        for index, (execution, outcome, progress) in enumerate(finals)
        if outcome.status in (Status.SUCCESS, Status.COMPLETED)
    ]
    if len(quick) < 2:
        return {}
    meta = TaskExecution._meta
    quote = connection.ops.quote_name
    columns = {name: quote(meta.get_field(name).column) for name in (*_QUICK_COLUMNS, *_QUICK_OPTIONAL)}
    assignments = [f"{columns[name]} = %s" for name in _QUICK_COLUMNS]
    assignments += [f"{columns[name]} = COALESCE(%s, {columns[name]})" for name in _QUICK_OPTIONAL]
    started = ", ".join(["%s"] * len(STARTED))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "
        f"WHERE {quote('id')} = %s AND {quote('status')} IN ({started}) AND {quote('terminate_requested')} = %s"
    )
    unrequested = meta.get_field("terminate_requested").get_db_prep_save(False, connection)
    params = []
    for _index, execution, fields in quick:
        values = [meta.get_field(name).get_db_prep_save(fields.get(name), connection) for name in _QUICK_COLUMNS]
        values += [
            meta.get_field(name).get_db_prep_save(fields[name], connection) if name in fields else None
            for name in _QUICK_OPTIONAL
        ]
        params.append([*values, execution.pk, *STARTED, unrequested])
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    ids = [execution.pk for _index, execution, _fields in quick]
    ended = TaskExecution.objects.filter(pk__in=ids, end_time=now, status__in=(Status.SUCCESS, Status.COMPLETED))
    won = set(ended.values_list("pk", flat=True))
    written = {}
    for index, execution, fields in quick:
        if execution.pk in won:
            logger.info("execution #%s ended %s", execution.pk, fields["status"])
            written[index] = fields
    return written


def _finish_one(
    execution: TaskExecution, outcome: Outcome, progress: dict[str, Any] | None, now: datetime
) -> tuple[tuple[bool, dict[str, Any] | None], dict[str, Any] | None]:
    """One run's final write inside the caller's transaction: (execution_finish's answer, the fields
    written, or None when the row had ended already)."""
    if outcome.status in (Status.SUCCESS, Status.COMPLETED):
        # The common case in one conditional UPDATE: no terminate request, nothing else to write.
        fields = _final_fields(execution, outcome, progress, now)
        unrequested = TaskExecution.objects.filter(pk=execution.pk, status__in=STARTED, terminate_requested=False)
        if unrequested.update(**fields):
            logger.info("execution #%s ended %s", execution.pk, outcome.status)
            return (True, fields), fields
    with transaction.atomic():
        rows = TaskExecution.objects.filter(pk=execution.pk, status__in=STARTED)
        for _ in range(3):  # the flag may change between the read and the write; then read again
            current = rows.values("terminate_requested", "error_message").first()
            if current is None:
                return (False, None), None  # ended elsewhere already: a terminal state is never overwritten
            final = _terminated_if_requested(outcome, current["terminate_requested"], current["error_message"])
            fields = _final_fields(execution, final, progress, now)
            if rows.filter(terminate_requested=current["terminate_requested"]).update(**fields):
                break
        else:
            return (False, None), None
        if final.status == Status.FAILED and execution.trigger != Trigger.WORKFLOW:
            execution_schedule_retry(execution=execution, now=now)
    logger.info("execution #%s ended %s%s", execution.pk, final.status, f": {final.error}" if final.error else "")
    return (True, None), fields


def _ended(row: TaskExecution) -> EndedRun:
    return EndedRun(row.task_id, row.status, row.start_time, row.duration_seconds)


def _count_end(execution: TaskExecution, fields: dict[str, Any]) -> None:
    day_stats_add(
        ended=[EndedRun(execution.task_id, fields["status"], execution.start_time, fields["duration_seconds"])]
    )
    tasks_refresh_latest(task_ids=[execution.task_id])


def _terminated_if_requested(outcome: Outcome, requested: bool, reason: str) -> Outcome:
    if outcome.status != Status.TERMINATED and not requested:
        return outcome
    if outcome.status == Status.TERMINATED:
        message = reason or outcome.error
    else:
        message = reason or "terminated on request"
        if outcome.error:
            message += f" (the run ended with: {outcome.error})"
    result = {**outcome.result, "success": False, "message": message}
    return Outcome(Status.TERMINATED, result, message)


def _final_fields(
    execution: TaskExecution, outcome: Outcome, progress: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    start = execution.start_time or now
    fields: dict[str, Any] = {
        **(progress or {}),
        "status": outcome.status,
        "end_time": now,
        "duration_seconds": round(max(0.0, (now - start).total_seconds()), 3),
        "result": trim_result(outcome.result),
        "error_message": outcome.error if outcome.status != Status.SUCCESS else "",
        "estimated_end_time": None,
        "is_paused": False,
        "heartbeat_at": now,
        "updated_at": now,
    }
    if outcome.status in (Status.SUCCESS, Status.COMPLETED):
        fields["progress_percent"] = 100.0
    return fields


# What an operator may correct a finished run to, from which states: a run that did not do its work
# (failed, terminated, a workflow with failed steps) may be declared done, one that did may be declared
# failed. Skipped runs never ran, active ones have not ended: neither is marked.
MARKABLE: dict[str, tuple[str, ...]] = {
    Status.SUCCESS: (Status.FAILED, Status.TERMINATED, Status.COMPLETED),
    Status.FAILED: (Status.SUCCESS, Status.COMPLETED),
}


def execution_mark(*, execution_id: int, status: str, message: str, now: datetime | None = None) -> str | None:
    """finished → success | failed, an operator's correction of how a run ended (MARKABLE).

    Returns the status the run left, or None when it is not in a state that allows the mark (not
    found, active, skipped, already marked so). The result's `success` follows the new status and
    `message` (who marked it and why) becomes the result's message; a run marked failed carries it
    as its error too. The day statistics move the run from its old status to the new one. No retry
    follows a mark: the operator decided how the run ended.
    """
    now = now or db_now()
    with transaction.atomic():
        row = (
            TaskExecution.objects.select_for_update()
            .filter(pk=execution_id, status__in=MARKABLE[status])
            .only("task_id", "status", "start_time", "duration_seconds", "result", "error_message")
            .first()
        )
        if row is None:
            return None
        result = {**row.get_result(), "success": status == Status.SUCCESS, "message": message}
        error = "" if status == Status.SUCCESS else message
        moved = TaskExecution.objects.filter(pk=execution_id, status=row.status).update(
            status=status, result=trim_result(result), error_message=error, updated_at=now
        )
        if not moved:
            return None
        # A row written behind the lifecycle's back (an import) was never counted; it counts from now on.
        day_stats_take_out(run=_ended(row))
        day_stats_add(ended=[EndedRun(row.task_id, status, row.start_time, row.duration_seconds)])
        tasks_refresh_latest(task_ids=[row.task_id])
    return row.status


def execution_orphan(*, execution: TaskExecution, reason: str, now: datetime | None = None) -> bool:
    """active → terminated: a run nobody works on any more (its worker died or lost track of it).

    Its command is killed only when the very process recorded for it still runs on this host
    (child_identity: boot id, pid and start time); a pid that now names another process, after a
    reboot or pid reuse, is left alone. Returns whether the row was ended here.
    """
    if execution.child_pid and execution.host == socket.gethostname():
        if identity_is_alive(execution.child_identity):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(execution.child_pid, signal.SIGKILL)
        else:
            logger.info(
                "execution #%s: its command's process %s is gone (or the pid now names another process): "
                "nothing to kill",
                execution.pk,
                execution.child_pid,
            )
    now = now or db_now()
    duration = round((now - execution.start_time).total_seconds(), 3) if execution.start_time else None
    with transaction.atomic():
        ended = TaskExecution.objects.filter(pk=execution.pk, status__in=ACTIVE).update(
            status=Status.TERMINATED,
            end_time=now,
            duration_seconds=duration,
            is_paused=False,
            error_message=reason,
            updated_at=now,
        )
        if ended:
            _count_end(execution, {"status": Status.TERMINATED, "duration_seconds": duration})
    if ended:
        logger.warning("terminated execution=#%s task=%s: %s", execution.pk, execution.task_id, reason)
    return bool(ended)


# --------------------------------------------------------------------------- deleting history


def executions_delete(*, execution_ids: Sequence[int]) -> int:
    """Delete finished runs (retention): rows in an active state are never deleted, whatever is asked.
    The day statistics keep counting them; the tasks' stored latest execution is recomputed.

    Runs that named a deleted row as their parent keep existing with no parent (the field's
    on_delete=SET_NULL), in the same transaction. The delete is one statement by primary key,
    without loading the rows (Django's delete() would read every result and output tail only to
    find nothing to cascade). Returns the number of rows deleted.
    """
    if not execution_ids:
        return 0
    with transaction.atomic():
        found = list(
            TaskExecution.objects.filter(pk__in=list(execution_ids), status__in=TaskExecution.TERMINAL_STATUSES)
            .order_by()
            .values_list("pk", "task_id")
        )
        if not found:
            return 0
        ids = [pk for pk, _task in found]
        # Found by the parent index first (selectors.children_of), then updated by primary key.
        deleting = set(ids)
        orphaned = [pk for pk, _parent, _s, _t in selectors.children_of(execution_ids=ids) if pk not in deleting]
        if orphaned:
            TaskExecution.objects.filter(pk__in=orphaned).update(parent=None)
        rows = TaskExecution.objects.filter(pk__in=ids, status__in=TaskExecution.TERMINAL_STATUSES)
        deleted = rows._raw_delete(rows.db)
        # The day statistics keep counting deleted runs; a task's stored latest execution moves back.
        tasks_refresh_latest(task_ids={task for _pk, task in found})
    return deleted
