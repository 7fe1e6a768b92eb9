"""The executor contract: what runs a task of one type, and the exceptions that end a run.

An executor gets an ExecutionContext and returns a result dict. It signals failure by raising (any
exception, or ExecutionFailed to attach a partial result) or by returning `{"success": False, ...}`.
Stops requested from outside (terminate, timeout) arrive as ExecutionStopped from `ctx.check()`;
they derive from BaseException so that an action's `except Exception` cannot swallow them (zquant's
factor calculation and serial workflows did, and a terminated run ended as success: weak spot 8).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from scheduler_app.executors.context import ExecutionContext

# An executor may return {"status": ...} to choose the final state itself; only a workflow does, to
# end "completed" (on_failure=continue with failed steps). Any other value is ignored.
RESULT_STATUS_KEY = "status"


class ExecutorNotFound(LookupError):
    """No executor is registered for this task type."""


class ExecutionFailed(Exception):
    """The work failed; `result` (optional) is stored with the failed run."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


class ConfigError(ExecutionFailed):
    """The task's config cannot run; `errors` lists every problem (the API answers them as 400)."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("Invalid config: " + "; ".join(self.errors))


class ExecutionStopped(BaseException):
    """The run must stop now (raised by ExecutionContext.check()); never swallow it."""

    reason = "stopped"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.reason)
        self.message = message or self.reason


class ExecutionTerminated(ExecutionStopped):
    """Termination was requested (a user, a replace, a stopping scheduler): the run ends `terminated`."""

    reason = "terminated on request"


class ExecutionTimedOut(ExecutionStopped):
    """The run exceeded its time limit (paused time not counted): it ends `failed`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g} s")


class BaseExecutor(ABC):
    """Runs the executions of one task type. Subclasses set `task_type` and register with the registry.

    Instances are created per run, so they may keep per-run state; they must not keep state between
    runs. `execute` runs in a worker thread of the scheduler (or Celery) with its own DB connection.
    It must not commit or roll back a transaction it did not open, and must not install signal
    handlers (it is not on the main thread).
    """

    task_type: ClassVar[str]

    def validate_config(self, config: dict[str, Any], *, task_id: int | None = None) -> list[str]:
        """Every problem of `config` as readable messages; empty when it can run. Must not write."""
        return []

    @abstractmethod
    def execute(self, ctx: ExecutionContext) -> dict[str, Any]:
        """Do the work and return the result (stored trimmed, see results.trim_result).

        Report progress with `ctx.progress(...)` and call `ctx.check()` at least once a second; it
        raises ExecutionStopped on terminate or timeout and blocks while the run is paused.
        Raise (or return `{"success": False}`) to fail. Runs are at-least-once: a retried or resumed
        run does the work again, so writes should be idempotent (upserts, checkpoints).
        """
