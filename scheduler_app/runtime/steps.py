"""How a workflow run starts, skips and controls its steps (executors.base.StepRuns).

A step's execution is written when the step starts (already claimed by the workflow's worker) or
when it is decided that it will not run (skipped, with the reason); a step that is neither has no
row yet. So no step can wait `pending` for a workflow that is gone: every step row is either
finished or started, with a worker and a heartbeat that orphan recovery watches like any run's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence

from django.db import DatabaseError

from scheduler_app import selectors
from scheduler_app.executors.base import StepResult
from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.context import ExecutionContext

Status = TaskExecution.Status
REUSABLE = (Status.SUCCESS, "reused")


class WorkflowSteps:
    """The steps of one workflow run; `execute_step` runs a started step to its end (the runner's)."""

    def __init__(self, ctx: ExecutionContext, *, execute_step: Callable[[int], TaskExecution | None]) -> None:
        self.ctx = ctx
        self._execute_step = execute_step
        self._host = socket.gethostname()
        self._pid = os.getpid()

    def names(self, task_ids: Sequence[int]) -> dict[int, str]:
        return selectors.task_names(task_ids=task_ids)

    def reusable(self) -> dict[int, int | None]:
        previous = self.ctx.previous_attempt
        if previous is None:
            return {}
        found: dict[int, int | None] = {}
        for entry in (previous.result or {}).get("task_results") or []:
            if isinstance(entry, dict) and entry.get("status") in REUSABLE and isinstance(entry.get("task_id"), int):
                found[entry["task_id"]] = entry.get("execution_id")
        found.update(selectors.succeeded_steps(workflow_execution_id=previous.pk))
        return found

    def start(self, task_id: int) -> int:
        step = transitions.execution_start_step(
            parent=self.ctx.execution, task_id=task_id, worker=self.ctx.worker, host=self._host, pid=self._pid
        )
        return step.pk

    def execute(self, execution_id: int) -> StepResult:
        problem: BaseException | None = None
        try:
            self._execute_step(execution_id)
        except Exception as error:  # the step's runner broke: end the step instead of leaving it active
            problem = error
        status, error = selectors.execution_outcome(execution_id=execution_id)
        if status in TaskExecution.ACTIVE_STATUSES:
            reason = f"the step runner failed: {problem!r}" if problem else "the step did not record its end"
            step = TaskExecution.objects.get(pk=execution_id)
            try:
                transitions.execution_orphan(execution=step, reason=reason)
            except DatabaseError:
                self.ctx.logger.exception("step #%s: could not record its end", execution_id)
            return StepResult(execution_id, Status.FAILED, reason)
        return StepResult(execution_id, status, error)

    def skip(self, task_id: int, reason: str) -> int:
        return transitions.execution_record_skipped_step(parent=self.ctx.execution, task_id=task_id, reason=reason).pk

    def pause(self, execution_ids: Sequence[int]) -> None:
        transitions.executions_request_pause(execution_ids=execution_ids)

    def resume(self, execution_ids: Sequence[int]) -> None:
        transitions.executions_request_resume(execution_ids=execution_ids)

    def terminate(self, execution_ids: Sequence[int], reason: str) -> None:
        transitions.executions_request_terminate(execution_ids=execution_ids, reason=reason)
