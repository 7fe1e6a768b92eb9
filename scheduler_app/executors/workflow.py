"""Workflows: run other tasks as steps, serially or in parallel, following their dependencies.

Every step is its own TaskExecution (trigger `workflow`, parent = the workflow run), written when
the step starts (already claimed by the workflow's worker) or when it is skipped, and run by the
workflow itself in a thread pool of `max_parallel` threads (1 for serial workflows; steps start in
the plan's topological order, ties in config order). So each step shows its own progress and can be
paused or terminated on its own, and no step row can wait for a workflow that is gone. The steps
are started and controlled through `ctx.steps` (runtime.steps): this module imports no service.

Rules (zquant broke most of them: weak spots 8, 26-28):
- a step whose dependency did not succeed (failed, terminated, skipped, completed) is `skipped`,
  with the reason; it never runs;
- on_failure=stop: after a failed step no further step starts, running steps finish, the rest is
  `skipped`; the workflow ends `failed`;
- on_failure=continue: independent steps go on; the workflow ends `completed` when any step did not
  succeed, `success` when all did;
- terminating (or timing out) the workflow asks its running steps to terminate, skips the steps not
  started, waits for the running ones to end, and ends the workflow `terminated` (`failed` for a
  timeout) — never `success`; pausing it pauses its running steps and starts nothing new;
- whenever the workflow ends, every step that did not run gets a `skipped` row with the reason;
- resume and retry: steps that succeeded in the resumed or retried run (or were reused by it) are
  not run again; they get no new row and appear in task_results with `"reused": true` and the old
  step's execution id;
- steps ignore their own task's schedule state, enabled/paused flags' effect on scheduling, and
  overlap policy: the workflow owns them. They are not retried one by one; the workflow is.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from django.db import connections

from scheduler_app.exceptions import ExecutionStopped
from scheduler_app.executors.base import BaseExecutor, RunContext, StepResult, StepRuns
from scheduler_app.executors.registry import register
from scheduler_app.models import TaskExecution
from scheduler_app.workflows import WorkflowConfigError, WorkflowPlan, validate_workflow_config

Status = TaskExecution.Status
REUSED = "reused"  # an internal state: succeeded in the resumed or retried run
PENDING, RUNNING = "pending", "running"
GOOD = {Status.SUCCESS, REUSED}
WAIT_SECONDS = 0.2


@register
class WorkflowExecutor(BaseExecutor):
    """Runs the steps of a workflow config (see scheduler_app.workflows for its shape)."""

    task_type = "workflow"

    def validate_config(self, config: dict[str, Any], *, task_id: int | None = None) -> list[str]:
        try:
            validate_workflow_config(config, workflow_id=task_id)
        except WorkflowConfigError as error:
            return error.errors
        return []

    def execute(self, ctx: RunContext) -> dict[str, Any]:
        plan = validate_workflow_config(ctx.config, workflow_id=ctx.task.pk)
        return WorkflowRun(ctx, plan).run()


def _execute_step(steps: StepRuns, execution_id: int) -> StepResult:
    """Pool thread: run one started step, then close this thread's connections."""
    try:
        return steps.execute(execution_id)
    finally:
        connections.close_all()


class WorkflowRun:
    def __init__(self, ctx: RunContext, plan: WorkflowPlan) -> None:
        if ctx.steps is None:
            raise RuntimeError("a workflow needs a context that can run steps (ctx.steps)")
        self.ctx = ctx
        self.steps: StepRuns = ctx.steps
        self.plan = plan
        self.order = plan.order()
        known = self.steps.names(plan.task_ids)
        self.names = {step.task_id: step.name or known.get(step.task_id, "") for step in plan.steps}
        self.limit = 1 if plan.workflow_type == "serial" else plan.max_parallel
        self.state: dict[int, str] = {}
        self.rows: dict[int, int] = {}  # task id -> step execution id (the old one for reused steps)
        self.reasons: dict[int, str] = {}
        self.running: dict[Future, int] = {}
        self.stop_starting = False

    # ------------------------------------------------------------------ setup

    def _plan_steps(self) -> None:
        reused = self.steps.reusable()
        for step in self.plan.steps:
            if step.task_id in reused:
                self.state[step.task_id] = REUSED
                if reused[step.task_id]:
                    self.rows[step.task_id] = reused[step.task_id]
            else:
                self.state[step.task_id] = PENDING
        if reused:
            self.ctx.logger.info(
                "workflow run #%s: steps %s already succeeded in the run it takes over from",
                self.ctx.execution_id,
                sorted(task_id for task_id in reused if task_id in self.names),
            )

    # ------------------------------------------------------------------ the loop

    def run(self) -> dict[str, Any]:
        self._plan_steps()
        self._report(force=True)
        pool = ThreadPoolExecutor(max_workers=self.limit, thread_name_prefix=f"zquant-workflow-{self.ctx.execution_id}")
        try:
            while True:
                self.ctx.check(on_pause=self._pause_steps, on_resume=self._resume_steps)
                self._skip_blocked()
                if not self.stop_starting:
                    self._start_ready(pool)
                self._report()
                if not self.running:
                    break
                done, _ = wait(list(self.running), timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    self._collect(future)
        except ExecutionStopped as stop:
            self._stop_everything(stop.message)
            raise
        except BaseException as error:
            self._stop_everything(f"the workflow failed: {error!r}")
            raise
        finally:
            pool.shutdown(wait=True)
        self._skip_unstarted("not started: the workflow stopped after a failed step (on_failure=stop)")
        self._report(force=True)
        return self._result()

    def _deps_state(self, task_id: int) -> tuple[bool, list[int]]:
        """(all dependencies succeeded, the dependencies that did not and never will)."""
        deps = self.plan.step(task_id).dependencies
        bad = [dep for dep in deps if self.state[dep] not in (PENDING, RUNNING, *GOOD)]
        return all(self.state[dep] in GOOD for dep in deps), bad

    def _skip_blocked(self) -> None:
        changed = True
        while changed:  # a skip can block further steps: repeat until nothing changes
            changed = False
            for task_id in self.order:
                if self.state[task_id] != PENDING:
                    continue
                _, bad = self._deps_state(task_id)
                if bad:
                    names = ", ".join(f"{dep} ({self.names[dep]}: {self.state[dep]})" for dep in bad)
                    self._skip(task_id, f"not run: its dependency did not succeed: {names}")
                    changed = True

    def _start_ready(self, pool: ThreadPoolExecutor) -> None:
        for task_id in self.order:
            if len(self.running) >= self.limit:
                return
            if self.state[task_id] == PENDING and self._deps_state(task_id)[0]:
                self.state[task_id] = RUNNING
                self.rows[task_id] = self.steps.start(task_id)
                future = pool.submit(_execute_step, self.steps, self.rows[task_id])
                self.running[future] = task_id

    def _collect(self, future: Future) -> None:
        task_id = self.running.pop(future)
        problem = future.exception()
        if problem is not None:
            outcome = StepResult(self.rows[task_id], Status.FAILED, f"the step runner failed: {problem!r}")
        else:
            outcome = future.result()
        self.state[task_id] = outcome.status
        if outcome.status not in GOOD:
            self.reasons[task_id] = (outcome.error or outcome.status)[:300]
            if self.plan.on_failure == "stop":
                self.stop_starting = True

    def _skip(self, task_id: int, reason: str) -> None:
        self.state[task_id] = Status.SKIPPED
        self.reasons[task_id] = reason
        self.rows[task_id] = self.steps.skip(task_id, reason)

    def _skip_unstarted(self, reason: str) -> None:
        for task_id in self.order:
            if self.state[task_id] == PENDING:
                self._skip(task_id, reason)

    # ------------------------------------------------------------------ control of the steps

    def _running_rows(self) -> list[int]:
        return [self.rows[task_id] for task_id in self.running.values()]

    def _pause_steps(self) -> None:
        self.steps.pause(self._running_rows())

    def _resume_steps(self) -> None:
        self.steps.resume(self._running_rows())

    def _stop_everything(self, reason: str) -> None:
        """Skip the steps not started, ask the running ones to terminate, and wait for them."""
        self._skip_unstarted(f"not started: the workflow was stopped ({reason})")
        self.steps.terminate(self._running_rows(), f"the workflow was stopped ({reason})")
        while self.running:
            done, _ = wait(list(self.running), timeout=WAIT_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                self._collect(future)
        self._report(force=True)
        self.ctx.result_fields["task_results"] = self._task_results()

    # ------------------------------------------------------------------ reporting

    def _task_results(self) -> list[dict[str, Any]]:
        entries = []
        for step in self.plan.steps:
            state = self.state[step.task_id]
            entry: dict[str, Any] = {
                "task_id": step.task_id,
                "name": self.names[step.task_id],
                "execution_id": self.rows.get(step.task_id),
                "status": Status.SUCCESS if state == REUSED else state,
            }
            if state == REUSED:
                entry["reused"] = True
            if step.task_id in self.reasons:
                entry["reason"] = self.reasons[step.task_id]
            entries.append(entry)
        return entries

    def _report(self, *, force: bool = False) -> None:
        total = len(self.order)
        finished = sum(1 for state in self.state.values() if state not in (PENDING, RUNNING))
        running = [self.names[task_id] for task_id in self.running.values()]
        message = f"正在执行: {', '.join(running)} ({finished}/{total})" if running else f"已完成 {finished}/{total}"
        self.ctx.progress(
            processed=finished,
            total=total,
            current_item=", ".join(running)[:255],
            message=message,
            force=force,
            check=False,
            task_results=self._task_results(),
        )

    def _result(self) -> dict[str, Any]:
        results = self._task_results()
        succeeded = [entry for entry in results if entry["status"] == Status.SUCCESS]
        skipped = [entry for entry in results if entry["status"] == Status.SKIPPED]
        failed = [entry for entry in results if entry not in succeeded and entry not in skipped]
        total = len(results)
        label = "串行执行完成" if self.plan.workflow_type == "serial" else "并行执行完成"
        message = f"{label}: 成功 {len(succeeded)}/{total}，失败 {len(failed)}，跳过 {len(skipped)}"
        if failed:
            first = failed[0]
            message += f"; step {first['task_id']} ({first['name']}) {first['status']}: {first.get('reason', '')}"
        if not failed and not skipped:
            status = Status.SUCCESS
        elif self.plan.on_failure == "stop":
            status = Status.FAILED
        else:
            status = Status.COMPLETED
        return {
            "status": status,
            "success": status == Status.SUCCESS,
            "workflow_type": self.plan.workflow_type,
            "total_tasks": total,
            "success_count": len(succeeded),
            "failed_count": len(failed),
            "skipped_count": len(skipped),
            "failed_task_ids": [entry["task_id"] for entry in failed],
            "task_results": results,
            "message": message[:1000],
        }
