"""Where the scheduler's executions run: in its own thread pool, or on Celery workers.

The manager (scheduling/manager.py) decides what runs when; an ExecutionBackend runs it:

- ThreadBackend (SCHEDULER_EXECUTION_BACKEND=thread, the default): one bounded pool of
  SCHEDULER_THREAD_POOL_SIZE threads in the scheduler process. An occurrence is written as a
  claimed `running` row only when a slot is free (else `pending`), and the dispatcher claims due
  `pending` rows for the free slots only, so start_time is always when a thread took the run.
- CeleryBackend (SCHEDULER_EXECUTION_BACKEND=celery): the leader never runs work. An occurrence, or
  a due `pending` row the overlap policy lets start, is *handed over*: it stays `pending` with its
  `handover_queue` set and its id is sent to the Celery task
  `scheduler_app.run_execution` (scheduler_app/celery_tasks.py) on the task's queue
  (`config["queue"]`, else SCHEDULER_CELERY_QUEUE). A worker on any machine claims the row when it
  really starts it (pending → running, with its own host, pid and worker name) and runs the same
  executors, writing the same rows, heartbeats and progress. A queued message therefore never looks
  like a dead run to the orphan check; a handed-over run cancelled before it started gets its message
  revoked; one that no worker started within SCHEDULER_CELERY_REQUEUE_SECONDS is sent again.

Both backends keep one leader thread for the leader's own work (recording each scheduling round's
occurrences, skipped runs, sending messages), so APScheduler's thread and the main loop never wait
on the database or the broker, and that work never waits behind the runs.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections, connections
from django.utils.module_loading import import_string

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.finisher import get_finisher
from scheduler_app.runtime.monitor import get_monitor
from scheduler_app.runtime.runner import execution_execute

logger = logging.getLogger("scheduler_app.scheduler")

Status = TaskExecution.Status
# How long a claimed run keeps trying to start while the database is unreachable.
OUTAGE_PATIENCE_SECONDS = 120.0
# Name of the Celery task that runs one execution (scheduler_app/celery_tasks.py).
CELERY_TASK_NAME = "scheduler_app.run_execution"
# Queue names a task's config may choose (letters, digits, and . _ - : @).
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$")
# Runs handed over per dispatch round when the backend has no slot limit.
DISPATCH_BATCH = 200


def celery_task_id(execution_id: int) -> str:
    """The Celery task id of an execution's message (used to revoke it)."""
    return f"zq-execution-{execution_id}"


def execute_through_outages(
    execution_id: int,
    *,
    execution: TaskExecution | None = None,
    stopping: threading.Event | None = None,
    patience: float = OUTAGE_PATIENCE_SECONDS,
    may_start: Callable[[], bool] | None = None,
    wait: bool = True,
) -> TaskExecution | None:
    """runtime.runner.execution_execute, retried while the database is away.

    It raises a DatabaseError only before any work starts (failures during the work end the
    run, and the final write has its own retries), so trying again cannot run the work twice.
    `execution` (the row just claimed, task loaded) saves the first read; a retry reads it again.
    `may_start` is the runner's last check before the work begins (the leader still holds its lease).
    """
    delay = 0.5
    deadline = time.monotonic() + patience
    while True:
        try:
            return execution_execute(execution_id=execution_id, execution=execution, may_start=may_start, wait=wait)
        except DatabaseError as error:
            if time.monotonic() + delay > deadline or (stopping is not None and stopping.is_set()):
                logger.error("execution=#%s could not start (%s); the orphan check will end it", execution_id, error)
                return None
            logger.warning("execution=#%s could not start (%s); retrying in %.1f s", execution_id, error, delay)
            close_old_connections()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
            execution = None


def log_finish(execution: TaskExecution | None) -> None:
    if execution is not None:
        logger.info(
            "finish execution=#%s task=%s status=%s duration=%ss",
            execution.pk,
            execution.task_id,
            execution.status,
            execution.duration_seconds,
        )


class ExecutionBackend:
    """What the manager needs from a place that runs executions.

    `spawn` runs leader work (recording a round's occurrences, skip records, sending messages) in
    one leader thread, in order, never behind the runs. `queue(task_id)` is "" when the dispatcher
    claims rows itself, else the Celery queue to hand them over to instead. `reserve(n)` grants
    up to n run slots (the thread pool's free ones; no limit for Celery) and `release(n)` gives back
    the ones not used. `launch` starts the rows the manager claimed (slots reserved) or handed
    over (occurrences_fire, pending_start). `in_flight_ids()` are the runs this process is
    executing (never orphans). `tick(now, version)` is the leader's upkeep.
    """

    name = ""

    def __init__(self, *, pool_size: int, stopping: threading.Event | None = None) -> None:
        self.pool_size = pool_size
        self.stopping = stopping or threading.Event()
        self.leader_pool: ThreadPoolExecutor | None = None
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._last_requeue = time.monotonic()
        self.on_slot_free: Callable[[], None] | None = None  # told whenever a run slot frees up

    # ------------------------------------------------------------------ the leader thread

    def start(self) -> None:
        self.leader_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zq-leader")

    def shutdown(self) -> None:
        if self.leader_pool:
            self.leader_pool.shutdown(wait=True, cancel_futures=False)

    @property
    def inflight(self) -> int:
        """Jobs submitted (leader work and runs) and not finished."""
        return self._inflight

    def spawn(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        return self._submit_to(self.leader_pool, fn, *args, **kwargs)

    def _submit_to(self, pool: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        with self._inflight_lock:
            self._inflight += 1
        future = pool.submit(self._guarded, fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future) -> None:
        with self._inflight_lock:
            self._inflight -= 1

    @staticmethod
    def _guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        close_old_connections()
        try:
            fn(*args, **kwargs)
        except Exception:
            logger.exception("error in %s", getattr(fn, "__name__", fn))
        finally:
            close_old_connections()

    # ------------------------------------------------------------------ running executions

    def queue(self, task_id: int) -> str:
        return ""

    def capacity(self) -> int | None:
        """Runs that may start now (None: no limit here)."""
        return None

    def reserve(self, count: int) -> int:
        return count

    def release(self, count: int) -> None:
        pass

    def launch(self, executions: list[TaskExecution]) -> None:
        raise NotImplementedError

    def in_flight_ids(self) -> set[int]:
        return set(get_monitor().execution_ids)

    def tick(self, now: datetime, *, version: int | None = None) -> None:
        """Leader upkeep: hand back runs sent to Celery long ago that no worker started.

        Also done by the thread backend, for rows left handed over by an earlier Celery setup.
        """
        seconds = scheduler_settings.CELERY_REQUEUE_SECONDS
        if time.monotonic() - self._last_requeue >= max(seconds / 4, 0.5):
            self._last_requeue = time.monotonic()
            transitions.handovers_requeue(older_than=now - timedelta(seconds=seconds), now=now)


class ThreadBackend(ExecutionBackend):
    """Executions run in the scheduler process's pool of up to `pool_size` threads.

    Threads are started as runs need them (SCHEDULER_THREAD_POOL_SIZE is the ceiling, high by
    default: most runs wait on a child process or on their steps, and a burst of runs due together
    should start together). A run holds a slot from its claim to the end of its work, so a row is
    claimed (and its start_time written) only when a thread can start it at once. The run's thread
    hands the final state to the process's finisher and is free at once; it holds no database
    connection for the bookkeeping (the monitor and the finisher write it in batches), and closes any
    its work opened, so idle threads hold none. In-process actions share the interpreter and often
    a database connection each: at most SCHEDULER_ACTION_CONCURRENCY of them run at once
    (executors/common.py).
    """

    name = "thread"

    def __init__(self, *, pool_size: int, stopping: threading.Event | None = None) -> None:
        super().__init__(pool_size=pool_size, stopping=stopping)
        self.pool: ThreadPoolExecutor | None = None
        # The manager's lease check: a run claimed by a leader that lost its lease meanwhile (a long
        # freeze, say) is handed back unstarted instead of run by a node that no longer leads.
        self.may_start: Callable[[], bool] | None = None
        self._claimed: set[int] = set()
        self._busy = 0
        self._slots_lock = threading.Lock()

    def start(self) -> None:
        super().start()
        self.pool = ThreadPoolExecutor(max_workers=self.pool_size, thread_name_prefix="zq-run")

    def shutdown(self) -> None:
        super().shutdown()
        if self.pool:
            self.pool.shutdown(wait=True, cancel_futures=False)
        if not get_finisher(get_monitor()).drain(timeout=scheduler_settings.SHUTDOWN_GRACE):
            logger.error("final states of some runs could not be written before the scheduler stopped")

    def capacity(self) -> int:
        return max(0, self.pool_size - self._busy)

    def reserve(self, count: int) -> int:
        with self._slots_lock:
            granted = max(0, min(count, self.pool_size - self._busy))
            self._busy += granted
        return granted

    def release(self, count: int) -> None:
        if count <= 0:
            return
        with self._slots_lock:
            self._busy -= count
        if self.on_slot_free is not None:
            self.on_slot_free()

    def launch(self, executions: list[TaskExecution]) -> None:
        for execution in executions:
            self._claimed.add(execution.pk)
            self._submit_to(self.pool, self.execute, execution.pk, execution)

    def execute(self, execution_id: int, execution: TaskExecution | None = None) -> None:
        """Run one claimed row to its end in this pool thread, then free its slot."""
        try:
            # The final state goes to the finisher (which logs the finish line): the slot frees now.
            execute_through_outages(
                execution_id, execution=execution, stopping=self.stopping, may_start=self.may_start, wait=False
            )
        finally:
            connections.close_all()  # this thread's own, if the work opened one: idle threads hold none
            self._claimed.discard(execution_id)
            self.release(1)

    def in_flight_ids(self) -> set[int]:
        return super().in_flight_ids() | self._claimed


def load_celery_app(path: str | None = None):
    """The Celery app named by SCHEDULER_CELERY_APP ("module:attribute" or "module.attribute")."""
    path = path or scheduler_settings.CELERY_APP
    if not path:
        raise ImportError("SCHEDULER_CELERY_APP is not set")
    path = path.replace(":", ".")
    import celery  # noqa: F401  (a clear ImportError when the extra is not installed)

    return import_string(path)


class CeleryBackend(ExecutionBackend):
    """Executions run on Celery workers; the leader hands rows over and sends their ids."""

    name = "celery"
    revoke_check_seconds = 1.0
    queue_cache_seconds = 60.0

    def __init__(self, *, pool_size: int, stopping: threading.Event | None = None, app: Any = None) -> None:
        super().__init__(pool_size=pool_size, stopping=stopping)
        self.app = app if app is not None else load_celery_app()
        self._queues: dict[int, str] = {}
        self._queues_version: int | None = None
        self._queues_loaded = time.monotonic()
        self._queued: set[int] = set()  # handed over and sent: watched for a cancel to revoke
        self._queued_lock = threading.Lock()
        self._queued_loaded = False
        self._last_revoke_check = 0.0

    # ------------------------------------------------------------------ queues

    def queue(self, task_id: int) -> str:
        queue = self._queues.get(task_id)
        if queue is None:
            config = selectors.task_configs(task_ids=[task_id]).get(task_id)
            queue = self._queue_from_config(task_id, config)
            self._queues[task_id] = queue
        return queue

    @staticmethod
    def _queue_from_config(task_id: int, config: Any) -> str:
        default = scheduler_settings.CELERY_QUEUE
        chosen = config.get("queue") if isinstance(config, dict) else None
        if chosen is None or chosen == "":
            return default
        if isinstance(chosen, str) and QUEUE_PATTERN.match(chosen):
            return chosen
        logger.warning(
            "task=%s: config queue %r is not a valid queue name (letters, digits, . _ - : @; at most 100); "
            "its runs go to the default queue %r",
            task_id,
            chosen,
            default,
        )
        return default

    # ------------------------------------------------------------------ sending

    def launch(self, executions: list[TaskExecution]) -> None:
        # Their rows are committed (the manager writes in autocommit), so a worker can read them.
        for execution in executions:
            self.spawn(self.send, execution.pk, queue=execution.handover_queue)

    def send(self, execution_id: int, *, queue: str = "") -> bool:
        queue = queue or scheduler_settings.CELERY_QUEUE
        with self._queued_lock:
            self._queued.add(execution_id)
        try:
            self.app.send_task(CELERY_TASK_NAME, args=[execution_id], queue=queue, task_id=celery_task_id(execution_id))
        except Exception:
            # The row stays handed over; it is sent again after SCHEDULER_CELERY_REQUEUE_SECONDS.
            logger.exception("execution=#%s could not be sent to Celery queue %r", execution_id, queue)
            return False
        logger.debug("execution=#%s sent to Celery queue %r", execution_id, queue)
        return True

    # ------------------------------------------------------------------ upkeep

    def tick(self, now: datetime, *, version: int | None = None) -> None:
        clock = time.monotonic()
        if version != self._queues_version or clock - self._queues_loaded >= self.queue_cache_seconds:
            self._queues = {}  # a task's queue may have changed
            self._queues_version = version
            self._queues_loaded = clock
        if not self._queued_loaded:
            # Runs handed over by an earlier leader: watch them too.
            with self._queued_lock:
                self._queued.update(selectors.handovers_open())
            self._queued_loaded = True
        if clock - self._last_revoke_check >= self.revoke_check_seconds:
            self._last_revoke_check = clock
            self._revoke_cancelled()
        super().tick(now, version=version)

    def _revoke_cancelled(self) -> None:
        """Forget runs a worker has started; revoke the messages of runs cancelled while queued."""
        with self._queued_lock:
            watched = list(self._queued)
        if not watched:
            return
        seen: set[int] = set()
        cancelled: list[int] = []
        for start in range(0, len(watched), 500):
            chunk = watched[start : start + 500]
            for pk, status, queue in selectors.executions_handed_over_state(execution_ids=chunk):
                handed_over = bool(queue)
                if status == Status.PENDING and handed_over:
                    seen.add(pk)  # still waiting for a worker
                elif status == Status.TERMINATED and handed_over:
                    cancelled.append(pk)  # cancelled before a worker started it
        with self._queued_lock:
            self._queued &= seen | (self._queued - set(watched))
        if cancelled:
            self.spawn(self._revoke, cancelled)

    def _revoke(self, execution_ids: list[int]) -> None:
        self.app.control.revoke([celery_task_id(pk) for pk in execution_ids])
        logger.info("revoked the Celery messages of cancelled runs %s", execution_ids[:20])


def create_backend(*, pool_size: int, stopping: threading.Event | None = None) -> ExecutionBackend:
    """The backend chosen by SCHEDULER_EXECUTION_BACKEND."""
    name = scheduler_settings.EXECUTION_BACKEND
    if name == "celery":
        return CeleryBackend(pool_size=pool_size, stopping=stopping)
    if name != "thread":
        raise ValueError(f"SCHEDULER_EXECUTION_BACKEND must be 'thread' or 'celery', not {name!r}")
    return ThreadBackend(pool_size=pool_size, stopping=stopping)
