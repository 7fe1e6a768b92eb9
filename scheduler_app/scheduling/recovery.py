"""Orphan recovery: end the runs nobody works on any more, and retry them per their task's policy.

A run is orphaned when its heartbeat is older than SCHEDULER_ORPHAN_SECONDS (its worker died or
lost the database), at once when its worker was a process on this host that is gone, and, for a
workflow step left `pending` with no live workflow run, at once too. No active row may exist
without a live owner. Only what the run itself started is killed (runtime.transitions.execution_orphan).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from datetime import datetime, timedelta

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions

logger = logging.getLogger("scheduler_app.scheduler")

Status = TaskExecution.Status


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


def orphans_recover(*, node_id: str, host: str, now: datetime, local_ids: Collection[int] = ()) -> int:
    """End orphaned runs (see the module docstring) and schedule their retries; returns how many.

    Runs in `local_ids` (executed in this process) are never touched.
    """
    stale = now - timedelta(seconds=scheduler_settings.ORPHAN_SECONDS)
    recovered = 0
    for execution in selectors.orphan_candidates(stale_before=stale, host=host, node_id=node_id, exclude=local_ids):
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
        if transitions.execution_orphan(execution=execution, reason=reason, now=now):
            recovered += 1
            transitions.execution_schedule_retry(execution=execution, now=now)
    for step in selectors.stranded_steps():
        reason = f"not started: its workflow run #{step.parent_id} ended without it; found by {node_id}"
        if transitions.execution_orphan(execution=step, reason=reason, now=now):
            recovered += 1
    return recovered
