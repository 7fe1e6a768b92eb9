"""Firing: what becomes of the occurrences a scheduling round found due, recorded with one INSERT.

Called by the leader thread (scheduling/manager.py) under a per-task lock, so the overlap decision
and the insert that follows it are not raced within the process; across processes the unique
(task, occurrence_at) key is the last line of defence (runtime.transitions).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from scheduler_app import selectors
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.occurrences import Blackout, OccurrencePlan, covered_reason, occurrence_plan
from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import db_now
from scheduler_app.runtime.finisher import still_active
from scheduler_app.runtime.overlap import Situation, Verdict, overlap_decide
from scheduler_app.runtime.summaries import tasks_refresh_latest
from scheduler_app.runtime.transitions import PlannedOccurrence
from scheduler_app.selectors import ActiveRun

logger = logging.getLogger("scheduler_app.scheduler")

Status = TaskExecution.Status

# A long downtime of a frequent job would otherwise write one row per missed second.
MAX_SKIPPED_ROWS = 500
REPLACED = "Replaced by a newer run (overlap policy: replace)."
# Occurrences of one task closer together than this are due at the same instant (the cron engine
# spaces the runs owed to a spring DST gap a microsecond apart); anything further apart is time.
SAME_INSTANT = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Occurrence:
    """One due run time of a task, with what the scheduler knows of the task."""

    task_id: int
    task_name: str
    overlap_policy: str
    scheduled_for: datetime
    misfire_grace_seconds: int = 0
    catch_up: str = ScheduledTask.CatchUp.ONCE
    # A Celery queue: write the row `pending` for a worker of that queue instead of starting it here.
    queue: str = ""
    # What may move or skip it (occurrences.occurrence_plan): its jitter, the blackout windows that
    # apply to the task (its own and the global ones), the end of its validity window.
    jitter_seconds: int = 0
    blackouts: tuple[Blackout, ...] = ()
    valid_until: datetime | None = None


@dataclass
class Started:
    """Rows to run now (claimed, or handed over to Celery), each with its task loaded, and how many
    more could have started but for the free slots (they wait as `pending` for the dispatcher).
    `unsettled` are the tasks whose stored latest execution occurrences_settle must refresh."""

    rows: list[TaskExecution] = field(default_factory=list)
    short_of_slots: int = 0
    unsettled: set[int] = field(default_factory=set)


@dataclass
class RunTimePlan:
    run_time: datetime | None = None
    skipped: list[tuple[datetime, str]] = field(default_factory=list)


def plan_run_times(*, run_times: list[datetime], now: datetime, grace_seconds: int, catch_up: str) -> RunTimePlan:
    """Which of the due run times runs, and why each other one does not.

    catch_up "once": the latest occurrence runs, however late (one catch-up run after downtime);
    "none": the latest runs only if it is within the misfire grace. Every other occurrence is
    recorded as skipped, so an operator sees that it did not run.
    """
    plan = RunTimePlan()
    if not run_times:
        return plan
    grace = timedelta(seconds=grace_seconds)
    *earlier, latest = sorted(run_times)
    if catch_up == ScheduledTask.CatchUp.ONCE or now - latest <= grace:
        plan.run_time = latest
    else:
        plan.skipped.append(
            (latest, f"missed by {_seconds(now - latest)} s, beyond the misfire grace of {grace_seconds} s")
        )
    for run_time in earlier:
        if plan.run_time is not None:
            covered = latest.astimezone(UTC).isoformat()
            reason = (
                "missed while the scheduler was not running (or could not reach the database); "
                f"covered by the catch-up run for {covered}"
            )
        else:
            reason = f"missed by {_seconds(now - run_time)} s, beyond the misfire grace of {grace_seconds} s"
        plan.skipped.append((run_time, reason))
    return plan


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.1f}"


def occurrences_fire(
    *,
    occurrences: list[Occurrence],
    worker: str,
    host: str,
    pid: int,
    slots: int | None = None,
    tasks: Mapping[int, ScheduledTask] | None = None,
) -> Started:
    """Record due occurrences with one INSERT and return the rows to start now.

    Several occurrences of one task (a round after downtime, or rounds that piled up while the
    database was unreachable) are planned like a catch-up (plan_run_times): at most one runs, the
    others are recorded as skipped with the reason. Each one that may run goes through the overlap
    decision: it starts at once (claimed by `worker`, at most `slots` of them; None = no limit), is
    handed over to its Celery queue, waits `pending` (behind an active run, or for a free slot), or
    is recorded skipped. An occurrence another scheduler recorded first is left out. `tasks` are the
    task rows the caller holds already (the scheduler's, as of its last reconciliation); the others
    are read.
    """
    now = db_now()
    timely, skipped = _plan_per_task(occurrences, now=now)
    timely, due_later = _apply_blackouts_and_jitter(timely, skipped, now=now)
    holding = still_active(selectors.runs_holding_the_schedule(task_ids={o.task_id for o in timely}, now=now))
    planned: list[PlannedOccurrence] = []
    to_replace: list[int] = []
    short_of_slots = 0
    for occurrence in timely:
        active = holding.setdefault(occurrence.task_id, [])
        decision = overlap_decide(policy=occurrence.overlap_policy, situation=Situation.OCCURRENCE, active=active)
        due = due_later.get(_key(occurrence))
        if due is not None:
            # Due later (jitter, a deferral): recorded `pending` now, started by the dispatcher when
            # due, which applies the overlap policy again then (as for any queued run). Skip decides now.
            if decision.verdict is Verdict.SKIP:
                skipped.append((occurrence, decision.reason))
                continue
            planned.append(
                PlannedOccurrence(
                    task_id=occurrence.task_id,
                    occurrence_at=occurrence.scheduled_for,
                    kind=PlannedOccurrence.QUEUE,
                    due_at=due,
                )
            )
            continue
        to_replace.extend(decision.replace)
        kind = PlannedOccurrence.QUEUE
        if decision.verdict is Verdict.SKIP:
            skipped.append((occurrence, decision.reason))
            continue
        # A later occurrence of the task in this round (due at the same instant) finds this one active.
        active.append(ActiveRun(0, decision.verdict is Verdict.START))
        if decision.verdict is Verdict.START:
            if occurrence.queue:
                kind = PlannedOccurrence.HAND_OVER
            elif slots is None or slots > 0:
                kind = PlannedOccurrence.START
                slots = None if slots is None else slots - 1
            else:
                short_of_slots += 1
        planned.append(
            PlannedOccurrence(
                task_id=occurrence.task_id, occurrence_at=occurrence.scheduled_for, kind=kind, queue=occurrence.queue
            )
        )
    planned.extend(_skip_records(skipped))
    if to_replace:
        stopped = transitions.executions_stop(execution_ids=sorted(set(to_replace)), reason=REPLACED, now=now)
        logger.info("replace: stopping %s active runs %s", stopped, sorted(set(to_replace))[:20])
    recorded = transitions.executions_record_round(
        planned=planned, worker=worker, host=host, pid=pid, refresh_latest=False
    )
    by_task = {o.task_id: o for o in timely}
    for row in recorded:
        _log_fire(row, by_task[row.task_id], holding.get(row.task_id))
    to_start = [row for row in recorded if row.status == Status.RUNNING or row.handover_queue]
    unsettled = {row.task_id for row in recorded}
    return Started(rows=_with_tasks(to_start, tasks or {}), short_of_slots=short_of_slots, unsettled=unsettled)


def occurrences_settle(*, started: Started) -> None:
    """After a round's runs have started: their tasks' stored latest execution. Done after the start,
    not before it, so a burst of runs begins as soon as the rows exist."""
    tasks_refresh_latest(task_ids=started.unsettled)


def _key(occurrence: Occurrence) -> tuple[int, datetime]:
    return occurrence.task_id, occurrence.scheduled_for


def _apply_blackouts_and_jitter(
    timely: list[Occurrence], skipped: list[tuple[Occurrence, str]], *, now: datetime
) -> tuple[list[Occurrence], dict[tuple[int, datetime], datetime]]:
    """Apply each occurrence's plan (occurrences.py): the ones a blackout skips join `skipped`; the
    ones due later than now (jitter, deferral) are returned with their due time; the rest run now.

    A deferred occurrence is covered (and skipped) when an earlier occurrence of the task was deferred
    out of the same blackout already: one query for the whole round, and none without deferrals.
    """
    kept: list[Occurrence] = []
    due_later: dict[tuple[int, datetime], datetime] = {}
    deferred: list[tuple[Occurrence, OccurrencePlan]] = []
    for occurrence in timely:
        if not occurrence.jitter_seconds and not occurrence.blackouts:
            kept.append(occurrence)
            continue
        plan = occurrence_plan(
            planned=occurrence.scheduled_for,
            task_id=occurrence.task_id,
            jitter_seconds=occurrence.jitter_seconds,
            blackouts=occurrence.blackouts,
            valid_until=occurrence.valid_until,
        )
        if plan.skipped:
            skipped.append((occurrence, plan.skip_reason))
        elif plan.deferred:
            deferred.append((occurrence, plan))
        else:
            kept.append(occurrence)
            if plan.due > now:
                due_later[_key(occurrence)] = plan.due
    if deferred:
        spans = [
            selectors.DeferralSpan(
                task_id=occurrence.task_id,
                start=plan.blackout_start - timedelta(seconds=occurrence.jitter_seconds),
                end=plan.blackout_end,
                planned=plan.planned,
            )
            for occurrence, plan in deferred
        ]
        covering = selectors.runs_deferred_out_of(spans=spans)
        for (occurrence, plan), span in zip(deferred, spans, strict=True):
            earlier = covering.get(span)
            if earlier is not None:
                skipped.append((occurrence, covered_reason(due=earlier)))
                continue
            kept.append(occurrence)
            due_later[_key(occurrence)] = plan.due
            logger.info(
                "defer task=%s %r scheduled_for=%s to %s: %s",
                occurrence.task_id,
                occurrence.task_name,
                occurrence.scheduled_for.isoformat(),
                plan.due.isoformat(),
                "; ".join(plan.deferred_by),
            )
            # A later occurrence of the same blackout in this very round is covered by this one.
            covering.update(
                {
                    other: plan.due
                    for other in spans
                    if other.task_id == span.task_id and other.start <= plan.planned < other.planned
                }
            )
    return kept, due_later


def _with_tasks(rows: list[TaskExecution], known: Mapping[int, ScheduledTask]) -> list[TaskExecution]:
    """The rows with their tasks attached (at most one query, for the tasks not `known`); rows of a
    task deleted meanwhile are deleted too (written after the task's cascade, they would belong to
    nothing)."""
    missing = {row.task_id for row in rows} - set(known)
    tasks = {**known, **(ScheduledTask.objects.in_bulk(missing) if missing else {})}
    kept, gone = [], []
    for row in rows:
        task = tasks.get(row.task_id)
        if task is None:
            gone.append(row.pk)
        else:
            row.task = task
            kept.append(row)
    if gone:
        TaskExecution.objects.filter(pk__in=gone).delete()
    return kept


def _plan_per_task(
    occurrences: list[Occurrence], *, now: datetime
) -> tuple[list[Occurrence], list[tuple[Occurrence, str]]]:
    """The occurrences of each task to record as runs, and the others with why they do not run.

    Occurrences of a task that piled up over time (downtime, an outage) are a catch-up: one instant
    runs, the others are skipped (plan_run_times). Occurrences due at one instant (the runs owed to
    a spring DST gap, written microseconds apart by the cron engine) are each an occurrence of their
    own, and the overlap policy decides what becomes of them; none is merged away.
    """
    by_task: dict[int, list[Occurrence]] = {}
    for occurrence in occurrences:
        by_task.setdefault(occurrence.task_id, []).append(occurrence)
    timely: list[Occurrence] = []
    skipped: list[tuple[Occurrence, str]] = []
    for group in by_task.values():
        first = group[0]
        instants: dict[datetime, list[Occurrence]] = {}
        for occurrence in sorted(group, key=lambda o: o.scheduled_for):
            same = next((at for at in instants if occurrence.scheduled_for - at < SAME_INSTANT), None)
            instants.setdefault(occurrence.scheduled_for if same is None else same, []).append(occurrence)
        plan = plan_run_times(
            run_times=list(instants), now=now, grace_seconds=first.misfire_grace_seconds, catch_up=first.catch_up
        )
        if plan.run_time is not None:
            timely.extend(instants[plan.run_time])
        for run_time, reason in plan.skipped:
            skipped.extend((occurrence, reason) for occurrence in instants[run_time])
    return timely, skipped


def _skip_records(skipped: list[tuple[Occurrence, str]]) -> list[PlannedOccurrence]:
    """The occurrences that do not run, as skipped rows (per task the newest MAX_SKIPPED_ROWS)."""
    by_task: dict[int, list[tuple[Occurrence, str]]] = {}
    for item in skipped:
        by_task.setdefault(item[0].task_id, []).append(item)
    records = []
    for items in by_task.values():
        items.sort(key=lambda item: item[0].scheduled_for)
        kept = items[-MAX_SKIPPED_ROWS:]
        reasons = [reason for _occurrence, reason in kept]
        if len(items) > len(kept):
            reasons[0] += f" ({len(items) - len(kept)} earlier missed occurrences are not recorded one by one)"
        records.extend(
            PlannedOccurrence(
                task_id=occurrence.task_id,
                occurrence_at=occurrence.scheduled_for,
                kind=PlannedOccurrence.SKIP,
                reason=reason,
            )
            for (occurrence, _reason), reason in zip(kept, reasons, strict=True)
        )
        for occurrence, reason in kept[-3:]:
            due = occurrence.scheduled_for.isoformat()
            name = occurrence.task_name
            logger.warning("skip task=%s %r scheduled_for=%s: %s", occurrence.task_id, name, due, reason)
        if len(items) > 3:
            first = kept[0][0]
            logger.warning("skip task=%s %r: %s more occurrences", first.task_id, first.task_name, len(items) - 3)
    return records


def _log_fire(row: TaskExecution, occurrence: Occurrence, holding: list | None) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    due = row.scheduled_for.isoformat()
    what = f"task={row.task_id} {occurrence.task_name!r} scheduled_for={due} execution=#{row.pk}"
    if row.status == Status.RUNNING:
        late = (row.start_time - row.scheduled_for).total_seconds()
        logger.info("fire %s late=%.3fs", what, late)
    elif row.scheduled_for != row.occurrence_at:
        logger.info("plan %s for its occurrence %s: due then", what, row.occurrence_at.isoformat())
    elif row.handover_queue:
        logger.info("fire %s handed over to Celery queue %r", what, row.handover_queue)
    elif holding:
        behind = next((f"run #{run.id}" for run in holding if run.id), "an occurrence due at the same instant")
        logger.info("queue %s behind %s", what, behind)
    else:
        logger.info("queue %s: no free slot in the pool; it starts when one frees up", what)
