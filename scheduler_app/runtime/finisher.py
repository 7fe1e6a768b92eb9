"""The finisher: one thread per process that writes runs' final states in batches.

A run's thread hands its outcome over and is free the moment its work ends: it holds no database
connection for the bookkeeping, and a burst of quick runs costs one transaction per batch instead
of one per run (transitions.executions_finish). Until its final state is written a run stays
registered with the monitor, so its heartbeat goes on and orphan recovery leaves it alone. Writes
are retried through database outages, as a run's own final write would be; `drain` waits for
everything handed over (a stopping scheduler calls it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections, connection

from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.context import ExecutionContext
from scheduler_app.runtime.monitor import ExecutionMonitor
from scheduler_app.runtime.transitions import Outcome
from scheduler_app.selectors import ActiveRun

logger = logging.getLogger("scheduler_app.scheduler")


@dataclass
class Final:
    execution: TaskExecution
    outcome: Outcome
    ctx: ExecutionContext | None
    future: Future = field(default_factory=Future)


class Finisher:
    """Writes the final states handed to it, as many at a time as have arrived (up to max_batch)."""

    max_batch = 500
    # A hand-over waits this long at most for others to join its batch.
    linger_seconds = 0.002

    def __init__(self, monitor: ExecutionMonitor) -> None:
        self.monitor = monitor
        self._queue: queue.Queue[Final] = queue.Queue(maxsize=10_000)  # a full queue holds the runs back
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._writing = 0
        # Runs whose work has ended and whose final state is queued here: the table still says
        # `running` for them, but no occurrence has to wait or be skipped behind them.
        self._ended: set[int] = set()

    def submit(self, *, execution: TaskExecution, outcome: Outcome, ctx: ExecutionContext | None) -> Future:
        """Queue a run's final state; the future gives the written row (or the row as it was)."""
        final = Final(execution, outcome, ctx)
        with self._lock:
            self._writing += 1
            self._ended.add(execution.pk)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="zquant-finisher", daemon=True)
                self._thread.start()
        self._queue.put(final)
        return final.future

    @property
    def pending(self) -> int:
        """Final states handed over and not written yet."""
        return self._writing

    def ended_unwritten(self) -> frozenset[int]:
        """Ids of the runs whose work has ended and whose final state is not written yet."""
        with self._lock:
            return frozenset(self._ended)

    def drain(self, timeout: float) -> bool:
        """Wait until every final state handed over is written; False when the time ran out."""
        deadline = time.monotonic() + timeout
        while self._writing and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._writing

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.linger_seconds
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._write(batch)
            except Exception as error:  # never lose the thread: report every run of the batch
                logger.exception("finisher: could not record %s final states", len(batch))
                for final in batch:
                    self._settle(final, final.execution, error)
            finally:
                with contextlib.suppress(Exception):
                    close_old_connections()

    def _write(self, batch: list[Final]) -> None:
        finals = [(f.execution, f.outcome, f.ctx.unwritten_progress() if f.ctx else None) for f in batch]
        for attempt, delay in enumerate((*transitions.FINISH_RETRY_DELAYS, None), 1):
            try:
                answers = transitions.executions_finish(finals=finals)
                break
            except DatabaseError as error:
                if delay is None:
                    raise
                logger.error(
                    "finisher: writing %s final states failed (attempt %s: %s); trying again in %ss",
                    len(batch),
                    attempt,
                    error,
                    delay,
                )
                connection.close()  # the next query opens a new connection
                time.sleep(delay)
        for final, (written, fields) in zip(batch, answers, strict=True):
            execution = final.execution
            if not written:
                logger.info("execution #%s had already ended; its final state was left as it was", execution.pk)
            elif fields is not None:
                for name, value in fields.items():
                    setattr(execution, name, value)
            else:  # written after a terminate request or with a retry: read what was written
                execution = TaskExecution.objects.filter(pk=execution.pk).first() or execution
            logger.info(
                "finish execution=#%s task=%s status=%s duration=%ss",
                execution.pk,
                execution.task_id,
                execution.status,
                execution.duration_seconds,
            )
            self._settle(final, execution)

    def _settle(self, final: Final, execution: TaskExecution, error: BaseException | None = None) -> None:
        if final.ctx is not None:
            self.monitor.unregister(final.ctx)
        with self._lock:
            self._writing -= 1
            self._ended.discard(final.execution.pk)
        if error is None:
            final.future.set_result(execution)
        else:
            final.future.set_exception(error)


_finisher: Finisher | None = None
_finisher_lock = threading.Lock()


def get_finisher(monitor: ExecutionMonitor) -> Finisher:
    """The finisher of this process (created on first use)."""
    global _finisher
    with _finisher_lock:
        if _finisher is None:
            _finisher = Finisher(monitor)
        return _finisher


def still_active(runs_by_task: dict[int, list[ActiveRun]]) -> dict[int, list[ActiveRun]]:
    """The active runs the table reports, less those of this process that have ended and wait for
    the finisher to write them: an occurrence due meanwhile must not be skipped or queued behind a
    run that is over (with a 1 s interval, the batched final write can lag behind the next one)."""
    ended = _finisher.ended_unwritten() if _finisher is not None else frozenset()
    if not ended:
        return runs_by_task
    return {task_id: [run for run in runs if run.id not in ended] for task_id, runs in runs_by_task.items()}


def _forget_finisher_after_fork() -> None:
    # A forked child (Celery prefork) has no finisher thread and must not share the parent's queue.
    global _finisher
    _finisher = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_finisher_after_fork)
