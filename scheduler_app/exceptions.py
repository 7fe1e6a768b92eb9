"""Domain errors raised by services and selectors; the API maps each family to one HTTP status.

Bad input is a Django `ValidationError` (400, field errors). The classes here cover the rest:
`Conflict` (409: the current state does not allow the operation) and `InvalidRequest` (400: the
request makes no sense for this object, e.g. the steps of a task that is not a workflow).
"""

from __future__ import annotations


class SchedulerError(Exception):
    """Base class: a user-facing `message` and a stable machine-readable `code`."""

    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = str(message)
        self.code = code or self.default_code


class InvalidRequest(SchedulerError):
    """The operation does not apply to this object (HTTP 400)."""

    default_code = "invalid"


class Conflict(SchedulerError):
    """The current state forbids the operation; retrying later may succeed (HTTP 409)."""

    default_code = "conflict"


class TaskInUse(Conflict):
    """The task is a workflow step or has started runs, so it cannot be deleted or disabled."""

    default_code = "task_in_use"


class RunActive(Conflict):
    """A run of the task is active and its overlap policy forbids another one."""

    default_code = "run_active"


class InvalidState(Conflict):
    """The execution's status does not allow this control action."""

    default_code = "invalid_state"
