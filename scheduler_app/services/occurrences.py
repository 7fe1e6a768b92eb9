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

from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from scheduler_app.conf import scheduler_settings
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services import runs

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


def _started_ids(task_id: int) -> list[int]:
    """Runs of the task that are started, or handed over to Celery (about to start)."""
    return list(
        TaskExecution.objects.filter(task_id=task_id)
        .filter(Q(status__in=TaskExecution.STARTED_STATUSES) | _handed_over())
        .values_list("id", flat=True)
    )


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
            reason = f"missed while the scheduler was not running; covered by the catch-up run for {covered}"
        else:
            reason = f"missed by {_seconds(now - run_time)} s, beyond the misfire grace of {grace_seconds} s"
        plan.skipped.append((run_time, reason))
    return plan


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():.1f}"


def occurrences_skip(*, task_id: int, skipped: list[tuple[datetime, str]], name: str = "") -> int:
    """Record occurrences that did not run as `skipped` rows (the newest MAX_SKIPPED_ROWS of them)."""
    now = timezone.now()
    kept = sorted(skipped)[-MAX_SKIPPED_ROWS:]
    dropped = len(skipped) - len(kept)
    rows = [
        TaskExecution(
            task_id=task_id,
            status=Status.SKIPPED,
            trigger=Trigger.SCHEDULE,
            scheduled_for=run_time,
            end_time=now,
            error_message=reason,
        )
        for run_time, reason in kept
    ]
    if dropped and rows:
        rows[0].error_message += f" ({dropped} earlier missed occurrences are not recorded one by one)"
    TaskExecution.objects.bulk_create(rows, ignore_conflicts=True)
    for run_time, reason in kept[-3:]:
        logger.warning("skip task=%s %r scheduled_for=%s: %s", task_id, name, run_time.isoformat(), reason)
    if len(kept) > 3:
        logger.warning("skip task=%s %r: %s more occurrences", task_id, name, len(kept) - 3)
    return len(rows)


def occurrence_fire(
    *,
    task_id: int,
    task_name: str,
    overlap_policy: str,
    scheduled_for: datetime,
    grace_seconds: int | None,
    worker: str,
    host: str,
    pid: int,
    handover: str = "",
) -> int | None:
    """Record one occurrence; returns the id of a claimed (running) execution to execute, or None.

    None means the occurrence was skipped (overlap, too late), queued as pending (overlap policy
    queue or replace), or already recorded by another scheduler (the unique key). With `handover`
    (a HANDOVER_PREFIX marker) the row is written `pending` and handed over instead of claimed:
    the returned id is to be sent to Celery, whose worker claims it.
    """
    now = timezone.now()
    if grace_seconds is not None and now - scheduled_for > timedelta(seconds=grace_seconds):
        occurrences_skip(
            task_id=task_id,
            name=task_name,
            skipped=[(scheduled_for, f"could not start within the misfire grace of {grace_seconds} s")],
        )
        return None
    started = []
    if overlap_policy != Policy.ALLOW:
        started = _started_ids(task_id)
    fields = {"task_id": task_id, "trigger": Trigger.SCHEDULE, "scheduled_for": scheduled_for}
    if started and overlap_policy == Policy.SKIP:
        reason = f"run #{started[0]} was still active (overlap policy: skip)"
        occurrences_skip(task_id=task_id, name=task_name, skipped=[(scheduled_for, reason)])
        return None
    try:
        if started:
            if overlap_policy == Policy.REPLACE:
                requested = runs_request_terminate(execution_ids=started)
                logger.info("replace task=%s: terminating %s active runs", task_id, requested)
            execution = TaskExecution.objects.create(status=Status.PENDING, **fields)
            logger.info(
                "queue task=%s %r scheduled_for=%s execution=#%s behind run #%s",
                task_id,
                task_name,
                scheduled_for.isoformat(),
                execution.pk,
                started[0],
            )
            return None
        if handover:
            execution = TaskExecution.objects.create(status=Status.PENDING, worker=handover, **fields)
            logger.info(
                "fire task=%s %r scheduled_for=%s execution=#%s handed over to %s",
                task_id,
                task_name,
                scheduled_for.isoformat(),
                execution.pk,
                handover.removeprefix(HANDOVER_PREFIX),
            )
            return execution.pk
        now = timezone.now()
        execution = TaskExecution.objects.create(
            status=Status.RUNNING, start_time=now, heartbeat_at=now, worker=worker, host=host, pid=pid, **fields
        )
    except IntegrityError:
        logger.warning(
            "task=%s scheduled_for=%s is already recorded (fired by another scheduler); not run twice",
            task_id,
            scheduled_for.isoformat(),
        )
        return None
    logger.info(
        "fire task=%s %r scheduled_for=%s execution=#%s late=%.3fs",
        task_id,
        task_name,
        scheduled_for.isoformat(),
        execution.pk,
        (execution.start_time - scheduled_for).total_seconds(),
    )
    return execution.pk


def runs_request_terminate(*, execution_ids: list[int]) -> int:
    """Ask started runs to stop; runs handed over to Celery and not started are cancelled at once."""
    now = timezone.now()
    cancelled = (
        TaskExecution.objects.filter(pk__in=execution_ids)
        .filter(_handed_over())
        .update(
            status=Status.TERMINATED,
            terminate_requested=True,
            end_time=now,
            error_message="Replaced by a newer run (overlap policy: replace).",
            updated_at=now,
        )
    )
    return cancelled + TaskExecution.objects.filter(
        pk__in=execution_ids, status__in=TaskExecution.STARTED_STATUSES
    ).update(terminate_requested=True)


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


def pending_claim(*, row: dict, now: datetime, worker: str, handover: str = "") -> bool:
    """Claim one due pending run if its task's overlap policy lets it start now.

    With `handover` (Celery) the row is handed over instead (see execution_handover)."""
    if row["trigger"] == Trigger.RETRY and (not row["task__enabled"] or row["task__paused"]):
        state = "disabled" if not row["task__enabled"] else "paused"
        TaskExecution.objects.filter(pk=row["id"], status=Status.PENDING).update(
            status=Status.SKIPPED, end_time=now, error_message=f"retry not run: the task was {state}"
        )
        return False
    policy = row["task__overlap_policy"]
    if policy != Policy.ALLOW:
        started = _started_ids(row["task_id"])
        if started:
            if policy == Policy.REPLACE:
                runs_request_terminate(execution_ids=started)
            return False
    if handover:
        return execution_handover(execution_id=row["id"], marker=handover, now=now)
    # start_time is the claim's own clock, not the round's `now`: a run that ended since then must
    # not look as if the next one had started before it ended.
    return runs.execution_claim(execution_id=row["id"], worker=worker)


def execution_handover(*, execution_id: int, marker: str, now: datetime | None = None) -> bool:
    """Mark a plain pending row as sent to Celery (still `pending`; a worker claims it when it starts)."""
    now = now or timezone.now()
    return bool(
        TaskExecution.objects.filter(pk=execution_id, status=Status.PENDING, worker="").update(
            worker=marker[:255], updated_at=now
        )
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
