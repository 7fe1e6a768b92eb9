"""The executor contract: what runs a task of one type, and what it sees of its run.

An executor gets a RunContext and returns a result dict. It signals failure by raising (any
exception, or ExecutionFailed to attach a partial result) or by returning `{"success": False, ...}`.
Stops requested from outside (terminate, timeout) arrive as ExecutionStopped from `ctx.check()`.
The runtime (scheduler_app.runtime) builds the context and gives it everything an executor needs,
a way to run workflow steps included, so executors import no service and no part of the runtime.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from scheduler_app.exceptions import (
    ConfigError,
    ExecutionFailed,
    ExecutionStopped,
    ExecutionTerminated,
    ExecutionTimedOut,
    ExecutorNotFound,
)

__all__ = [
    "RESULT_STATUS_KEY",
    "BaseExecutor",
    "ConfigError",
    "ExecutionFailed",
    "ExecutionStopped",
    "ExecutionTerminated",
    "ExecutionTimedOut",
    "ExecutorNotFound",
    "RunContext",
    "StepResult",
    "StepRuns",
]

# An executor may return {"status": ...} to choose the final state itself; only a workflow does, to
# end "completed" (on_failure=continue with failed steps). Any other value is ignored.
RESULT_STATUS_KEY = "status"


@dataclass(frozen=True)
class StepResult:
    """How a workflow step ended: its execution, its final status and its error (if any)."""

    execution_id: int
    status: str
    error: str = ""


class StepRuns(Protocol):
    """How a workflow runs its steps: each step is an execution of its own, child of the workflow run."""

    def names(self, task_ids: Sequence[int]) -> dict[int, str]:
        """The names of these tasks (for messages and results)."""

    def reusable(self) -> dict[int, int | None]:
        """Steps that succeeded in the run this one resumes or retries: task id → their execution id."""

    def start(self, task_id: int) -> int:
        """Write the step's execution, already claimed by this workflow's worker; returns its id."""

    def execute(self, execution_id: int) -> StepResult:
        """Run a started step to its end in the calling thread (a thread of the workflow's own pool)."""

    def skip(self, task_id: int, reason: str) -> int:
        """Record a step that will not run, with the reason; returns its execution id."""

    def pause(self, execution_ids: Sequence[int]) -> None: ...

    def resume(self, execution_ids: Sequence[int]) -> None: ...

    def terminate(self, execution_ids: Sequence[int], reason: str) -> None: ...


class RunContext(Protocol):
    """What an executor sees of its run (the runtime's ExecutionContext implements it)."""

    execution_id: int
    config: dict[str, Any]
    worker: str
    logger: logging.LoggerAdapter
    result_fields: dict[str, Any]
    steps: StepRuns | None

    @property
    def task(self) -> Any:
        """The task row (id, name, task type, config, timeout_seconds)."""

    @property
    def should_stop(self) -> bool: ...

    @property
    def terminate_requested(self) -> bool: ...

    def check(self, *, on_pause: Callable[[], None] | None = None, on_resume: Callable[[], None] | None = None) -> None:
        """Raise ExecutionStopped on terminate or timeout; block while the run is paused."""

    def raise_if_stopping(self) -> None: ...

    def confirm_start(self) -> None:
        """Raise ExecutionNotStarted when this process may no longer begin the work (it lost the
        leader lease); an executor whose preparation takes time asks again just before it starts."""

    def sleep(self, seconds: float, *, step: float = 0.2) -> None: ...

    def limit_time(self, seconds: float | None) -> None: ...

    def progress(
        self,
        processed: int | None = None,
        total: int | None = None,
        current_item: str | None = None,
        message: str | None = None,
        percent: float | None = None,
        *,
        force: bool = False,
        check: bool = True,
        write: bool = True,
        **result_fields: Any,
    ) -> None: ...

    def checkpoint(self, last_item: str, **data: Any) -> None: ...

    def flush(self) -> None: ...

    def live_result(self) -> dict[str, Any]: ...

    def set_output(self, tail: str, *, force: bool = False) -> None: ...

    def set_child_process(self, pgid: int | None) -> None: ...

    def resume_checkpoint(self) -> dict[str, Any]: ...


class BaseExecutor(ABC):
    """Runs the executions of one task type. Subclasses set `task_type` and register with the registry.

    Instances are created per run, so they may keep per-run state; they must not keep state between
    runs. `execute` runs in a worker thread of the scheduler (or Celery) with its own DB connection.
    It must not commit or roll back a transaction it did not open, and must not install signal
    handlers (it is not on the main thread).
    """

    task_type: ClassVar[str]

    def validate_config(self, config: dict[str, Any], *, task_id: int | None = None) -> list[str]:
        """Every problem of `config` as readable messages; empty when it can run. Must not write.

        The same check runs when a task is saved (API, admin) and again before every run.
        """
        return []

    @abstractmethod
    def execute(self, ctx: RunContext) -> dict[str, Any]:
        """Do the work and return the result (stored trimmed, see results.trim_result).

        Report progress with `ctx.progress(...)` and call `ctx.check()` at least once a second; it
        raises ExecutionStopped on terminate or timeout and blocks while the run is paused.
        Raise (or return `{"success": False}`) to fail. Runs are at-least-once: a retried or resumed
        run does the work again, so writes should be idempotent (upserts, checkpoints).
        """
