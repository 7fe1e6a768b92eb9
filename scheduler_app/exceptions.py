"""Domain errors raised by services and selectors (the API maps each family to one HTTP status), and
the exceptions that end a run.

Bad input is a Django `ValidationError` (400, field errors). The classes here cover the rest:
`Conflict` (409: the current state does not allow the operation), `InvalidRequest` (400: the
request makes no sense for this object, e.g. the steps of a task that is not a workflow) and
`PermissionDenied` (403: the actor lacks the permission the operation needs).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied


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


class PermissionDenied(SchedulerError, DjangoPermissionDenied):
    """The actor may not do this (HTTP 403); raised by the services, whoever calls them.

    Also Django's PermissionDenied, so that wherever an entry point does not catch it, Django (the
    admin's 403 page) and DRF answer 403 on their own; the admin's row and bulk actions catch it as a
    SchedulerError and show the message.
    """

    default_code = "permission_denied"


class Conflict(SchedulerError):
    """The current state forbids the operation; retrying later may succeed (HTTP 409)."""

    default_code = "conflict"


class TaskInUse(Conflict):
    """The task is a workflow step or has started runs, so it cannot be deleted or disabled."""

    default_code = "task_in_use"


class CalendarInUse(Conflict):
    """Tasks or blackout windows use the calendar, so it cannot be deleted."""

    default_code = "calendar_in_use"


class CalendarPublished(Conflict):
    """The calendar's days come from an app's publication (or an app wants a calendar kept by hand)."""

    default_code = "calendar_published"


class RunActive(Conflict):
    """A run of the task is active and its overlap policy forbids another one."""

    default_code = "run_active"


class InvalidState(Conflict):
    """The execution's status does not allow this control action."""

    default_code = "invalid_state"


class BrokenSchedule(Conflict):
    """A task's stored schedule (cron expression or timezone) cannot be used; written behind the
    services' back, since they refuse it at save."""

    default_code = "invalid_schedule"


# ------------------------------------------------------------------------------- what ends a run
#
# Raised by executors, actions and the ExecutionContext while a run executes; the runner turns each
# into the run's final state. They live here, beneath every layer, because actions (which any app
# may write) raise them as well as the executors that call those actions.


class ExecutorNotFound(LookupError):
    """No executor is registered for this task type."""


class ExecutionFailed(Exception):
    """The work failed; `result` (optional) is stored with the failed run."""

    def __init__(self, message: str, *, result: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.result = result


class ConfigError(ExecutionFailed):
    """The task's config cannot run; `errors` lists every problem (the API answers them as 400)."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("Invalid config: " + "; ".join(self.errors))


class ExecutionStopped(BaseException):
    """The run must stop now (raised by the context's check()); never swallow it.

    A BaseException, so that an action's `except Exception` cannot swallow it (zquant's factor
    calculation and serial workflows did, and a terminated run ended as success: weak spot 8).
    """

    reason = "stopped"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.reason)
        self.message = message or self.reason


class ExecutionTerminated(ExecutionStopped):
    """Termination was requested (a user, a replace, a stopping scheduler): the run ends `terminated`."""

    reason = "terminated on request"


class ExecutionNotStarted(ExecutionStopped):
    """The work must not begin after all: the process that claimed the run lost the leader lease while
    the run was being prepared (it was frozen, or starved). Raised at the last moment before the work
    begins; the runner hands the run back unstarted, so the current leader starts it once."""

    reason = "its scheduler no longer holds the leader lease"


class ExecutionTimedOut(ExecutionStopped):
    """The run exceeded its time limit (paused time not counted): it ends `failed`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g} s")
