"""Running one execution synchronously: claim, execute through the registry, finish, retry.

Used by the scheduler's worker threads (and Celery workers, and workflow steps, and tests):
`execution_claim` turns a pending row into a running one (whoever updates the row owns the run),
`execution_execute` runs a claimed row to its final state, `execution_run` does both.

Guarantees: every state change is a conditional UPDATE, so a terminal row is never overwritten
(zquant wrote SUCCESS over TERMINATED: weak spot 7); a terminate request that arrived before the
final write wins over any outcome and is never retried (weak spot 9); a failed run with attempts
left gets exactly one new `pending` retry row, up to `max_retries` (weak spot 10); the final write is
retried through short database outages and, if it still fails, logged loudly: the row stays
`running` only until the scheduler's orphan check ends it (its heartbeat stops with the run).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from scheduler_app.executors.base import (
    RESULT_STATUS_KEY,
    ConfigError,
    ExecutionFailed,
    ExecutionTerminated,
    ExecutionTimedOut,
    ExecutorNotFound,
)
from scheduler_app.executors.context import ExecutionContext, ExecutionMonitor, get_monitor
from scheduler_app.executors.registry import get_executor
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.results import trim_result

logger = logging.getLogger("scheduler_app.runs")

Status = TaskExecution.Status
STARTED = TaskExecution.STARTED_STATUSES
# Seconds to wait before each further attempt of the final write (about 30 s in all).
# Final-state writes are retried through database outages for about five minutes (0.5 s, 1 s, 2 s,
# then every 3 s), so a run that ends while the database restarts still records how it ended.
FINISH_RETRY_DELAYS: tuple[float, ...] = (0.5, 1, 2, *([3] * 99))
MAX_RETRY_DELAY_SECONDS = 30 * 24 * 3600


def default_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[:255]


def _in_transaction() -> bool:
    return connection.in_atomic_block


def _close_old_connections() -> None:
    # Inside an atomic block (a test, a caller's transaction) the connection is not ours to close.
    if not _in_transaction():
        close_old_connections()


def _reconnect() -> None:
    """Drop a broken connection; the next query opens a new one."""
    connection.close()


# --------------------------------------------------------------------------- claim


def execution_claim(*, execution_id: int, worker: str = "", now: datetime | None = None) -> bool:
    """pending → running in one conditional UPDATE; True when this caller now owns the run."""
    now = now or timezone.now()
    claimed = TaskExecution.objects.filter(pk=execution_id, status=Status.PENDING).update(
        status=Status.RUNNING,
        start_time=now,
        host=socket.gethostname()[:255],
        pid=os.getpid(),
        worker=(worker or default_worker())[:255],
        heartbeat_at=now,
        updated_at=now,
    )
    return claimed == 1


# --------------------------------------------------------------------------- execute


@dataclass
class Outcome:
    status: str
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def execution_execute(
    *, execution_id: int, execution: TaskExecution | None = None, monitor: ExecutionMonitor | None = None
) -> TaskExecution:
    """Run a claimed (running) execution to its final state and return the updated row.

    A row that is not running (never claimed, or already ended) is returned unchanged. Timeouts
    come from the task's `timeout_seconds` (and a command's own `timeout_seconds`). A failed run
    with attempts left gets its retry row in the same transaction as the final state.
    `execution` is the row as its claimer just wrote it, with its task loaded (saves a read).
    """
    _close_old_connections()
    try:
        if execution is None:
            execution = TaskExecution.objects.select_related("task").get(pk=execution_id)
        if execution.status not in STARTED:
            logger.warning("execution #%s is %s, not running: not executed", execution_id, execution.status)
            return execution
        monitor = monitor or get_monitor()
        ctx = ExecutionContext(execution, timeout=execution.task.timeout_seconds)
        monitor.register(ctx)
        interrupted: BaseException | None = None
        try:
            outcome = _execute(ctx)
        except BaseException as error:  # KeyboardInterrupt / SystemExit in a worker: record, then re-raise
            interrupted = error
            outcome = _failed(ctx, f"interrupted: {error!r}")
        finally:
            monitor.unregister(ctx)
        final = execution_finish(execution=execution, outcome=outcome, ctx=ctx)
        if interrupted is not None:
            raise interrupted
        return final
    finally:
        _close_old_connections()


def execution_run(*, execution_id: int, worker: str = "", monitor: ExecutionMonitor | None = None) -> TaskExecution:
    """Claim and execute a pending execution in this thread (tests, tools, workflow steps)."""
    if not execution_claim(execution_id=execution_id, worker=worker):
        logger.info("execution #%s could not be claimed (not pending)", execution_id)
        return TaskExecution.objects.get(pk=execution_id)
    return execution_execute(execution_id=execution_id, monitor=monitor)


def _execute(ctx: ExecutionContext) -> Outcome:
    """Run the executor and translate how it ended into an Outcome."""
    try:
        executor = get_executor(ctx.task.task_type)
        errors = executor.validate_config(ctx.config, task_id=ctx.task.pk)
        if errors:
            raise ConfigError(errors)
        ctx.logger.info("execution #%s of task %s (%s) started", ctx.execution_id, ctx.task.pk, ctx.task.name)
        ctx.raise_if_stopping()  # terminated between claim and start: do not begin the work
        result = executor.execute(ctx)
    except ExecutionTerminated as stop:
        return Outcome(
            Status.TERMINATED, {**ctx.live_result(), "success": False, "message": stop.message}, stop.message
        )
    except ExecutionTimedOut as stop:
        return _failed(ctx, stop.message)
    except ExecutionFailed as error:
        return _failed(ctx, error.message, error.result)
    except ExecutorNotFound as error:
        return _failed(ctx, str(error))
    except Exception as error:
        ctx.logger.exception("execution #%s failed", ctx.execution_id)
        return _failed(ctx, f"{type(error).__name__}: {error}")
    return _from_result(ctx, result)


def _failed(ctx: ExecutionContext, message: str, result: dict[str, Any] | None = None) -> Outcome:
    stored = {**ctx.live_result(), **(result or {}), "success": False}
    if not (result or {}).get("message"):
        stored["message"] = message  # not the last progress message ("step 3/5"), which would mislead
    return Outcome(Status.FAILED, stored, message)


def _from_result(ctx: ExecutionContext, result: Any) -> Outcome:
    if not isinstance(result, dict):
        result = {"success": True, "message": "" if result is None else str(result)}
    result = {**ctx.base_result, **result}
    chosen = result.pop(RESULT_STATUS_KEY, None)
    if chosen == Status.COMPLETED:
        result.setdefault("success", False)
        return Outcome(Status.COMPLETED, result, str(result.get("message") or ""))
    if chosen == Status.FAILED or result.get("success", True) is False:
        # A result that says it failed is a failure (zquant recorded it as SUCCESS: weak spot 21).
        result["success"] = False
        message = str(result.get("message") or "the task reported a failure")
        return Outcome(Status.FAILED, {**ctx.live_result(), **result}, message)
    result.setdefault("success", True)
    return Outcome(Status.SUCCESS, result)


# --------------------------------------------------------------------------- finish


def execution_finish(
    *,
    execution: TaskExecution,
    outcome: Outcome,
    ctx: ExecutionContext | None = None,
    now: datetime | None = None,
) -> TaskExecution:
    """Write the final state (retried through DB outages) and the retry row; returns the fresh row."""
    attempts = len(FINISH_RETRY_DELAYS) + 1
    for attempt in range(1, attempts + 1):
        try:
            written, fields = _write_final(execution=execution, outcome=outcome, ctx=ctx, now=now)
            break
        except DatabaseError as error:
            if _in_transaction():
                raise  # the caller's transaction is broken; only the caller can recover
            if attempt == attempts:
                logger.critical(
                    "execution #%s: could not record its final state '%s' after %s attempts (%s); the row stays "
                    "'%s' until the scheduler's orphan check ends it. Error was: %s",
                    execution.pk,
                    outcome.status,
                    attempts,
                    type(error).__name__,
                    execution.status,
                    outcome.error or "-",
                    exc_info=True,
                )
                return execution
            delay = FINISH_RETRY_DELAYS[attempt - 1]
            logger.error(
                "execution #%s: writing the final state failed (attempt %s of %s: %s); trying again in %ss",
                execution.pk,
                attempt,
                attempts,
                error,
                delay,
            )
            _reconnect()
            time.sleep(delay)
    if not written:
        logger.info("execution #%s had already ended; its final state was left as it was", execution.pk)
    if fields is not None:  # written as computed, with nothing else to read back
        for name, value in fields.items():
            setattr(execution, name, value)
        return execution
    try:
        return TaskExecution.objects.get(pk=execution.pk)
    except (DatabaseError, TaskExecution.DoesNotExist):
        return execution


def _write_final(
    *, execution: TaskExecution, outcome: Outcome, ctx: ExecutionContext | None, now: datetime | None
) -> tuple[bool, dict[str, Any] | None]:
    """One attempt: the conditional UPDATE and, for a failure with attempts left, the retry row.

    Returns whether the row was written and, when the fast path wrote exactly the computed fields,
    those fields. A terminate request seen here wins over the outcome (the user asked for it before
    the run could record its end). A reason written into error_message together with the request
    (by a service or the scheduler) becomes the error of the terminated run.
    """
    now = now or timezone.now()
    if outcome.status in (Status.SUCCESS, Status.COMPLETED):
        # The common case in one statement: no terminate request, nothing else to write.
        fields = _final_fields(execution, outcome, ctx, now)
        unrequested = TaskExecution.objects.filter(pk=execution.pk, status__in=STARTED, terminate_requested=False)
        if unrequested.update(**fields):
            logger.info("execution #%s ended %s", execution.pk, outcome.status)
            return True, fields
    with transaction.atomic():
        rows = TaskExecution.objects.filter(pk=execution.pk, status__in=STARTED)
        for _ in range(3):  # the flag may change between the read and the write; then read again
            current = rows.values("terminate_requested", "error_message").first()
            if current is None:
                return False, None  # already ended elsewhere: never overwrite a terminal state
            final = _terminated_if_requested(outcome, current["terminate_requested"], current["error_message"])
            fields = _final_fields(execution, final, ctx, now)
            if rows.filter(terminate_requested=current["terminate_requested"]).update(**fields):
                break
        else:
            return False, None
        if final.status == Status.FAILED and execution.trigger != TaskExecution.Trigger.WORKFLOW:
            execution.status = final.status
            execution_schedule_retry(execution=execution, now=now)
    logger.info("execution #%s ended %s%s", execution.pk, final.status, f": {final.error}" if final.error else "")
    return True, None


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
    execution: TaskExecution, outcome: Outcome, ctx: ExecutionContext | None, now: datetime
) -> dict[str, Any]:
    start = execution.start_time or now
    fields: dict[str, Any] = {
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
    if ctx is not None:
        fields["current_item"] = ctx.current_item
        if ctx.processed is not None:
            fields["processed_items"] = ctx.processed
        if ctx.total is not None:
            fields["total_items"] = ctx.total
        fields["progress_percent"] = ctx.percent
        if ctx.output_tail is not None:
            fields["output_tail"] = ctx.output_tail
    if outcome.status in (Status.SUCCESS, Status.COMPLETED):
        fields["progress_percent"] = 100.0
    return fields


# --------------------------------------------------------------------------- retry


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
    """The `pending` retry of an ended run, when its task has attempts left; else None.

    The caller decides which outcomes deserve a retry: the finish path calls this for `failed` runs
    only (never for terminated or skipped ones); the scheduler also calls it for orphaned runs.
    Workflow steps are never retried one by one (their workflow is retried as a whole). Reads the
    task's current retry settings. Retries are rows, so they survive a scheduler restart; the
    dispatcher runs them when `scheduled_for` is due. `delay_seconds` overrides the task's
    `retry_interval × retry_backoff^retry_count` (e.g. 0 to retry an orphaned run at once).
    """
    if execution.trigger == TaskExecution.Trigger.WORKFLOW:
        return None
    task = (
        ScheduledTask.objects.filter(pk=execution.task_id)
        .values("max_retries", "retry_interval", "retry_backoff")
        .first()
    )
    if task is None or execution.retry_count >= task["max_retries"]:
        return None
    now = now or timezone.now()
    delay = delay_seconds
    if delay is None:
        delay = retry_delay_seconds(
            retry_interval=task["retry_interval"],
            retry_backoff=task["retry_backoff"],
            retry_count=execution.retry_count,
        )
    due = now + timedelta(seconds=delay)
    for bump in range(5):
        try:
            with transaction.atomic():
                retry = TaskExecution.objects.create(
                    task_id=execution.task_id,
                    status=Status.PENDING,
                    trigger=TaskExecution.Trigger.RETRY,
                    parent_id=execution.pk,
                    retry_count=execution.retry_count + 1,
                    scheduled_for=due + timedelta(milliseconds=bump),
                    triggered_by_id=execution.triggered_by_id,
                )
        except IntegrityError:  # another run is due at that very instant (unique task + scheduled_for)
            continue
        logger.info(
            "execution #%s failed: retry %s of %s is #%s, due %s",
            execution.pk,
            retry.retry_count,
            task["max_retries"],
            retry.pk,
            retry.scheduled_for.isoformat(),
        )
        return retry
    raise IntegrityError(f"no free time slot for the retry of execution #{execution.pk}")
