"""Dispatch: start the due `pending` runs (run now, retries, queued overlaps, runs that waited for a
free slot) as far as the overlap policies and the free slots allow, or hand them over to Celery.

With the Celery backend a run is not claimed here: it is *handed over* (still `pending`, with its
`handover_queue`), and a Celery worker claims it when it really starts it. A handed-over run counts
as started for the overlap policies (it is on its way), the dispatcher does not pick it again, and
one that no worker started within SCHEDULER_CELERY_REQUEUE_SECONDS is handed back
(transitions.handovers_requeue).
"""

from __future__ import annotations

from typing import Any

from scheduler_app import selectors
from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import db_now
from scheduler_app.runtime.finisher import still_active
from scheduler_app.runtime.overlap import Situation, Verdict, overlap_decide
from scheduler_app.scheduling.firing import REPLACED, Started
from scheduler_app.selectors import ActiveRun

Trigger = TaskExecution.Trigger


def pending_start(
    *,
    rows: list[dict[str, Any]],
    worker: str,
    host: str,
    pid: int,
    slots: int | None = None,
    queues: dict[int, str] | None = None,
) -> Started:
    """Start due pending runs (selectors.pending_runs_due) in a constant number of queries.

    Claims them (`running`, start_time = the claim) in one UPDATE, at most `slots` (None = no
    limit); a task with a queue in `queues` (Celery) has its runs handed over instead. A run whose
    task has a started run waits (replace: the started run is asked to stop); a retry of a task
    disabled or paused since it failed is skipped.
    """
    queues = queues or {}
    now = db_now()
    candidates = []
    for row in rows:
        if row["trigger"] == Trigger.RETRY and (not row["task__enabled"] or row["task__paused"]):
            state = "disabled" if not row["task__enabled"] else "paused"
            reason = f"retry not run: the task was {state}"
            transitions.executions_skip(execution_ids=[row["id"]], reason=reason, now=now)
        else:
            candidates.append(row)
    started = still_active(selectors.started_runs(task_ids={row["task_id"] for row in candidates}))
    to_claim: list[int] = []
    to_hand: dict[str, list[int]] = {}
    to_replace: list[int] = []
    short_of_slots = 0
    for row in candidates:
        task_id = row["task_id"]
        active = started.setdefault(task_id, [])
        decision = overlap_decide(policy=row["task__overlap_policy"], situation=Situation.QUEUED, active=active)
        to_replace.extend(decision.replace)
        if decision.verdict is not Verdict.START:
            continue
        queue = queues.get(task_id, "")
        if queue:
            to_hand.setdefault(queue, []).append(row["id"])
        elif slots is not None and len(to_claim) >= slots:
            short_of_slots += 1
            continue
        else:
            to_claim.append(row["id"])
        active.append(ActiveRun(row["id"], True))  # later rows of the task wait behind this one
    if to_replace:
        transitions.executions_stop(execution_ids=sorted(set(to_replace)), reason=REPLACED, now=now)
    claimed = transitions.executions_claim(execution_ids=to_claim, worker=worker, host=host, pid=pid)
    handed: list[TaskExecution] = []
    for queue, ids in to_hand.items():
        handed.extend(transitions.executions_hand_over(execution_ids=ids, queue=queue))
    rows_to_start = sorted([*claimed, *handed], key=lambda row: (row.scheduled_for, row.pk))
    return Started(rows=rows_to_start, short_of_slots=short_of_slots)
