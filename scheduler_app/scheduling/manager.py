"""The scheduler process: mirrors tasks as APScheduler jobs, fires occurrences, runs queued work.

One SchedulerManager per `runscheduler` process. Its main loop (`tick`, every SCHEDULER_POLL_SECONDS)
renews the node heartbeat and the leader lease (by the database's clock, so a node whose own clock
is off can neither steal the lease nor keep it past its expiry), reconciles jobs when the schedule version changes
(and fully every SCHEDULER_RESYNC_SECONDS), writes fired jobs' next run times back, detects orphaned
runs and dispatches due `pending` executions in batches. APScheduler's thread hands each round's due
occurrences to the leader thread, which records them with one INSERT; both hand the runs to the
execution backend (scheduling/backends.py): a bounded thread pool here (default), or Celery workers
on any machine. Only the leader fires and dispatches; a standby keeps its heartbeat and waits for
the lease, and tries to take it the moment the leader's lease runs out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections
from django.db.models import DateTimeField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Now

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import ScheduledTask, SchedulerNode, SchedulerState, TaskExecution
from scheduler_app.occurrences import Blackout
from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import CLOCK_SKEW_WARNING_SECONDS, db_clock, db_now
from scheduler_app.schedules import InvalidSchedule
from scheduler_app.scheduling import dispatch, firing, recovery
from scheduler_app.scheduling.backends import DISPATCH_BATCH, ExecutionBackend, ThreadBackend, create_backend
from scheduler_app.scheduling.engine import (
    JOB_FUNC,
    GuardedBackgroundScheduler,
    OccurrenceExecutor,
    TaskJobStore,
)
from scheduler_app.scheduling.listener import ScheduleChange, ScheduleListener
from scheduler_app.scheduling.operations import OperationsWorker
from scheduler_app.triggers import build_task_trigger, timing_of

logger = logging.getLogger("scheduler_app.scheduler")

Status = TaskExecution.Status
# A standby tries to take the lease this long after the database says it runs out.
TAKEOVER_MARGIN_SECONDS = 0.05
DISPATCH_GATHER_SECONDS = 0.005
# A change takes effect from its commit, not from when this process saw it: an occurrence due in
# between still fires (late). Only for changes made while this process led, and this recent: what
# changed before (while no scheduler ran, say) counts from when the leader takes it up.
EFFECT_FROM_COMMIT_SECONDS = 10.0


@dataclass(frozen=True)
class TaskSchedule:
    """What the scheduler keeps in memory of a schedulable task (one row of one query)."""

    id: int
    job_id: str
    name: str
    cron_expression: str | None
    interval_seconds: int | None
    timezone: str
    paused: bool
    overlap_policy: str
    misfire_grace_seconds: int
    catch_up: str
    schedule_error: str
    run_at: datetime | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    calendar_id: int | None = None
    calendar_rule: str = ScheduledTask.CalendarRule.OPEN_DAYS
    calendar_n: int | None = None
    event_calendar_id: int | None = None
    calendar_revision: int | None = None
    event_calendar_revision: int | None = None
    jitter_seconds: int = 0
    paused_until: datetime | None = None
    updated_at: datetime | None = None

    FIELDS = (
        "id",
        "job_id",
        "name",
        "cron_expression",
        "interval_seconds",
        "timezone",
        "paused",
        "overlap_policy",
        "misfire_grace_seconds",
        "catch_up",
        "schedule_error",
        "run_at",
        "valid_from",
        "valid_until",
        "calendar_id",
        "calendar_rule",
        "calendar_n",
        "event_calendar_id",
        "jitter_seconds",
        "paused_until",
        "updated_at",
    )
    # The calendars' revisions, read in the same query: a change of a calendar's days changes them.
    EXPRESSIONS = {
        "calendar_revision": F("calendar__revision"),
        "event_calendar_revision": F("event_calendar__revision"),
    }

    @property
    def signature(self) -> str:
        """Changes exactly when the trigger must be rebuilt: when anything that moves a fire time
        changes (the cron or interval, the zone, the one-shot time, the validity window, the calendar
        rule, or the days of a calendar it uses)."""
        return timing_of(self).signature


def local_node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class SchedulerManager:
    def __init__(
        self,
        *,
        pool_size: int | None = None,
        poll_seconds: float | None = None,
        node_id: str | None = None,
        backend: ExecutionBackend | None = None,
        resume_paused: Callable[..., list[int]] | None = None,
    ) -> None:
        """`resume_paused(task_ids=..., now=...)` ends the timed pauses that are over and returns the
        ids it resumed (services.tasks.tasks_resume_expired, passed in by the runscheduler command:
        the scheduler layer does not import the services); without it timed pauses do not end."""
        self.pool_size = pool_size or scheduler_settings.THREAD_POOL_SIZE
        self.poll_seconds = poll_seconds or scheduler_settings.POLL_SECONDS
        self.node_id = node_id or local_node_id()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.is_leader = False
        self.stopping = threading.Event()
        self.scheduler: GuardedBackgroundScheduler | None = None
        self.store: TaskJobStore | None = None
        self.backend = backend or create_backend(pool_size=self.pool_size, stopping=self.stopping)
        self._tasks: dict[int, TaskSchedule] = {}
        self._task_rows: dict[int, ScheduledTask] = {}
        self._blackouts: dict[int, tuple[Blackout, ...]] = {}  # task id -> the windows that apply to it
        self.resume_paused = resume_paused
        self._next_pause_end: datetime | None = None  # the earliest "paused until" among the tasks
        self._resume_from: dict[str, datetime] = {}  # job id -> when its ended pause ended
        self._jobs: dict[str, str] = {}  # job id -> trigger signature
        self._paused_jobs: set[str] = set()
        self._task_locks: defaultdict[int, threading.Lock] = defaultdict(threading.Lock)
        self._fires: list[firing.Occurrence] = []  # due, not recorded yet (see _fire_queued)
        self._fires_lock = threading.Lock()
        self._fire_scheduled = False
        self._fire_failures = 0
        self._wake = threading.Event()  # a pool slot freed up, or a schedule change was notified
        self._dispatch_wanted = False  # the wake was for a free slot: dispatch before the next turn
        self._changes: list[ScheduleChange] = []  # notified by the listener, not applied yet
        self._changes_lock = threading.Lock()
        self.listener = (
            ScheduleListener(on_change=self._schedule_changed, stopping=self.stopping)
            if ScheduleListener.available()
            else None
        )
        self._backlog = False  # due runs wait for a free slot
        self.backend.on_slot_free = self._slot_freed
        if isinstance(self.backend, ThreadBackend):
            self.backend.may_start = self.holds_lease
        self._sync_lock = threading.Lock()
        self._version_seen = -1
        self._last_full_sync = 0.0
        self._next_beat = 0.0
        self._last_skew_warning = float("-inf")
        self._last_orphan_check = 0.0
        self._db_trouble_until = 0.0
        self._lease_until = 0.0
        self._started_at = db_now()
        self._leading_since: datetime | None = None
        # Notifications, their outbox and retention: the leader's, in a thread of their own.
        self.operations = OperationsWorker(node_id=self.node_id, is_leader=self.holds_lease, stopping=self.stopping)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Register this node, start APScheduler (paused until we lead) and the execution backend."""
        self.backend.start()
        self.store = TaskJobStore(on_broken_job=self._job_broken)
        self.scheduler = GuardedBackgroundScheduler(
            jobstores={"default": self.store},
            executors={"default": OccurrenceExecutor(self._on_due)},
            job_defaults={"coalesce": False, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
            # After a failed read of due jobs, look again in 1 s (APScheduler's default is 10 s).
            jobstore_retry_interval=1,
        )
        self.scheduler.may_fire = self._may_fire
        self.scheduler.start(paused=True)
        self.operations.start()
        if self.listener is not None:
            self.listener.start()
        SchedulerState.objects.get_or_create(pk=1)
        SchedulerNode.objects.update_or_create(
            node_id=self.node_id,
            defaults={
                "host": self.host,
                "pid": self.pid,
                "started_at": self._started_at,
                "last_heartbeat": db_now(),
                "stopped_at": None,
            },
        )
        logger.info(
            "scheduler node %s started (pool %s, execution backend %s)", self.node_id, self.pool_size, self.backend.name
        )
        self.tick()

    def run(self, *, max_seconds: float | None = None) -> None:
        """The supervised main loop: a failing turn is logged and retried with backoff.

        Between turns it dispatches as soon as a pool slot frees up while runs wait for one, so they
        do not wait for the next turn.
        """
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        backoff = self.poll_seconds
        next_turn = time.monotonic()
        while not self.stopping.is_set():
            clock = time.monotonic()
            if deadline is not None and clock >= deadline:
                break
            if clock >= next_turn:
                try:
                    self.tick()
                    backoff = self.poll_seconds
                except Exception:
                    logger.exception("scheduler loop turn failed; retrying in %.1f s", backoff)
                    close_old_connections()
                    # Give every worker a full orphan period to heartbeat again before judging its runs.
                    self._db_trouble_until = time.monotonic() + scheduler_settings.ORPHAN_SECONDS
                    backoff = min(backoff * 2, 1.0)
                next_turn = time.monotonic() + backoff
            elif self._wake.is_set():
                if self._dispatch_wanted:
                    # Slots free up one run at a time in a burst: gather a few before claiming again,
                    # so a dispatch claims many runs instead of one.
                    time.sleep(DISPATCH_GATHER_SECONDS)
                self._wake.clear()
                self._apply_notified_changes()
                if self._dispatch_wanted:
                    self._dispatch_wanted = False
                    if self.holds_lease():
                        try:
                            self.dispatch(now=db_now())
                        except Exception:
                            logger.exception("dispatching failed; the next turn tries again")
            self._wake.wait(max(0.0, next_turn - time.monotonic()))

    def request_stop(self) -> None:
        """Ask the main loop to end (safe in a signal handler); `stop` then winds down."""
        self.stopping.set()
        self._wake.set()

    def stop(self, reason: str = "scheduler stopped") -> None:
        """Stop firing, let running work finish within the grace, terminate the rest, hand over."""
        self.stopping.set()
        if self.scheduler and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.holds_lease():
            try:
                self._write_back()  # the next leader starts from the latest next run times
            except DatabaseError:
                logger.warning("the last next run times could not be saved; the next leader skips the repeats")
        grace = scheduler_settings.SHUTDOWN_GRACE
        inflight = self.backend.inflight
        logger.info("stopping (%s): waiting up to %.0f s for %s running executions", reason, grace, inflight)
        self._wait_idle(grace)
        if self.backend.inflight:
            self._request_terminate(reason)
            self._wait_idle(10.0)
        self._force_terminate_own(reason)
        self.operations.stop()
        if self.listener is not None:
            self.listener.join(timeout=2.0)
        self.backend.shutdown()
        close_old_connections()
        SchedulerNode.objects.filter(node_id=self.node_id).update(
            stopped_at=db_now(), is_leader=False, last_heartbeat=db_now()
        )
        if self.is_leader:
            SchedulerState.objects.filter(pk=1, leader=self.node_id).update(leader="", lease_expires_at=None)
            self.is_leader = False
        logger.info("scheduler node %s stopped", self.node_id)

    # ------------------------------------------------------------------ main loop

    def tick(self) -> None:
        close_old_connections()
        if time.monotonic() >= self._next_beat:
            self._beat()
        if not self.is_leader:
            return
        if not self.holds_lease():
            self._lose_lead()
            return
        now = db_now()
        clock = time.monotonic()
        version = SchedulerState.objects.values_list("schedule_version", flat=True).get(pk=1)
        if version != self._version_seen or clock - self._last_full_sync >= scheduler_settings.RESYNC_SECONDS:
            self.sync_jobs()
            self._version_seen = version
            self._last_full_sync = clock
        if self._next_pause_end is not None and now >= self._next_pause_end:
            self._end_timed_pauses(now)
        if clock - self._last_orphan_check >= scheduler_settings.ORPHAN_SECONDS / 3 and clock >= self._db_trouble_until:
            self._recover_orphans(now)
            self._last_orphan_check = clock
        self._write_back()
        self._schedule_fire()  # occurrences still waiting for the database
        self.backend.tick(now, version=version)
        self.dispatch(now=now)

    def _beat(self) -> None:
        """Measure this node's clock against the database's, heartbeat, and take or renew the lease.

        The lease is compared and extended by the database's own clock (one conditional UPDATE), so
        a node whose clock runs ahead cannot see a live lease as expired, and one whose clock runs
        behind cannot extend its lease past what the others see. This node counts its own lease
        from before it asked, by its monotonic clock, so it always believes it expires first.
        """
        offset = db_clock.sync()
        self._warn_if_skewed(offset)
        lease_seconds = scheduler_settings.LEASE_SECONDS
        asked = time.monotonic()
        expires = ExpressionWrapper(Now() + Value(timedelta(seconds=lease_seconds)), output_field=DateTimeField())
        won = SchedulerState.objects.filter(
            Q(leader=self.node_id) | Q(leader="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=Now()),
            pk=1,
        ).update(leader=self.node_id, lease_expires_at=expires)
        if won:
            self._lease_until = asked + lease_seconds
        if won and not self.is_leader:
            self._become_leader()
        elif not won and self.is_leader:
            self._lose_lead()
        SchedulerNode.objects.filter(node_id=self.node_id).update(
            last_heartbeat=db_now(),
            is_leader=self.is_leader,
            version_seen=max(self._version_seen, 0),
            jobs=len(self._jobs),
            clock_skew_seconds=round(-offset, 3),
        )
        self._next_beat = asked + self._beat_interval()

    def _beat_interval(self) -> float:
        """Seconds to the next beat: the leader renews three times per lease; a standby also tries
        the moment the current lease runs out, so it takes over within the lease (plus a poll)."""
        interval = min(scheduler_settings.HEARTBEAT_SECONDS, scheduler_settings.LEASE_SECONDS / 3)
        if self.is_leader:
            return interval
        expires_at = selectors.lease_expires_at()
        if expires_at is None:
            return self.poll_seconds
        remaining = (expires_at - db_now()).total_seconds() + TAKEOVER_MARGIN_SECONDS
        return min(interval, max(remaining, self.poll_seconds))

    def _warn_if_skewed(self, offset: float) -> None:
        if abs(offset) <= CLOCK_SKEW_WARNING_SECONDS or time.monotonic() - self._last_skew_warning < 60:
            return
        self._last_skew_warning = time.monotonic()
        logger.warning(
            "this node's clock is %+.1f s off the database's; leases, fire times and lateness follow the "
            "database's clock, but fix the host's time synchronisation (NTP)",
            -offset,
        )

    def holds_lease(self) -> bool:
        """Leader, and the lease it last renewed has not run out (checked before every fire and start)."""
        return self.is_leader and time.monotonic() < self._lease_until

    def _become_leader(self) -> None:
        logger.info("node %s is now the leader", self.node_id)
        self.is_leader = True
        self._leading_since = db_now()
        if time.monotonic() >= self._db_trouble_until:
            self._recover_orphans(db_now())
            self._last_orphan_check = time.monotonic()
        self._load_jobs()
        self.sync_jobs()
        self._version_seen = SchedulerState.objects.values_list("schedule_version", flat=True).get(pk=1)
        self.scheduler.resume()

    def _recover_orphans(self, now: datetime) -> None:
        local = self.backend.in_flight_ids()
        recovery.orphans_recover(node_id=self.node_id, host=self.host, now=now, local_ids=local)

    def _lose_lead(self) -> None:
        logger.warning("node %s lost the leader lease; it stops firing", self.node_id)
        self.is_leader = False
        self.scheduler.pause()
        with self._fires_lock:
            dropped, self._fires = self._fires, []
        if dropped:
            logger.warning("%s due occurrences not recorded yet are left to the new leader", len(dropped))

    # ------------------------------------------------------------------ reconciliation

    def _load_jobs(self) -> None:
        """Take over the job table: an earlier leader may have left it different from our memory."""
        with self._sync_lock:
            self.store.load()
            self._jobs, self._paused_jobs = {}, set()
            for job in self.scheduler.get_jobs():
                self._jobs[job.id] = job.kwargs.get("signature", "")
                if job.next_run_time is None:
                    self._paused_jobs.add(job.id)

    def sync_jobs(self) -> None:
        """Make the job store mirror the schedulable tasks: add, rebuild, pause, resume, remove."""
        with self._sync_lock:
            rows = self._schedulable_rows(ScheduledTask.objects.schedulable())
            tasks = {pk: self._schedule_of(row) for pk, row in rows.items()}
            self._blackouts = selectors.blackouts_by_task(selectors.blackouts_in_force(), tasks)
            # Before the jobs change, so a job that is due at once finds its task; the rows go with the
            # runs a round starts, so that starting them waits for no query.
            self._tasks, self._task_rows = tasks, rows
            self._next_pause_end = self._earliest_pause_end()
            wanted = {task.job_id: task for task in tasks.values()}
            with self.store.batched():  # new jobs' rows in a few INSERTs, not one each
                for task in wanted.values():
                    self._sync_job(task)
                for job_id in set(self._jobs) - set(wanted):
                    self._remove_job(job_id)

    def sync_tasks(self, *, task_ids: set[int] | frozenset[int]) -> None:
        """sync_jobs for these tasks only (a notified change): one query for their rows, one for the
        blackout windows. A task that is gone or no longer schedulable loses its job."""
        with self._sync_lock:
            rows = self._schedulable_rows(ScheduledTask.objects.schedulable().filter(pk__in=list(task_ids)))
            # Copies, not changes in place: the APScheduler thread reads these maps meanwhile.
            tasks, task_rows, blackouts = dict(self._tasks), dict(self._task_rows), dict(self._blackouts)
            gone = []
            for task_id in task_ids:
                before = tasks.pop(task_id, None)
                task_rows.pop(task_id, None)
                blackouts.pop(task_id, None)
                if before is not None and (task_id not in rows or rows[task_id].job_id != before.job_id):
                    gone.append(before.job_id)
            for task_id, row in rows.items():
                tasks[task_id], task_rows[task_id] = self._schedule_of(row), row
            blackouts.update(selectors.blackouts_by_task(selectors.blackouts_in_force(), rows))
            self._blackouts, self._tasks, self._task_rows = blackouts, tasks, task_rows
            self._next_pause_end = self._earliest_pause_end()
            with self.store.batched():
                for task_id in rows:
                    self._sync_job(tasks[task_id])
                for job_id in gone:
                    self._remove_job(job_id)

    @staticmethod
    def _schedulable_rows(queryset) -> dict[int, ScheduledTask]:
        return {task.pk: task for task in queryset.annotate(**TaskSchedule.EXPRESSIONS)}

    @staticmethod
    def _schedule_of(row: ScheduledTask) -> TaskSchedule:
        return TaskSchedule(**{name: getattr(row, name) for name in (*TaskSchedule.FIELDS, *TaskSchedule.EXPRESSIONS)})

    def _earliest_pause_end(self) -> datetime | None:
        ends = (task.paused_until for task in self._tasks.values() if task.paused and task.paused_until)
        return min(ends, default=None)

    def _schedule_changed(self, change: ScheduleChange) -> None:
        """The listener's callback (its thread): queue the change and wake the main loop."""
        with self._changes_lock:
            self._changes.append(change)
        self._wake.set()

    def _apply_notified_changes(self) -> None:
        """Apply the notified changes that follow the version this process has seen, task by task;
        anything else (an unknown version, a gap, "any task") is left to the next turn's poll, whose
        full reconciliation covers it."""
        with self._changes_lock:
            changes, self._changes = self._changes, []
        if not changes or not self.holds_lease():
            return
        task_ids: set[int] = set()
        version = self._version_seen
        for change in sorted(changes, key=lambda change: change.version or 0):
            if change.version is not None and change.version <= version:
                continue  # a full reconciliation saw it already
            if change.version != version + 1 or change.task_ids is None:
                self._version_seen = -1  # the next turn reconciles everything
                return
            task_ids |= change.task_ids
            version = change.version
        if not task_ids:
            return
        try:
            self.sync_tasks(task_ids=task_ids)
        except Exception:
            logger.exception("applying a notified schedule change failed; the next turn reconciles")
            self._version_seen = -1
            return
        self._version_seen = version
        logger.info("schedule version %s (notified) applied to tasks %s", version, sorted(task_ids)[:20])

    def _effective_since(self, task: TaskSchedule, now: datetime) -> datetime:
        """From when a task's new or changed schedule counts: its commit, if that was a moment ago."""
        changed, leading = task.updated_at, self._leading_since
        recent = now - timedelta(seconds=EFFECT_FROM_COMMIT_SECONDS)
        if changed is not None and leading is not None and max(leading, recent) <= changed <= now:
            return changed
        return now

    def _sync_job(self, task: TaskSchedule) -> None:
        signature, wanted = self._jobs.get(task.job_id), task.signature  # computed once: a first start asks 10,000
        if signature != wanted:
            since = self._effective_since(task, db_now())
            try:
                trigger = build_task_trigger(timing_of(task), start_date=since)
                first = self._first_fire_time(task, trigger, since)
            except InvalidSchedule as error:
                self._report_schedule_error(task, str(error))
                self._remove_job(task.job_id)
                return
            self.scheduler.add_job(
                JOB_FUNC,
                trigger=trigger,
                id=task.job_id,
                name=task.name,
                kwargs={"task_id": task.id, "signature": wanted},
                replace_existing=True,
                next_run_time=first,
            )
            action = "added" if signature is None else "rescheduled"
            logger.info("job %s task=%s %r %s: %s", task.job_id, task.id, task.name, action, trigger)
            self._jobs[task.job_id] = wanted
            self._paused_jobs.discard(task.job_id)
        if task.schedule_error:
            self._report_schedule_error(task, "")
        if task.paused and task.job_id not in self._paused_jobs:
            self.scheduler.pause_job(task.job_id)
            self._paused_jobs.add(task.job_id)
            logger.info("job %s task=%s paused", task.job_id, task.id)
        elif not task.paused and task.job_id in self._paused_jobs:
            job = self.scheduler.get_job(task.job_id)
            # A timed pause resumes from when it ended: an occurrence due at that instant runs.
            start = self._resume_from.pop(task.job_id, None) or db_now()
            self.scheduler.modify_job(task.job_id, next_run_time=self._first_fire_time(task, job.trigger, start))
            self._paused_jobs.discard(task.job_id)
            logger.info("job %s task=%s resumed", task.job_id, task.id)

    @staticmethod
    def _first_fire_time(task: TaskSchedule, trigger: Any, start: datetime) -> datetime | None:
        """The first fire time at or after `start`; none for a one-shot task whose run is recorded (its
        trigger answers its time whenever asked anew, so that a run missed while down is caught up)."""
        if task.run_at is not None and selectors.occurrence_recorded(task_id=task.id, occurrence_at=task.run_at):
            return None
        return trigger.get_next_fire_time(None, start)

    def _end_timed_pauses(self, now: datetime) -> None:
        """Resume the tasks whose "paused until" has come: through the services (the row, the version
        bump), then their jobs at once, from the instant each pause ended."""
        ended = [
            task
            for task in self._tasks.values()
            if task.paused and task.paused_until is not None and task.paused_until <= now
        ]
        if self.resume_paused is None:
            logger.warning("timed pauses cannot end: this scheduler was started without resume_paused")
            self._next_pause_end = None
            return
        resumed = set(self.resume_paused(task_ids=[task.id for task in ended], now=now)) if ended else set()
        with self._sync_lock:
            for task in ended:
                if task.id not in resumed:
                    continue  # paused again, or resumed by hand, meanwhile: the version bump tells
                current = replace(task, paused=False, paused_until=None)
                self._tasks[task.id] = current
                self._resume_from[task.job_id] = task.paused_until
                logger.info("task=%s %r: paused until %s, resumed", task.id, task.name, task.paused_until.isoformat())
                if task.job_id in self._jobs:
                    self._sync_job(current)
            self._next_pause_end = self._earliest_pause_end()

    def _remove_job(self, job_id: str) -> None:
        if job_id in self._jobs:
            self.scheduler.remove_job(job_id)
            self._jobs.pop(job_id)
            self._paused_jobs.discard(job_id)
            logger.info("job %s removed", job_id)

    def _report_schedule_error(self, task: TaskSchedule, message: str) -> None:
        if message:
            logger.error("task=%s %r has no working trigger: %s", task.id, task.name, message)
        ScheduledTask.objects.filter(pk=task.id).update(schedule_error=message)

    def _job_broken(self, job_id: str, error: Exception) -> None:
        # Forget the parked job: the next reconciliation rebuilds it from its task row.
        self._jobs.pop(job_id, None)
        self._version_seen = -1

    # ------------------------------------------------------------------ firing

    def _write_back(self) -> None:
        """Write fired jobs' next run times to the table, except for jobs whose occurrences are not
        recorded yet: a leader that takes over then starts from them instead of losing them."""
        with self.scheduler.round_lock:  # a round in progress has handed all its occurrences over
            with self._fires_lock:
                unrecorded = {fire.task_id for fire in self._fires}
            hold = {self._tasks[task_id].job_id for task_id in unrecorded if task_id in self._tasks}
            jobs = self.store.take_unflushed(hold=hold)
        self.store.write_back(jobs)

    def _on_due(self, due: list[tuple[Any, list[datetime]]]) -> None:
        """Called in APScheduler's thread once per round with every due job; must return quickly."""
        fires = []
        for job, run_times in due:
            task = self._tasks.get(job.kwargs.get("task_id"))
            if task is None:
                continue
            fires.extend(
                firing.Occurrence(
                    task_id=task.id,
                    task_name=task.name,
                    overlap_policy=task.overlap_policy,
                    scheduled_for=run_time,
                    misfire_grace_seconds=task.misfire_grace_seconds,
                    catch_up=task.catch_up,
                    jitter_seconds=task.jitter_seconds,
                    blackouts=self._blackouts.get(task.id, ()),
                    valid_until=task.valid_until,
                )
                for run_time in run_times
            )
        with self._fires_lock:
            self._fires.extend(fires)
        self._schedule_fire()

    def _may_fire(self) -> bool:
        # APScheduler skips its rounds otherwise, so the due run times stay due (not lost) until the
        # lease is renewed, e.g. after a database outage; they are then planned as a catch-up.
        return self.holds_lease() and not self.stopping.is_set()

    def _schedule_fire(self) -> None:
        """Have the leader thread record the queued occurrences (once, however many rounds queued)."""
        with self._fires_lock:
            if self._fire_scheduled or not self._fires:
                return
            self._fire_scheduled = True
        self.backend.spawn(self._fire_queued)

    def _fire_queued(self) -> None:
        """Record every occurrence queued so far (leader thread). While the database is unreachable
        they stay queued and are tried again every turn; piled-up ones are planned as a catch-up."""
        with self._fires_lock:
            self._fire_scheduled = False
            fires, self._fires = self._fires, []
        if not fires or self.stopping.is_set():
            with self._fires_lock:
                self._fires[:0] = fires  # left to the next leader: their jobs' write-back is held
            return
        if not self.holds_lease():
            with self._fires_lock:
                self._fires[:0] = fires  # the next turn renews the lease or drops them with the lead
            return
        try:
            self._fire(fires)
        except DatabaseError as error:
            with self._fires_lock:
                self._fires[:0] = fires
            self._fire_failures += 1
            if self._fire_failures in (1, 10) or self._fire_failures % 100 == 0:
                logger.error("could not record %s due occurrences (%s); trying again", len(fires), error)
            close_old_connections()
        else:
            if self._fire_failures:
                logger.info("recorded the %s occurrences that were waiting for the database", len(fires))
            self._fire_failures = 0

    def _fire(self, fires: list[firing.Occurrence]) -> None:
        """Record occurrences in one INSERT and start the claimed ones (leader thread)."""
        fires = [replace(fire, queue=self.backend.queue(fire.task_id)) for fire in fires]
        with ExitStack() as locks:
            for task_id in sorted({fire.task_id for fire in fires}):
                locks.enter_context(self._task_locks[task_id])
            started = self._with_slots(
                len({fire.task_id for fire in fires}),
                lambda slots: firing.occurrences_fire(
                    occurrences=fires,
                    worker=self.node_id,
                    host=self.host,
                    pid=self.pid,
                    slots=slots,
                    tasks=self._task_rows,
                ),
            )
        if started.short_of_slots:
            self._backlog = True
        self.backend.launch(started.rows)
        firing.occurrences_settle(started=started)

    def _with_slots(self, wanted: int, start: Callable[[int], firing.Started]) -> firing.Started:
        """Reserve up to `wanted` run slots for `start` and give back the ones it did not use."""
        slots = self.backend.reserve(wanted)
        started = firing.Started()
        try:
            started = start(slots)
        finally:
            self.backend.release(slots - sum(1 for row in started.rows if row.status == Status.RUNNING))
        return started

    def _slot_freed(self) -> None:
        # Runs wait for a slot: dispatch now rather than at the next turn.
        if self._backlog:
            self._dispatch_wanted = True
            self._wake.set()

    # ------------------------------------------------------------------ dispatching queued runs

    def dispatch(self, *, now: datetime) -> int:
        """Start due pending executions (run now, retries, queued overlaps) in free pool slots, or
        hand them over to Celery workers (no slot limit there); a constant number of queries."""
        free = self.backend.capacity()
        if free is None:
            free = DISPATCH_BATCH
        if free <= 0 or self.stopping.is_set():
            return 0
        rows = selectors.pending_runs_due(now=now, limit=max(free * 4, 20))
        if not rows:
            self._backlog = False
            return 0
        task_ids = sorted({row["task_id"] for row in rows})
        queues = {task_id: self.backend.queue(task_id) for task_id in task_ids}
        with ExitStack() as locks:
            for task_id in task_ids:
                locks.enter_context(self._task_locks[task_id])
            started = self._with_slots(
                min(free, len(rows)),
                lambda slots: dispatch.pending_start(
                    rows=rows, worker=self.node_id, host=self.host, pid=self.pid, slots=slots, queues=queues
                ),
            )
        self._backlog = started.short_of_slots > 0
        self.backend.launch(started.rows)
        return len(started.rows)

    # ------------------------------------------------------------------ shutdown helpers

    def _wait_idle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.backend.inflight and time.monotonic() < deadline:
            time.sleep(0.1)

    def _request_terminate(self, reason: str) -> None:
        own = [execution.pk for execution in selectors.started_runs_of_worker(worker=self.node_id)]
        count = transitions.executions_request_terminate(execution_ids=own, reason=f"{reason} before the run finished")
        logger.info("%s: asked %s running executions to terminate", reason, count)

    def _force_terminate_own(self, reason: str) -> None:
        for execution in selectors.started_runs_of_worker(worker=self.node_id):
            transitions.execution_orphan(execution=execution, reason=f"{reason} before the run finished")
