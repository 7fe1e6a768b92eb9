"""Scheduler-side writes: firing an occurrence, recording skipped ones, claiming queued runs, orphans.

Called by the scheduler process (scheduling/manager.py) under a per-task lock, so the overlap
decision and the insert that follows it are not raced by the same process; across processes the
unique (task, scheduled_for) key is the last line of defence.

With the Celery backend (scheduling/backends.py) a run is not claimed here: it is *handed over*, a
`pending` row whose `worker` is HANDOVER_PREFIX + queue, and a Celery worker claims it when it
really starts it. A handed-over row counts as started for the overlap policies (it is on its way),
the dispatcher does not pick it again, and one that no worker started within
SCHEDULER_CELERY_REQUEUE_SECONDS is handed back to the dispatcher (`handovers_requeue`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from scheduler_app.conf import scheduler_settings
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services import executions, runs

logger = logging.getLogger("scheduler_app.scheduler")

Status = TaskExecution.Status
Trigger = TaskExecution.Trigger
Policy = ScheduledTask.OverlapPolicy

# A long downtime of a frequent job would otherwise write one row per missed second.
MAX_SKIPPED_ROWS = 500
# `worker` of a pending row sent to Celery and not started yet: HANDOVER_PREFIX + the queue name.
HANDOVER_PREFIX = "celery:queued:"


def _handed_over() -> Q:
    return Q(status=Status.PENDING, worker__startswith=HANDOVER_PREFIX)


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


@dataclass
class Started:
    """Rows to run now (claimed, or handed over to Celery), each with its task loaded, and how many
    more could have started but for the free slots (they wait as `pending` for the dispatcher)."""

    rows: list[TaskExecution] = field(default_factory=list)
    short_of_slots: int = 0


@dataclass(frozen=True)
class Occurrence:
    """One due run time of a task, with what the scheduler knows of the task."""

    task_id: int
    task_name: str
    overlap_policy: str
    scheduled_for: datetime
    misfire_grace_seconds: int = 0
    catch_up: str = ScheduledTask.CatchUp.ONCE
    # A HANDOVER_PREFIX marker: write the row `pending` for a Celery worker instead of claiming it.
    handover: str = ""


def occurrences_fire(
    *,
    occurrences: list[Occurrence],
    worker: str,
    host: str,
    pid: int,
    slots: int | None = None,
) -> Started:
    """Record due occurrences with one INSERT and return the rows to start now.

    Several occurrences of one task (a round after downtime, or rounds that piled up while the
    database was unreachable) are planned like a catch-up (plan_run_times): at most one runs, the
    others are recorded as skipped with the reason. The rows to start are claimed `running` rows
    (start_time = the claim) or `pending` rows handed over to Celery (`handover`). The others are
    recorded without starting: `skipped` (overlap policy skip, beyond the misfire grace), `pending`
    behind an active run (queue, replace), `pending` for lack of a free slot (at most `slots` are
    claimed; None = no limit), or nothing when another scheduler recorded the occurrence first.
    """
    timely, skipped = _plan_per_task(occurrences, now=timezone.now())
    active = _started_by_task({o.task_id for o in timely if o.overlap_policy != Policy.ALLOW})
    to_replace: list[int] = []
    rows: list[TaskExecution] = []
    short_of_slots = 0
    claimed_at = timezone.now()
    for occurrence in timely:
        started = active.get(occurrence.task_id, [])
        fields = {"task_id": occurrence.task_id, "trigger": Trigger.SCHEDULE, "scheduled_for": occurrence.scheduled_for}
        if started and occurrence.overlap_policy == Policy.SKIP:
            skipped.append((occurrence, f"run #{started[0]} was still active (overlap policy: skip)"))
        elif started:
            if occurrence.overlap_policy == Policy.REPLACE:
                to_replace.extend(started)
            rows.append(TaskExecution(status=Status.PENDING, **fields))
        elif occurrence.handover:
            rows.append(TaskExecution(status=Status.PENDING, worker=occurrence.handover, **fields))
        elif slots is not None and slots <= 0:
            short_of_slots += 1
            rows.append(TaskExecution(status=Status.PENDING, **fields))
        else:
            if slots is not None:
                slots -= 1
            rows.append(
                TaskExecution(
                    status=Status.RUNNING,
                    start_time=claimed_at,
                    heartbeat_at=claimed_at,
                    worker=worker,
                    host=host,
                    pid=pid,
                    **fields,
                )
            )
    if skipped:
        _record_skipped(skipped)
    if to_replace:
        requested = executions.executions_replace(execution_ids=to_replace)
        logger.info("replace: terminating %s active runs %s", requested, to_replace[:20])
    recorded = _insert_occurrences(rows)
    by_task = {o.task_id: o for o in timely}
    to_start = [row for row in recorded if row.status == Status.RUNNING or row.worker.startswith(HANDOVER_PREFIX)]
    for row in recorded:
        _log_fire(row, by_task[row.task_id], active.get(row.task_id))
    return Started(rows=_with_tasks(to_start), short_of_slots=short_of_slots)


def _with_tasks(rows: list[TaskExecution]) -> list[TaskExecution]:
    """The rows with their tasks attached (one query); rows of a task deleted meanwhile are deleted."""
    tasks = ScheduledTask.objects.in_bulk({row.task_id for row in rows})
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
    """At most one occurrence per task to record as a run; the others with why they do not run."""
    by_task: dict[int, list[Occurrence]] = {}
    for occurrence in occurrences:
        by_task.setdefault(occurrence.task_id, []).append(occurrence)
    timely: list[Occurrence] = []
    skipped: list[tuple[Occurrence, str]] = []
    for group in by_task.values():
        first = group[0]
        at = {occurrence.scheduled_for: occurrence for occurrence in group}
        plan = plan_run_times(
            run_times=list(at), now=now, grace_seconds=first.misfire_grace_seconds, catch_up=first.catch_up
        )
        if plan.run_time is not None:
            timely.append(at[plan.run_time])
        skipped.extend((at[run_time], reason) for run_time, reason in plan.skipped)
    return timely, skipped


def _started_by_task(task_ids: set[int]) -> dict[int, list[int]]:
    """Started (or handed-over) runs of these tasks, in one query."""
    if not task_ids:
        return {}
    active: dict[int, list[int]] = {}
    rows = (
        TaskExecution.objects.filter(task_id__in=task_ids)
        .filter(Q(status__in=TaskExecution.STARTED_STATUSES) | _handed_over())
        .order_by("id")
        .values_list("task_id", "id")
    )
    for task_id, execution_id in rows:
        active.setdefault(task_id, []).append(execution_id)
    return active


def _record_skipped(skipped: list[tuple[Occurrence, str]]) -> None:
    """Write occurrences that do not run as `skipped` rows (per task the newest MAX_SKIPPED_ROWS)."""
    now = timezone.now()
    by_task: dict[int, list[tuple[Occurrence, str]]] = {}
    for item in skipped:
        by_task.setdefault(item[0].task_id, []).append(item)
    rows = []
    for items in by_task.values():
        items.sort(key=lambda item: item[0].scheduled_for)
        kept = items[-MAX_SKIPPED_ROWS:]
        task_rows = [
            TaskExecution(
                task_id=occurrence.task_id,
                status=Status.SKIPPED,
                trigger=Trigger.SCHEDULE,
                scheduled_for=occurrence.scheduled_for,
                end_time=now,
                error_message=reason,
            )
            for occurrence, reason in kept
        ]
        if len(items) > len(kept):
            dropped = len(items) - len(kept)
            task_rows[0].error_message += f" ({dropped} earlier missed occurrences are not recorded one by one)"
        rows.extend(task_rows)
        for occurrence, reason in kept[-3:]:
            due = occurrence.scheduled_for.isoformat()
            logger.warning(
                "skip task=%s %r scheduled_for=%s: %s", occurrence.task_id, occurrence.task_name, due, reason
            )
        if len(items) > 3:
            logger.warning(
                "skip task=%s %r: %s more occurrences", kept[0][0].task_id, kept[0][0].task_name, len(items) - 3
            )
    TaskExecution.objects.bulk_create(rows, ignore_conflicts=True)


def _insert_occurrences(rows: list[TaskExecution]) -> list[TaskExecution]:
    """Insert the rows in one statement; if one was recorded already (another scheduler fired it,
    or this one before a crash), insert them one by one and leave out the duplicates."""
    if not rows:
        return []
    try:
        with transaction.atomic():
            TaskExecution.objects.bulk_create(rows)
    except IntegrityError:
        for row in rows:
            row.pk = None
        recorded = []
        for row in rows:
            try:
                with transaction.atomic():
                    row.save(force_insert=True)
            except IntegrityError:
                logger.warning(
                    "task=%s scheduled_for=%s is already recorded (fired by another scheduler); not run twice",
                    row.task_id,
                    row.scheduled_for.isoformat(),
                )
                continue
            recorded.append(row)
        return recorded
    if any(row.pk is None for row in rows):  # databases that do not return ids from a bulk insert
        matching = TaskExecution.objects.filter(
            task_id__in={row.task_id for row in rows}, scheduled_for__in={row.scheduled_for for row in rows}
        )
        ids = {(task_id, due): pk for task_id, due, pk in matching.values_list("task_id", "scheduled_for", "id")}
        for row in rows:
            row.pk = ids.get((row.task_id, row.scheduled_for))
    return rows


def _log_fire(row: TaskExecution, occurrence: Occurrence, started: list[int] | None) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    due = row.scheduled_for.isoformat()
    what = f"task={row.task_id} {occurrence.task_name!r} scheduled_for={due} execution=#{row.pk}"
    if row.status == Status.RUNNING:
        late = (row.start_time - row.scheduled_for).total_seconds()
        logger.info("fire %s late=%.3fs", what, late)
    elif row.worker:
        logger.info("fire %s handed over to %s", what, row.worker.removeprefix(HANDOVER_PREFIX))
    elif started:
        logger.info("queue %s behind run #%s", what, started[0])
    else:
        logger.info("queue %s: no free slot in the pool; it starts when one frees up", what)


def pending_due(*, now: datetime, limit: int) -> list[dict]:
    """Due pending runs the dispatcher may claim (workflow steps are claimed by their workflow,
    runs handed over to Celery by their worker)."""
    return list(
        TaskExecution.objects.filter(status=Status.PENDING, scheduled_for__lte=now)
        .exclude(trigger=Trigger.WORKFLOW)
        .exclude(worker__startswith=HANDOVER_PREFIX)
        .order_by("scheduled_for", "id")
        .values("id", "task_id", "trigger", "task__enabled", "task__paused", "task__overlap_policy")[
            : max(limit * 4, 20)
        ]
    )


def pending_start(
    *,
    rows: list[dict],
    worker: str,
    host: str,
    pid: int,
    slots: int | None = None,
    markers: dict[int, str] | None = None,
) -> Started:
    """Start due pending runs (from pending_due) as far as overlap policies and free slots allow.

    Claims them (`running`, start_time = the claim) in one UPDATE, at most `slots` (None = no
    limit); a task with a marker in `markers` (Celery) has its runs handed over instead. A run of a
    task with an active run waits (replace: the active run is asked to stop); a retry of a task
    disabled or paused since it failed is skipped. A constant number of queries for any batch.
    """
    markers = markers or {}
    now = timezone.now()
    candidates = []
    for row in rows:
        if row["trigger"] == Trigger.RETRY and (not row["task__enabled"] or row["task__paused"]):
            state = "disabled" if not row["task__enabled"] else "paused"
            TaskExecution.objects.filter(pk=row["id"], status=Status.PENDING).update(
                status=Status.SKIPPED, end_time=now, error_message=f"retry not run: the task was {state}"
            )
        else:
            candidates.append(row)
    active = _started_by_task({r["task_id"] for r in candidates if r["task__overlap_policy"] != Policy.ALLOW})
    to_claim: list[int] = []
    to_hand: dict[str, list[int]] = {}
    to_replace: list[int] = []
    taken: set[int] = set()  # tasks (not "allow") that start a run in this batch
    short_of_slots = 0
    for row in candidates:
        task_id, policy = row["task_id"], row["task__overlap_policy"]
        if policy != Policy.ALLOW:
            started = active.get(task_id)
            if started and policy == Policy.REPLACE:
                to_replace.extend(started)
            if started or task_id in taken:
                continue
        marker = markers.get(task_id, "")
        if marker:
            to_hand.setdefault(marker, []).append(row["id"])
        elif slots is not None and len(to_claim) >= slots:
            short_of_slots += 1
            continue
        else:
            to_claim.append(row["id"])
        taken.add(task_id)
    if to_replace:
        executions.executions_replace(execution_ids=sorted(set(to_replace)))
    claimed_at = timezone.now()
    if to_claim:
        TaskExecution.objects.filter(pk__in=to_claim, status=Status.PENDING).update(
            status=Status.RUNNING,
            start_time=claimed_at,
            heartbeat_at=claimed_at,
            worker=worker[:255],
            host=host[:255],
            pid=pid,
            updated_at=claimed_at,
        )
    for marker, ids in to_hand.items():
        executions_hand_over(execution_ids=ids, marker=marker, now=claimed_at)
    if not (to_claim or to_hand):
        return Started(short_of_slots=short_of_slots)
    handed = [pk for ids in to_hand.values() for pk in ids]
    won = TaskExecution.objects.select_related("task").filter(
        Q(pk__in=to_claim, status=Status.RUNNING, worker=worker[:255], start_time=claimed_at)
        | Q(pk__in=handed, status=Status.PENDING, worker__startswith=HANDOVER_PREFIX)
    )
    return Started(rows=list(won.order_by("scheduled_for", "id")), short_of_slots=short_of_slots)


def executions_hand_over(*, execution_ids: list[int], marker: str, now: datetime | None = None) -> int:
    """Mark plain pending rows as sent to Celery (still `pending`; a worker claims one when it starts)."""
    now = now or timezone.now()
    return TaskExecution.objects.filter(pk__in=execution_ids, status=Status.PENDING, worker="").update(
        worker=marker[:255], updated_at=now
    )


def handovers_requeue(*, older_than: datetime, now: datetime | None = None) -> list[int]:
    """Hand back to the dispatcher the runs sent to Celery before `older_than` that no worker started.

    Their message was lost (a leader that died before sending it, a broker that lost it, a worker
    killed with messages it had reserved). Sending one twice is safe: only one claim can succeed.
    """
    now = now or timezone.now()
    stale = TaskExecution.objects.filter(_handed_over(), updated_at__lt=older_than)
    ids = list(stale.values_list("id", flat=True)[:1000])
    if not ids:
        return []
    reset = TaskExecution.objects.filter(_handed_over(), pk__in=ids, updated_at__lt=older_than).update(
        worker="", updated_at=now
    )
    if reset:
        logger.warning("%s runs sent to Celery were not started in time; they are sent again: %s", reset, ids[:20])
    return ids


def handovers_open() -> list[int]:
    """Ids of the runs handed over to Celery and not started yet."""
    return list(TaskExecution.objects.filter(_handed_over()).values_list("id", flat=True))


def _process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def execution_abandon(*, execution: TaskExecution, reason: str) -> bool:
    """End a run whose worker is gone: kill its command's process group, mark it terminated."""
    if execution.child_pid and execution.host == socket.gethostname():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(execution.child_pid, signal.SIGKILL)
    now = timezone.now()
    duration = (now - execution.start_time).total_seconds() if execution.start_time else None
    ended = TaskExecution.objects.filter(pk=execution.pk, status__in=TaskExecution.ACTIVE_STATUSES).update(
        status=Status.TERMINATED,
        end_time=now,
        duration_seconds=duration,
        is_paused=False,
        error_message=reason,
    )
    if ended:
        logger.warning("terminated execution=#%s task=%s: %s", execution.pk, execution.task_id, reason)
    return bool(ended)


def orphans_recover(*, node_id: str, host: str, now: datetime, local_ids: Collection[int] = ()) -> int:
    """Terminate runs nobody is working on any more, then retry them per the task's policy.

    A run is orphaned when its heartbeat is older than SCHEDULER_ORPHAN_SECONDS (its worker died or
    lost the database), or at once when its worker was a process on this host that is gone. Runs in
    `local_ids` (being executed in this process) are never touched.
    """
    stale = now - timedelta(seconds=scheduler_settings.ORPHAN_SECONDS)
    candidates = (
        TaskExecution.objects.filter(status__in=TaskExecution.STARTED_STATUSES)
        .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True) | (Q(host=host) & ~Q(worker=node_id)))
        .exclude(pk__in=list(local_ids))
    )
    recovered = 0
    for execution in candidates:
        heartbeat_stale = execution.heartbeat_at is None or execution.heartbeat_at < stale
        same_host_dead = execution.host == host and execution.worker != node_id and not _process_alive(execution.pid)
        if not (heartbeat_stale or same_host_dead):
            continue
        if execution.worker == node_id:
            why = "this scheduler lost track of it (its bookkeeping failed)"
        elif same_host_dead:
            why = "its process is gone"
        else:
            why = f"no heartbeat since {execution.heartbeat_at}"
        reason = f"orphaned: worker {execution.worker or execution.host} stopped running it ({why}); found by {node_id}"
        if execution_abandon(execution=execution, reason=reason):
            recovered += 1
            execution.status = Status.TERMINATED
            runs.execution_schedule_retry(execution=execution, now=now)
    return recovered
