"""Retention: delete old runs in small batches, keeping what operators and the lifecycle still need.

Rules (a task's `retention_days` / `retention_max_runs` override SCHEDULER_RETENTION_DAYS /
SCHEDULER_RETENTION_PER_TASK; 0 turns a rule off):
- **age**: a run that ended more than the task's days ago is deleted;
- **count**: beyond the task's newest N runs, older runs are deleted;
- always kept: active runs (pending, running, paused); each task's last success and last failure
  (so its schedule status and "what went wrong last" survive); the parent of an active run (a
  resume reads its checkpoint, a retried workflow reuses its succeeded steps); a workflow run
  with an active step;
- workflow steps go with their workflow run: they are deleted when it is, never on their own
  (a step whose workflow run is gone counts as a run of its own);
- a retry's parent is not kept for the retry's sake: each attempt carries its own error and
  retry_count, and the kept row simply loses its parent link.

The pass walks the primary key in ranges of SCHEDULER_RETENTION_BATCH_SIZE ids (old runs first,
neighbouring pages together) and deletes what the rules let go by primary key through
runtime.transitions.executions_delete, so no statement holds its locks for long; a task's count
boundary and its last success and failure are one index read each per pass. Notification
events older than SCHEDULER_NOTIFY_RETENTION_DAYS go the same way. The leader runs a pass every
SCHEDULER_RETENTION_INTERVAL_SECONDS (scheduling/operations.py); `manage.py prune_executions`
runs one at once (`--dry-run` counts without deleting).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import TaskExecution
from scheduler_app.ops.events import events_prune
from scheduler_app.runtime import transitions

logger = logging.getLogger("scheduler_app.retention")

AGE, COUNT = "age", "count"
Trigger = TaskExecution.Trigger
# Each task keeps its last run of each kind: its last success and its last failure.
KIND_STATUSES = {"success": (TaskExecution.Status.SUCCESS,), "failure": selectors.FAILURE_STATUSES}
KEPT_KINDS = {status: kind for kind, statuses in KIND_STATUSES.items() for status in statuses}


@dataclass
class RetentionReport:
    """What a pass deleted (or, dry, would delete): runs per task and rule, notification events."""

    runs: Counter[tuple[int, str]] = field(default_factory=Counter)
    notification_events: int = 0
    statements: int = 0

    @property
    def total(self) -> int:
        return sum(self.runs.values())

    def per_task(self) -> dict[int, dict[str, int]]:
        found: dict[int, dict[str, int]] = {}
        for (task_id, rule), count in sorted(self.runs.items()):
            found.setdefault(task_id, {AGE: 0, COUNT: 0})[rule] = count
        return found


class RetentionPass:
    """One pass over the history in bounded steps; `step()` does one batch and says whether more remain.

    The pass walks the primary key upwards in ranges of `batch_size` ids (ids follow the order in
    which runs were written, so old runs come first and a range is a run of neighbouring pages), and
    in each range deletes the runs that one of the rules lets go. Each task's count boundary (the id
    of its newest run beyond the newest N) and its last success and failure are read once per pass:
    runs written during the pass only ever add to what may go, never take from it.
    """

    def __init__(self, *, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> None:
        self.now = now
        self.dry_run = dry_run
        self.batch_size = max(1, batch_size or scheduler_settings.RETENTION_BATCH_SIZE)
        self.report = RetentionReport()
        self.default_days = scheduler_settings.RETENTION_DAYS
        self.default_count = scheduler_settings.RETENTION_PER_TASK
        self.policies = selectors.retention_policies()
        self._phases = [self._walk_step, self._notifications_step]
        self._last_ids: dict[tuple[int, str], int] = {}  # (task, kind) → its newest run's id, read once
        self._beyond: dict[int, int | None] = {}  # task → its newest run beyond the count, read once
        ages = [days for days in [self.default_days, *map(self._days, self.policies)] if days > 0]
        self._shortest_days = min(ages) if ages else None
        counts = [self.default_count, *map(self._keep_count, self.policies)]
        self._any_count_rule = any(count > 0 for count in counts)
        bounds = selectors.execution_id_bounds()
        self._cursor, self._last_id = (bounds[0] - 1, bounds[1]) if bounds else (0, 0)

    # ------------------------------------------------------------------ policy

    def _days(self, task_id: int) -> int:
        days = self.policies.get(task_id, (None, None))[0]
        return self.default_days if days is None else days

    def _keep_count(self, task_id: int) -> int:
        count = self.policies.get(task_id, (None, None))[1]
        return self.default_count if count is None else count

    def _too_old(self, row: dict[str, Any]) -> bool:
        days = self._days(row["task_id"])
        return days > 0 and row["end_time"] is not None and row["end_time"] < self.now - timedelta(days=days)

    def _beyond_count(self, row: dict[str, Any]) -> bool:
        task_id = row["task_id"]
        keep = self._keep_count(task_id)
        if keep <= 0:
            return False
        if task_id not in self._beyond:
            self._beyond[task_id] = selectors.run_id_beyond_count(task_id=task_id, keep=keep)
        beyond = self._beyond[task_id]
        return beyond is not None and row["id"] <= beyond

    # ------------------------------------------------------------------ steps

    def step(self) -> bool:
        """Delete (or count) one batch; False once the pass is complete."""
        while self._phases:
            if self._phases[0]():
                return True
            self._phases.pop(0)
        return False

    def run(self) -> RetentionReport:
        while self.step():
            pass
        return self.report

    def _walk_step(self) -> bool:
        if self._cursor >= self._last_id or (self._shortest_days is None and not self._any_count_rule):
            return False
        upper = min(self._cursor + self.batch_size, self._last_id)
        rows = selectors.runs_in_id_range(after_id=self._cursor, up_to_id=upper)
        self._cursor = upper
        rules = {row["id"]: AGE if self._too_old(row) else COUNT if self._beyond_count(row) else "" for row in rows}
        self._delete([row for row in rows if rules[row["id"]]], rules=rules)
        return self._cursor < self._last_id

    def _notifications_step(self) -> bool:
        days = scheduler_settings.NOTIFY_RETENTION_DAYS
        if days <= 0:
            return False
        before = self.now - timedelta(days=days)
        if self.dry_run:
            self.report.notification_events = selectors.notification_events_count_before(before=before)
            return False
        ids = selectors.notification_events_before(before=before, limit=self.batch_size)
        if not ids:
            return False
        self.report.notification_events += events_prune(event_ids=ids)
        self.report.statements += 1
        return len(ids) == self.batch_size

    # ------------------------------------------------------------------ the rules that keep rows

    def _last_of_their_kind(self, rows: list[dict[str, Any]]) -> set[int]:
        """The rows that are their task's last success or last failure.

        Each task's last id of each state is read once per pass, one index dive each. A run that
        ends during the pass has a higher id, so the remembered one is kept one pass longer than
        needed, never deleted too early.
        """
        last = set()
        for row in rows:
            kind = KEPT_KINDS.get(row["status"])
            if kind is None:
                continue
            key = (row["task_id"], kind)
            if key not in self._last_ids:
                ids = [selectors.last_run_id(task_id=row["task_id"], status=status) for status in KIND_STATUSES[kind]]
                self._last_ids[key] = max((pk for pk in ids if pk is not None), default=0)
            if row["id"] >= self._last_ids[key]:
                last.add(row["id"])
        return last

    def _delete(self, rows: list[dict[str, Any]], *, rules: dict[int, str]) -> None:
        """Delete the candidates the keeping rules do not hold back (with their workflow steps), in
        one statement per batch; `rules` says which rule let each one go (for the report)."""
        rows = [row for row in rows if row["status"] in TaskExecution.TERMINAL_STATUSES]
        if not rows:
            return
        steps_with_parent = [row for row in rows if row["trigger"] == Trigger.WORKFLOW and row["parent_id"]]
        living_parents = selectors.existing_execution_ids(execution_ids={row["parent_id"] for row in steps_with_parent})
        rows = [row for row in rows if not (row["trigger"] == Trigger.WORKFLOW and row["parent_id"] in living_parents)]
        protected = self._last_of_their_kind(rows) | selectors.parents_of_active_runs()
        chosen = {row["id"]: row["task_id"] for row in rows if row["id"] not in protected}
        steps = selectors.workflow_steps_of(execution_ids=list(chosen))
        busy = {parent for _id, parent, status, _task in steps if status in TaskExecution.ACTIVE_STATUSES}
        victims = [(pk, task_id, rules[pk]) for pk, task_id in chosen.items() if pk not in busy]
        victims += [(pk, task_id, rules[parent]) for pk, parent, _status, task_id in steps if parent not in busy]
        self.report.runs.update((task_id, rule) for _pk, task_id, rule in victims)
        if self.dry_run:
            return
        ids = [pk for pk, _task_id, _rule in victims]
        for start in range(0, len(ids), self.batch_size):
            deleted = transitions.executions_delete(execution_ids=ids[start : start + self.batch_size])
            self.report.statements += 1
            logger.debug("retention: deleted %s runs", deleted)


def retention_run(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> RetentionReport:
    """A whole pass at once (the management command; the leader steps through one)."""
    return RetentionPass(now=now, dry_run=dry_run, batch_size=batch_size).run()
