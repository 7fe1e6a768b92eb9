"""ExecutionMonitor: one thread per process that carries control flags and heartbeats for its runs.

Every 0.5 s a single query reads the flags of all registered executions, and what they recorded and
did not write yet (progress, output, the command's process) is written, all in one transaction;
every SCHEDULER_HEARTBEAT_SECONDS a single UPDATE writes their heartbeats. The runs' own threads do
not write these, so they need no database connection for their bookkeeping. A process that runs
work keeps its view of the database's clock fresh here too, so the times its runs write
(heartbeats, ends) are the database's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

from django.db import connection, transaction

from scheduler_app.conf import scheduler_settings
from scheduler_app.models import TaskExecution
from scheduler_app.runtime.clock import db_clock, db_now
from scheduler_app.runtime.context import ExecutionContext

logger = logging.getLogger("scheduler_app.executions")

STARTED = TaskExecution.STARTED_STATUSES
# How often a process that runs work measures the database's clock again.
CLOCK_SYNC_SECONDS = 60.0


class ExecutionMonitor:
    """One daemon thread per process: reads control flags and writes heartbeats for all runs in it.

    Started lazily by the first `register`. Cheap when idle (no query without registered runs).
    A row another connection cannot see yet (uncommitted) is left alone; a row that reached a
    terminal state elsewhere stops its run.
    """

    poll_interval = 0.5

    def __init__(self) -> None:
        self._contexts: dict[int, ExecutionContext] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_heartbeat = float("-inf")
        self._errors = 0

    def register(self, ctx: ExecutionContext) -> None:
        with self._lock:
            self._contexts[ctx.execution_id] = ctx
            ctx.monitor = self
            self._ensure_started()

    def unregister(self, ctx: ExecutionContext) -> None:
        with self._lock:
            if self._contexts.get(ctx.execution_id) is ctx:
                del self._contexts[ctx.execution_id]

    @property
    def execution_ids(self) -> list[int]:
        with self._lock:
            return list(self._contexts)

    def _ensure_started(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="zquant-execution-monitor", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            if not self.execution_ids:
                continue
            try:
                self.poll_once()
                self._errors = 0
            except Exception:
                self._errors += 1
                if self._errors in (1, 10) or self._errors % 100 == 0:
                    logger.exception("execution monitor: reading flags failed (%s times in a row)", self._errors)
                with contextlib.suppress(Exception):  # closing a broken connection may fail too
                    connection.close()
        with contextlib.suppress(Exception):
            connection.close()

    def poll_once(self) -> None:
        """One flag read for every registered run, and the heartbeat when it is due."""
        with self._lock:
            contexts = dict(self._contexts)
        if not contexts:
            return
        rows = TaskExecution.objects.filter(pk__in=list(contexts)).values_list(
            "pk", "status", "is_paused", "terminate_requested"
        )
        alive: list[int] = []
        for pk, status, is_paused, terminate_requested in rows:
            ctx = contexts.get(pk)
            if ctx is None:
                continue
            if status in STARTED:
                ctx._apply_flags(is_paused=is_paused, terminate_requested=terminate_requested)
                alive.append(pk)
            elif status in TaskExecution.TERMINAL_STATUSES:
                ctx._apply_ended(status)
        now = time.monotonic()
        beat = bool(alive) and now - self._last_heartbeat >= scheduler_settings.HEARTBEAT_SECONDS
        if beat and db_clock.synced:
            db_clock.sync_if_older(CLOCK_SYNC_SECONDS)
        with transaction.atomic():  # every run's writes of this poll in one commit
            for pk in alive:
                contexts[pk].flush_if_due()  # progress, output and child a run recorded and has not written
            if beat:
                TaskExecution.objects.filter(pk__in=alive, status__in=STARTED).update(heartbeat_at=db_now())
        if beat:
            self._last_heartbeat = now


_monitor: ExecutionMonitor | None = None
_monitor_lock = threading.Lock()


def get_monitor() -> ExecutionMonitor:
    """The monitor of this process (created on first use)."""
    global _monitor
    with _monitor_lock:
        if _monitor is None:
            _monitor = ExecutionMonitor()
        return _monitor


def _forget_monitor_after_fork() -> None:
    # A forked child (Celery prefork) has no monitor thread; it must start its own.
    global _monitor
    _monitor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_monitor_after_fork)
