"""ExecutionContext: what an executor sees of its run and reports through (executors.base.RunContext).

The context turns progress into row updates (percent, ETA, live result), holds the run while it is
paused and raises ExecutionStopped when termination was requested or the time limit passed. Control
flags reach it through the process's ExecutionMonitor (runtime.monitor). Every write is a
conditional UPDATE on a started status, so a terminal row is never changed, and none of them
commits or rolls back the caller's transaction (weak spot 24). Status changes (paused ↔ running)
go through runtime.transitions like every other.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, connection

from scheduler_app.exceptions import ExecutionNotStarted, ExecutionTerminated, ExecutionTimedOut
from scheduler_app.models import TaskExecution
from scheduler_app.results import trim_result
from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import db_now
from scheduler_app.runtime.identity import process_identity

if TYPE_CHECKING:
    from scheduler_app.runtime.monitor import ExecutionMonitor
    from scheduler_app.runtime.steps import WorkflowSteps

logger = logging.getLogger("scheduler_app.executions")

STARTED = TaskExecution.STARTED_STATUSES


class ExecutionContext:
    """What an executor sees of its run: config, progress reporting, control checks, checkpoints.

    One context per execution, used by the thread that runs it (the monitor thread sets its flags
    and writes progress the run left unwritten).
    """

    # Progress and output are written by the process's monitor, at most one UPDATE per run per this
    # many seconds, never by the run's own thread (unless forced): the run's thread needs no database
    # connection for its bookkeeping, and a run that ends sooner writes its progress only with its
    # final state.
    progress_interval = 0.5
    output_interval = 1.0  # at most one output_tail UPDATE per this many seconds
    pause_poll = 0.2  # how often a paused run looks at its flags

    def __init__(
        self,
        execution: TaskExecution,
        *,
        monitor: ExecutionMonitor | None = None,
        timeout: float | None = None,
        may_start: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.execution = execution
        self.execution_id: int = execution.pk
        self.task = execution.task
        # The runner has validated the config (an object) before building the context.
        config = execution.config
        self.config: dict[str, Any] = dict(config) if isinstance(config, dict) else {}
        self.worker = execution.worker
        self.logger = logging.LoggerAdapter(logger, {"execution_id": execution.pk})
        self.monitor = monitor
        self.timeout = timeout
        self._may_start = may_start
        self._clock = clock
        self._started = clock()
        self._started_at = execution.start_time or db_now()
        self._paused_total = 0.0
        self._pause_began: float | None = None
        # Flags, written by the monitor thread; plain attribute writes are atomic in CPython.
        self._pause_flag = bool(execution.is_paused)
        self._terminate_flag = bool(execution.terminate_requested)
        self._ended_elsewhere: str | None = None
        # Progress state and the live result written with it.
        self.processed: int | None = execution.processed_items or None
        self.total: int | None = execution.total_items or None
        self.current_item: str = execution.current_item or ""
        self.percent: float = execution.progress_percent or 0.0
        self.message: str = ""
        self.result_fields: dict[str, Any] = {}
        self.base_result: dict[str, Any] = {}
        resume_id = (execution.result or {}).get("resume_from_execution_id")
        if resume_id:
            self.base_result["resume_from_execution_id"] = resume_id
        self._resume_from_id: int | None = resume_id if isinstance(resume_id, int) else None
        self._resume_from: TaskExecution | bool | None = False  # False: not loaded yet
        self._previous_attempt: TaskExecution | bool | None = False  # False: not loaded yet
        # How a workflow starts and controls its steps; set by the runner for every run.
        self.steps: WorkflowSteps | None = None
        self._dirty = False
        self._last_write = self._started  # the claim wrote the starting state
        self._flush_lock = threading.Lock()
        self.output_tail: str | None = None
        self._output_dirty = False
        self._last_output_write = float("-inf")
        # The command's process group and its identity, written by the monitor within a poll.
        self._child: tuple[int | None, str] = (execution.child_pid, execution.child_identity)
        self._child_dirty = False

    def __repr__(self) -> str:
        return f"<ExecutionContext #{self.execution_id} task={self.task.pk}>"

    # ------------------------------------------------------------------ control

    def _apply_flags(self, *, is_paused: bool, terminate_requested: bool) -> None:
        self._pause_flag = is_paused
        self._terminate_flag = terminate_requested

    def _apply_ended(self, status: str) -> None:
        """Someone else ended the row (orphan recovery, a forced terminate): stop the work."""
        self._ended_elsewhere = status

    @property
    def pause_requested(self) -> bool:
        return self._pause_flag

    @property
    def terminate_requested(self) -> bool:
        return self._terminate_flag or self._ended_elsewhere is not None

    @property
    def timed_out(self) -> bool:
        return self.timeout is not None and self.active_seconds() > self.timeout

    @property
    def should_stop(self) -> bool:
        """True when the work must stop (terminate requested, the row ended elsewhere, or timed out)."""
        return self.terminate_requested or self.timed_out

    def active_seconds(self) -> float:
        """Seconds the run has been working, paused time not counted."""
        paused = self._paused_total
        if self._pause_began is not None:
            paused += self._clock() - self._pause_began
        return self._clock() - self._started - paused

    def limit_time(self, seconds: float | None) -> None:
        """Tighten the time limit (a command's own timeout_seconds); it never gets longer."""
        if seconds is not None and (self.timeout is None or seconds < self.timeout):
            self.timeout = seconds

    def raise_if_stopping(self) -> None:
        """Raise ExecutionTerminated / ExecutionTimedOut when the run must stop; never blocks."""
        if self._ended_elsewhere is not None:
            raise ExecutionTerminated(f"the run was ended elsewhere ({self._ended_elsewhere})")
        if self._terminate_flag:
            raise ExecutionTerminated()
        if self.timed_out:
            raise ExecutionTimedOut(self.timeout)

    def confirm_start(self) -> None:
        """Raise ExecutionNotStarted when the claimer may no longer begin the work.

        Asked at the last moment before the work begins, not only when the run got its thread: a
        process frozen (or starved) between the two would otherwise wake up after a new leader took
        over and start a run on a node that no longer leads.
        """
        if self._may_start is not None and not self._may_start():
            raise ExecutionNotStarted()

    def check(
        self,
        *,
        on_pause: Callable[[], None] | None = None,
        on_resume: Callable[[], None] | None = None,
    ) -> None:
        """Raise when the run must stop; block while it is paused (status `paused` meanwhile).

        `on_pause` / `on_resume` let an executor hold its own work too (a command's process group
        gets SIGSTOP / SIGCONT). Paused time does not count toward the time limit.
        """
        self.raise_if_stopping()
        if not self._pause_flag:
            return
        self._pause_began = self._clock()
        if on_pause is not None:
            on_pause()
        # Only once the work is held does the row say so (a command's processes are stopped by now).
        self._mark(paused=True)
        self.logger.info("execution #%s paused", self.execution_id)
        try:
            while self._pause_flag:
                if self.terminate_requested:
                    break
                time.sleep(self.pause_poll)
        finally:
            self._paused_total += self._clock() - self._pause_began
            self._pause_began = None
        self.raise_if_stopping()
        if on_resume is not None:
            on_resume()
        self._mark(paused=False)
        self.logger.info("execution #%s resumed", self.execution_id)

    def sleep(self, seconds: float, *, step: float = 0.2) -> None:
        """Wait `seconds` of working time, checking for pause and stop at least every `step` s."""
        remaining = max(0.0, seconds)
        while True:
            self.check()
            if remaining <= 0:
                return
            chunk = min(step, remaining)
            time.sleep(chunk)
            remaining -= chunk

    def _mark(self, *, paused: bool) -> None:
        """The row's status follows the run's pause (a failed write is logged; the work goes on)."""
        try:
            if paused:
                transitions.execution_mark_paused(execution_id=self.execution_id)
            else:
                transitions.execution_mark_running(execution_id=self.execution_id)
        except DatabaseError:
            if connection.in_atomic_block:
                raise
            self.logger.warning("execution #%s: could not record the pause state", self.execution_id, exc_info=True)
            connection.close()

    # ------------------------------------------------------------------ progress

    def progress(
        self,
        processed: int | None = None,
        total: int | None = None,
        current_item: str | None = None,
        message: str | None = None,
        percent: float | None = None,
        *,
        force: bool = False,
        check: bool = True,
        write: bool = True,
        **result_fields: Any,
    ) -> None:
        """Record progress; the monitor writes it within about `progress_interval` s (at once if forced).

        A run that ends sooner never writes progress at all: its final write carries it.
        Percent is `percent` when given, else processed / total. The ETA extrapolates the working
        time per processed item. Extra keyword arguments go into the live result (whitelisted keys
        survive, see results.RESULT_KEYS). With `check=True` (default) this also calls check();
        with `write=False` it only records (the next write, a checkpoint say, carries it).
        """
        if check:
            self.check()
        if processed is not None:
            self.processed = max(0, int(processed))
        if total is not None:
            self.total = max(0, int(total))
        if current_item is not None:
            self.current_item = str(current_item)[:255]
        if message is not None:
            self.message = str(message)
        if percent is not None:
            self.percent = _clamp(float(percent))
        elif self.total:
            self.percent = _clamp(round((self.processed or 0) / self.total * 100, 2))
        self.result_fields.update(result_fields)
        self._dirty = True
        if write and force:
            self.flush()

    def flush_if_due(self) -> None:
        """Write what the run recorded (the monitor calls this): the child process at once, progress
        and output once `progress_interval` / `output_interval` have passed since their last write."""
        clock = self._clock()
        due = self._dirty and clock - self._last_write >= self.progress_interval
        due_output = self._output_dirty and clock - self._last_output_write >= self.output_interval
        if due or due_output or self._child_dirty:
            self.flush()

    def checkpoint(self, last_item: str, **data: Any) -> None:
        """Record that every item up to and including `last_item` is done (written at once).

        A resumed run skips exactly these items: the checkpoint means "completed", never "in
        progress" (zquant's checkpoint skipped the item that was running: weak spot 25).
        """
        self.current_item = str(last_item)[:255]
        self.result_fields["checkpoint"] = {"last_item": str(last_item), **data}
        self._dirty = True
        self.flush()

    def flush(self) -> None:
        """Write what the run recorded and has not written yet, now (from the monitor's thread, or the
        run's own for a forced write)."""
        with self._flush_lock:
            if not (self._dirty or self._output_dirty or self._child_dirty):
                return
            self._dirty = False
            fields: dict[str, Any] = {
                "progress_percent": self.percent,
                "current_item": self.current_item,
                "estimated_end_time": self._eta(),
                "result": trim_result(self.live_result()),
            }
            if self.processed is not None:
                fields["processed_items"] = self.processed
            if self.total is not None:
                fields["total_items"] = self.total
            if self._output_dirty:
                fields["output_tail"] = self.output_tail or ""
                self._output_dirty = False
                self._last_output_write = self._clock()
            if self._child_dirty:
                fields["child_pid"], fields["child_identity"] = self._child
                self._child_dirty = False
            self._update(fields)
            self._last_write = self._clock()

    def unwritten_progress(self) -> dict[str, Any]:
        """The progress fields as the run last recorded them, for its final write."""
        fields: dict[str, Any] = {"current_item": self.current_item, "progress_percent": self.percent}
        if self.processed is not None:
            fields["processed_items"] = self.processed
        if self.total is not None:
            fields["total_items"] = self.total
        if self.output_tail is not None:
            fields["output_tail"] = self.output_tail
        return fields

    def live_result(self) -> dict[str, Any]:
        """The result as the run would store it now: progress, message and reported fields."""
        live: dict[str, Any] = {**self.base_result, "progress_percent": self.percent}
        if self.message:
            live["message"] = self.message
        if self.current_item:
            live["current_item"] = self.current_item
        if self.processed is not None:
            live["processed_items"] = self.processed
        if self.total is not None:
            live["total_items"] = self.total
        live.update(self.result_fields)
        return live

    def _eta(self) -> datetime | None:
        processed, total = self.processed or 0, self.total or 0
        if processed <= 0 or total <= processed:
            return None
        per_item = self.active_seconds() / processed
        return db_now() + timedelta(seconds=per_item * (total - processed))

    def set_output(self, tail: str, *, force: bool = False) -> None:
        """Keep the latest output tail of a command; the monitor writes it at most every
        `output_interval` s (at once if forced)."""
        if tail == self.output_tail:
            return
        self.output_tail = tail
        self._output_dirty = True
        if force:
            self.flush()

    def set_child_process(self, pgid: int | None) -> None:
        """Record the process group of a running command (None once it is gone) with the identity of
        its leader (boot id, pid, start time), so that orphan recovery kills it if this process dies,
        and never a later process that reuses the pid (transitions.execution_orphan). The monitor
        writes it within a poll; the command's supervisor ends the run itself if this process dies
        meanwhile."""
        self._child = (pgid, process_identity(pgid) if pgid else "")
        self._child_dirty = True

    def heartbeat(self) -> None:
        """Write this run's heartbeat now (the monitor also does it for every run)."""
        self._update({"heartbeat_at": db_now()})

    def _update(self, fields: dict[str, Any], *, statuses: tuple[str, ...] = STARTED) -> int:
        """One conditional UPDATE of this row; a failed write is logged, the work goes on."""
        fields = {**fields, "updated_at": db_now()}
        try:
            return TaskExecution.objects.filter(pk=self.execution_id, status__in=statuses).update(**fields)
        except DatabaseError:
            if connection.in_atomic_block:
                raise
            self.logger.warning("execution #%s: could not write %s", self.execution_id, sorted(fields), exc_info=True)
            connection.close()  # reconnect on the next query
            return 0

    # ------------------------------------------------------------------ resume

    @property
    def resume_from(self) -> TaskExecution | None:
        """The run this one resumes (trigger `resume`), or None."""
        if self._resume_from is False:
            self._resume_from = None
            if self._resume_from_id is not None:
                self._resume_from = TaskExecution.objects.filter(pk=self._resume_from_id).first()
        return self._resume_from or None

    def resume_checkpoint(self) -> dict[str, Any]:
        """The checkpoint of the resumed run: its `result.checkpoint`, else {"last_item": current_item}."""
        old = self.resume_from
        if old is None:
            return {}
        saved = (old.result or {}).get("checkpoint")
        if isinstance(saved, dict) and saved.get("last_item"):
            return dict(saved)
        return {"last_item": old.current_item} if old.current_item else {}

    @property
    def previous_attempt(self) -> TaskExecution | None:
        """The run this one takes over from: the resumed run, or the failed run this one retries.

        A workflow reuses the steps that succeeded in it instead of running them again.
        """
        if self._previous_attempt is False:
            self._previous_attempt = self.resume_from
            if self._previous_attempt is None and self.execution.trigger == TaskExecution.Trigger.RETRY:
                self._previous_attempt = TaskExecution.objects.filter(pk=self.execution.parent_id).first()
        return self._previous_attempt or None


def _clamp(value: float) -> float:
    return min(100.0, max(0.0, value))
