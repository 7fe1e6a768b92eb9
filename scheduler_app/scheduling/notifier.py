"""Detecting what operators must hear about, from stored facts, in the leader (scheduling/operations.py).

Nothing in the lifecycle calls in here: the runs' rows say everything, whoever wrote them (this
process's threads, a standby that led before, Celery workers on other machines). Each pass:

- **Finished runs**, read once each in (end_time, id) order past a watermark stored in
  OperationsState, and only once they have settled (FEED_SETTLE_SECONDS: the retry row of an
  orphaned run is written just after it ends). They feed the metric counters (runs by task and
  status, lateness and duration histograms) and three events, in the same transaction as the
  watermark, so a change of leader neither loses nor repeats one:
  - `failed`: a run that failed (failed, completed with failed steps, or terminated without anyone
    asking: its worker was lost) and has no retry, i.e. after its last retry. Workflow steps are
    their workflow's business.
  - `recovered`: the first success of a task with an open `failed` event; it closes the failure.
  - `skipped`: occurrences recorded `skipped` (overlap, misfire, downtime), one event per task and
    pass with the count.
- **Stuck runs**: a started run older than SCHEDULER_NOTIFY_STUCK_FACTOR × its task's p95 duration
  of the last 20 successes (at least SCHEDULER_NOTIFY_STUCK_MIN_SECONDS, and only with 5 of them),
  or a running run that reports progress, still has a heartbeat, and whose progress has not moved
  for SCHEDULER_NOTIFY_STALL_SECONDS (watched in memory: a new leader starts watching afresh).
- **Hand-overs no worker picked up**: runs handed to a Celery queue, still not started
  SCHEDULER_NOTIFY_HANDOVER_SECONDS after they were due; one event per task and episode (its
  oldest waiting run).
- **The scheduler is back**: an open `no_scheduler` event (recorded by `check_scheduler`, since a
  dead scheduler reports nothing) is closed with a `recovered` event.
- **Lease changes** are counted when a new leader's worker first runs.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import NotificationEvent, OperationsState, TaskExecution
from scheduler_app.ops import counters
from scheduler_app.ops.events import EventDraft, events_record, events_resolve

logger = logging.getLogger("scheduler_app.notifications")

Status = TaskExecution.Status
Trigger = TaskExecution.Trigger
Kind = NotificationEvent.Kind

FEED_SETTLE_SECONDS = 2.0
FEED_BATCH = 2000
FEED_BATCHES_PER_PASS = 5
P95_SAMPLE = 20
P95_MIN_SAMPLE = 5
P95_REFRESH_SECONDS = 300.0
STATE_PK = 1
REPORTED_MEMORY = 10_000


@dataclass
class Closed:
    """Failures a batch's successes closed: stored events (ids) and events of the same batch (keys)."""

    event_ids: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def _is_failure(row: dict[str, Any]) -> bool:
    if row["status"] in (Status.FAILED, Status.COMPLETED):
        return True
    # Terminated without a request (user, replace, shutdown): the run was lost, as a crash is.
    return row["status"] == Status.TERMINATED and not row["terminate_requested"]


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


class Notifier:
    """The leader's detectors; keeps in memory only what a new leader may safely rebuild."""

    def __init__(self, *, node_id: str) -> None:
        self.node_id = node_id
        self._progress: dict[int, tuple[tuple[Any, ...], datetime]] = {}
        self._p95: dict[int, tuple[float | None, float]] = {}
        self._reported: set[str] = set()
        self._lease_counted = False

    def run_pass(self, *, now: datetime) -> int:
        """One pass of every detector; returns the events recorded."""
        if not self._lease_counted:
            self._count_lease_change(now=now)
            self._lease_counted = True
        recorded = 0
        for _ in range(FEED_BATCHES_PER_PASS):
            new, full = self.read_finished(now=now)
            recorded += new
            if not full:
                break
        recorded += self.detect_stuck(now=now)
        recorded += self.detect_unclaimed_handovers(now=now)
        recorded += self.detect_scheduler_back(now=now)
        return recorded

    # ------------------------------------------------------------------ finished runs

    def read_finished(self, *, now: datetime) -> tuple[int, bool]:
        """Read the next batch of finished runs past the watermark; returns (events, batch was full)."""
        state, _created = OperationsState.objects.get_or_create(pk=STATE_PK)
        until = now - timedelta(seconds=FEED_SETTLE_SECONDS)
        if state.feed_end_time is not None and not selectors.finished_runs_after(
            end_time=state.feed_end_time, execution_id=state.feed_execution_id, until=until, limit=1
        ):
            return 0, False  # nothing new: no transaction (on SQLite it would take the write lock)
        with transaction.atomic():
            state = OperationsState.objects.select_for_update().get(pk=STATE_PK)
            if state.feed_end_time is None:
                # The first leader of this version starts at the present: history is not replayed.
                state.feed_end_time, state.feed_execution_id, state.updated_at = until, 0, now
                state.save(update_fields=["feed_end_time", "feed_execution_id", "updated_at"])
                return 0, False
            rows = selectors.finished_runs_after(
                end_time=state.feed_end_time, execution_id=state.feed_execution_id, until=until, limit=FEED_BATCH
            )
            if not rows:
                return 0, False
            counters.counters_add(increments=self._tally(rows))
            drafts, closed = self._finished_events(rows)
            recorded = events_record(drafts=drafts, now=now)
            events_resolve(event_ids=closed.event_ids, keys=closed.keys, now=now)
            last = rows[-1]
            state.feed_end_time, state.feed_execution_id, state.updated_at = last["end_time"], last["id"], now
            state.save(update_fields=["feed_end_time", "feed_execution_id", "updated_at"])
        return len(recorded), len(rows) == FEED_BATCH

    @staticmethod
    def _tally(rows: list[dict[str, Any]]) -> dict[counters.CounterKey, float]:
        add: dict[counters.CounterKey, float] = {}

        def bump(key: counters.CounterKey, amount: float = 1.0) -> None:
            add[key] = add.get(key, 0.0) + amount

        for row in rows:
            bump((counters.RUNS, row["task_id"], row["status"]))
            duration = row["duration_seconds"]
            if duration is not None and row["status"] != Status.SKIPPED:
                bump((counters.DURATION_BUCKET, 0, counters.bucket_label(duration, counters.DURATION_BUCKETS)))
                bump((counters.DURATION_SUM, 0, ""), duration)
            late = _seconds(row["scheduled_for"], row["start_time"]) if row["trigger"] == Trigger.SCHEDULE else None
            if late is not None:
                bump((counters.LATENESS_BUCKET, 0, counters.bucket_label(late, counters.LATENESS_BUCKETS)))
                bump((counters.LATENESS_SUM, 0, ""), late)
        return add

    def _finished_events(self, rows: list[dict[str, Any]]) -> tuple[list[EventDraft], Closed]:
        """The failed, recovered and skipped events of a batch, and the failures its successes close."""
        own = [row for row in rows if row["trigger"] != Trigger.WORKFLOW]
        failure_ids = {row["id"] for row in own if _is_failure(row)}
        final_failures = failure_ids - selectors.retried_execution_ids(execution_ids=failure_ids)
        names = selectors.task_names(task_ids={row["task_id"] for row in own})
        # task → the open failures a success of it closes: events stored, or drafts of this batch (keys).
        open_events: dict[int, list[int]] = {}
        for event in selectors.open_notification_events(kind=Kind.FAILED):
            open_events.setdefault(event.task_id, []).append(event.pk)
        open_keys: dict[int, list[str]] = {}
        drafts: list[EventDraft] = []
        closed = Closed()
        skipped: dict[int, list[dict[str, Any]]] = {}
        for row in own:
            task_id = row["task_id"]
            name = names.get(task_id, f"#{task_id}")
            if row["id"] in final_failures:
                draft = self._failed_draft(row, name)
                drafts.append(draft)
                open_keys.setdefault(task_id, []).append(draft.key)
            elif row["status"] == Status.SUCCESS and (open_events.get(task_id) or open_keys.get(task_id)):
                closed.event_ids += open_events.pop(task_id, [])
                closed.keys += open_keys.pop(task_id, [])
                drafts.append(
                    EventDraft(
                        kind=Kind.RECOVERED,
                        key=f"recovered:{row['id']}",
                        summary=f'Task "{name}" succeeded again after failing (run #{row["id"]})',
                        task_id=task_id,
                        execution_id=row["id"],
                        details={"status": row["status"], "ended_at": row["end_time"].isoformat()},
                    )
                )
            elif row["status"] == Status.SKIPPED and row["trigger"] == Trigger.SCHEDULE:
                skipped.setdefault(task_id, []).append(row)
        drafts += [
            self._skipped_draft(task_rows, names.get(task_id, f"#{task_id}")) for task_id, task_rows in skipped.items()
        ]
        return drafts, closed

    @staticmethod
    def _failed_draft(row: dict[str, Any], name: str) -> EventDraft:
        error = (row["error"] or "").strip()
        attempts = row["retry_count"] + 1
        summary = f'Task "{name}" {row["status"]} (run #{row["id"]}, attempt {attempts})'
        if error:
            summary += f": {error[:300]}"
        return EventDraft(
            kind=Kind.FAILED,
            key=f"failed:{row['id']}",
            summary=summary,
            task_id=row["task_id"],
            execution_id=row["id"],
            details={
                "status": row["status"],
                "attempt": attempts,
                "error": error,
                "scheduled_for": row["scheduled_for"].isoformat() if row["scheduled_for"] else None,
                "ended_at": row["end_time"].isoformat(),
            },
        )

    @staticmethod
    def _skipped_draft(rows: list[dict[str, Any]], name: str) -> EventDraft:
        first, last = rows[0], rows[-1]
        reasons = list(dict.fromkeys((row["error"] or "").strip() for row in rows))[:3]
        summary = f'Task "{name}": {len(rows)} occurrence{"s" if len(rows) > 1 else ""} skipped'
        if reasons and reasons[0]:
            summary += f" ({reasons[0][:200]})"
        return EventDraft(
            kind=Kind.SKIPPED,
            key=f"skipped:{first['id']}",
            summary=summary,
            task_id=first["task_id"],
            execution_id=last["id"],
            count=len(rows),
            details={
                "first_scheduled_for": first["scheduled_for"].isoformat() if first["scheduled_for"] else None,
                "last_scheduled_for": last["scheduled_for"].isoformat() if last["scheduled_for"] else None,
                "reasons": reasons,
            },
        )

    # ------------------------------------------------------------------ stuck runs

    def detect_stuck(self, *, now: datetime) -> int:
        runs = selectors.started_runs_progress()
        alive = {run["id"] for run in runs}
        self._progress = {pk: seen for pk, seen in self._progress.items() if pk in alive}
        drafts = []
        for run in runs:
            drafts += self._stuck_drafts(run, now=now)
        drafts = [draft for draft in drafts if draft.key not in self._reported]
        if not drafts:
            return 0
        names = selectors.task_names(task_ids={draft.task_id for draft in drafts})
        drafts = [
            EventDraft(**{**draft.__dict__, "summary": draft.summary.replace("{name}", names.get(draft.task_id, "?"))})
            for draft in drafts
        ]
        recorded = events_record(drafts=drafts, now=now)
        self._remember(drafts)
        return len(recorded)

    def _remember(self, drafts: list[EventDraft]) -> None:
        """Keys reported by this leader, so a condition that lasts is not looked up every turn; the
        events' unique key is the rule, this only saves queries (hence the cap)."""
        if len(self._reported) > REPORTED_MEMORY:
            self._reported.clear()
        self._reported.update(draft.key for draft in drafts)

    def _stuck_drafts(self, run: dict[str, Any], *, now: datetime) -> Iterable[EventDraft]:
        elapsed = _seconds(run["start_time"], now)
        if elapsed is None:
            return []
        drafts = []
        p95 = self._task_p95(run["task_id"])
        factor = scheduler_settings.NOTIFY_STUCK_FACTOR
        if p95 is not None:
            limit = max(scheduler_settings.NOTIFY_STUCK_MIN_SECONDS, factor * p95)
            if elapsed > limit:
                drafts.append(
                    EventDraft(
                        kind=Kind.STUCK,
                        key=f"stuck:{run['id']}",
                        summary=(
                            f'Task "{{name}}": run #{run["id"]} has run {elapsed:.0f} s, more than {factor:g} × its '
                            f"recent p95 of {p95:.1f} s"
                        ),
                        task_id=run["task_id"],
                        execution_id=run["id"],
                        details={"reason": "slow", "elapsed_seconds": round(elapsed, 1), "p95_seconds": round(p95, 3)},
                    )
                )
        reports = run["total_items"] or run["processed_items"] or run["progress_percent"]
        if run["status"] == Status.RUNNING and reports:
            signature = (run["progress_percent"], run["processed_items"], run["total_items"], run["current_item"])
            seen = self._progress.get(run["id"])
            if seen is None or seen[0] != signature:
                self._progress[run["id"]] = (signature, now)
                return drafts
            still = (now - seen[1]).total_seconds()
            beating = run["heartbeat_at"] is not None and (now - run["heartbeat_at"]).total_seconds() < (
                scheduler_settings.ORPHAN_SECONDS
            )
            if beating and still > scheduler_settings.NOTIFY_STALL_SECONDS:
                drafts.append(
                    EventDraft(
                        kind=Kind.STUCK,
                        key=f"stalled:{run['id']}",
                        summary=(
                            f'Task "{{name}}": run #{run["id"]} is alive but its progress has not moved for '
                            f"{still:.0f} s ({run['progress_percent']:.0f} %, {run['current_item'] or '-'})"
                        ),
                        task_id=run["task_id"],
                        execution_id=run["id"],
                        details={"reason": "no progress", "still_seconds": round(still, 1)},
                    )
                )
        return drafts

    def _task_p95(self, task_id: int) -> float | None:
        cached = self._p95.get(task_id)
        if cached is not None and time.monotonic() - cached[1] < P95_REFRESH_SECONDS:
            return cached[0]
        durations = sorted(selectors.recent_success_durations(task_id=task_id, limit=P95_SAMPLE))
        p95 = durations[math.ceil(0.95 * len(durations)) - 1] if len(durations) >= P95_MIN_SAMPLE else None
        self._p95[task_id] = (p95, time.monotonic())
        return p95

    # ------------------------------------------------------------------ Celery hand-overs

    def detect_unclaimed_handovers(self, *, now: datetime) -> int:
        wait = scheduler_settings.NOTIFY_HANDOVER_SECONDS
        rows = selectors.unclaimed_handovers(due_before=now - timedelta(seconds=wait))
        by_task: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            by_task.setdefault(row["task_id"], []).append(row)
        drafts = []
        names = selectors.task_names(task_ids=set(by_task)) if by_task else {}
        for task_id, waiting in by_task.items():
            oldest = waiting[0]
            key = f"handover:{oldest['id']}"
            if key in self._reported:
                continue
            queues = sorted({row["handover_queue"] for row in waiting})
            late = (now - oldest["scheduled_for"]).total_seconds()
            drafts.append(
                EventDraft(
                    kind=Kind.HANDOVER_STUCK,
                    key=key,
                    summary=(
                        f'Task "{names.get(task_id, task_id)}": {len(waiting)} run(s) handed over to Celery queue '
                        f"{', '.join(queues)} not started by any worker {late:.0f} s after they were due "
                        "(does a worker consume that queue?)"
                    ),
                    task_id=task_id,
                    execution_id=oldest["id"],
                    count=len(waiting),
                    details={
                        "queues": queues,
                        "waiting_seconds": round(late, 1),
                        "execution_ids": [r["id"] for r in waiting][:50],
                    },
                )
            )
        recorded = events_record(drafts=drafts, now=now)
        self._remember(drafts)
        return len(recorded)

    # ------------------------------------------------------------------ the scheduler itself

    def detect_scheduler_back(self, *, now: datetime) -> int:
        outages = selectors.open_notification_events(kind=Kind.NO_SCHEDULER)
        if not outages:
            return 0
        drafts = [
            EventDraft(
                kind=Kind.RECOVERED,
                key=f"scheduler-back:{outage.pk}",
                summary=f"A scheduler is alive again: {self.node_id} leads",
                details={"outage_event": outage.pk, "outage_detected_at": outage.detected_at.isoformat()},
            )
            for outage in outages
        ]
        recorded = events_record(drafts=drafts, now=now)
        events_resolve(event_ids=[outage.pk for outage in outages], now=now)
        return len(recorded)

    def _count_lease_change(self, *, now: datetime) -> None:
        OperationsState.objects.get_or_create(pk=STATE_PK)
        changed = (
            OperationsState.objects.filter(pk=STATE_PK)
            .exclude(leader_seen=self.node_id)
            .update(leader_seen=self.node_id, updated_at=now)
        )
        if changed:
            counters.counters_add(increments={(counters.LEASE_CHANGES, 0, ""): 1})
