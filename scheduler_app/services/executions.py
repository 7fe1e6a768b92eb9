"""Execution services: queue a run under the task's overlap policy, and the operator's controls.

Nothing here runs work: a queued run is a `pending` row that the scheduler process claims, and
pause / resume / terminate set flags that the runner reads (docs/internals.md, "Control flags").
Every status change goes through runtime.transitions, the one place that writes them. Queuing a run
needs TASK_RUN, the controls EXECUTION_CONTROL (services.permissions), checked before anything is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app import selectors
from scheduler_app.exceptions import InvalidState, RunActive
from scheduler_app.models import OperatorAction, ScheduledTask, TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.overlap import Situation, Verdict, overlap_decide
from scheduler_app.services import permissions
from scheduler_app.services.audit import REASON_MAX_LENGTH, action_record
from scheduler_app.services.permissions import Actor, recorded_user

Status = TaskExecution.Status

EXECUTION_RUN_ACTIVE = _(
    'Task "%(name)s" already has an active run (%(ids)s) and its overlap policy is "skip"; '
    "wait for it to end, terminate it, or choose another overlap policy."
)
EXECUTION_REPLACED = _("Replaced by a newer run (overlap policy: replace).")
EXECUTION_CANCELLED = _("Cancelled before it started by %(user)s.")
EXECUTION_PAUSE_REFUSED = _("Only a running execution can be paused; this one is %(status)s.")
EXECUTION_RESUME_REFUSED = _(
    "Only a paused execution (to continue it) or a failed or terminated one (to restart it from its checkpoint) "
    "can be resumed; this one is %(status)s."
)
EXECUTION_TERMINATE_REFUSED = _("The execution has already ended (%(status)s).")
EXECUTION_MARK_REFUSED = _(
    "Only a finished run can be marked: success from failed, terminated or completed, failed from success "
    "or completed; this one is %(status)s."
)
EXECUTION_MARKED = _("Marked %(status)s by %(user)s.")
EXECUTION_MARKED_BECAUSE = _("Marked %(status)s by %(user)s: %(reason)s")
EXECUTION_RERUN_REFUSED = _("The execution is still active (%(status)s); terminate it or wait until it ends.")


def _who(user: Actor) -> str:
    actor = recorded_user(user)
    return actor.get_username() if actor is not None else gettext("the system")


def _current(execution: TaskExecution) -> TaskExecution:
    execution.refresh_from_db()
    return execution


def _record(
    *, user: Actor, action: OperatorAction.Action, execution: TaskExecution, reason: str, **details: Any
) -> None:
    """The OperatorAction of a control, in the control's transaction: the run, its task, the status it had."""
    action_record(
        actor=user,
        action=action,
        task=execution.task,
        execution_id=execution.pk,
        reason=reason,
        details={"status": execution.status, **details},
    )


@transaction.atomic
def execution_enqueue(
    *,
    task: ScheduledTask,
    trigger: str,
    user: Actor,
    now: datetime | None = None,
    parent: TaskExecution | None = None,
    result: dict[str, Any] | None = None,
    current_item: str = "",
    config_override: dict[str, Any] | None = None,
) -> TaskExecution:
    """Write a `pending` run due now (TASK_RUN), after applying the task's overlap policy; returns it.

    `config_override` (validated by the caller) replaces keys of the task's config for this run.

    The task row is locked (`select_for_update`) for the decision and the insert, so two
    simultaneous requests give one run under `skip`. Raises RunActive when the policy refuses.
    """
    permissions.TASK_RUN.check(user)
    task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
    active = selectors.active_runs(task_ids=[task.pk]).get(task.pk, [])
    decision = overlap_decide(policy=task.overlap_policy, situation=Situation.REQUEST, active=active)
    if decision.verdict is Verdict.REFUSE:
        ids = ", ".join(f"#{run.id}" for run in active[:5])
        raise RunActive(gettext(EXECUTION_RUN_ACTIVE) % {"name": task.name, "ids": ids})
    if decision.replace:
        transitions.executions_stop(execution_ids=decision.replace, reason=gettext(EXECUTION_REPLACED), now=now)
    actor = recorded_user(user)
    return transitions.execution_queue(
        task_id=task.pk,
        trigger=trigger,
        triggered_by_id=actor.pk if actor is not None else None,
        parent_id=parent.pk if parent is not None else None,
        result=result,
        current_item=current_item,
        config_override=config_override,
        now=now,
    )


@transaction.atomic
def execution_pause(
    *, execution: TaskExecution, user: Actor, now: datetime | None = None, reason: str = ""
) -> TaskExecution:
    """Ask the runner to pause a running execution (is_paused = True); raises InvalidState otherwise.

    Each control records an OperatorAction with the operator's `reason` when it is done."""
    permissions.EXECUTION_CONTROL.check(user)
    requested = transitions.executions_request_pause(execution_ids=[execution.pk], now=now)
    execution = _current(execution)
    if not requested:
        raise InvalidState(gettext(EXECUTION_PAUSE_REFUSED) % {"status": execution.status})
    _record(user=user, action=OperatorAction.Action.PAUSE_RUN, execution=execution, reason=reason)
    return execution


@transaction.atomic
def execution_resume(
    *, execution: TaskExecution, user: Actor, now: datetime | None = None, reason: str = ""
) -> TaskExecution:
    """Continue a paused run, or restart a failed or terminated one from its checkpoint.

    A paused run (or a running one with a pending pause request) gets is_paused = False and is
    returned itself. A failed or terminated run gets a new `pending` run (trigger `resume`, parent =
    the old run, `result.resume_from_execution_id`, the old `current_item` as checkpoint) under the
    task's overlap policy, and the NEW run is returned. Anything else raises InvalidState.
    """
    permissions.EXECUTION_CONTROL.check(user)
    if transitions.executions_request_resume(execution_ids=[execution.pk], now=now):
        execution = _current(execution)
        _record(user=user, action=OperatorAction.Action.RESUME_RUN, execution=execution, reason=reason)
        return execution
    execution = _current(execution)
    if execution.status in (Status.FAILED, Status.TERMINATED):
        resumed = execution_enqueue(
            task=execution.task,
            trigger=TaskExecution.Trigger.RESUME,
            user=user,
            now=now,
            parent=execution,
            result={"resume_from_execution_id": execution.pk},
            current_item=execution.current_item,
            config_override=execution.config_override,  # the restart runs what the run ran
        )
        action = OperatorAction.Action.RESUME_RUN
        _record(user=user, action=action, execution=execution, reason=reason, new_execution_id=resumed.pk)
        return resumed
    raise InvalidState(gettext(EXECUTION_RESUME_REFUSED) % {"status": execution.status})


@transaction.atomic
def execution_terminate(
    *, execution: TaskExecution, user: Actor, reason: str | None = None, now: datetime | None = None
) -> TaskExecution:
    """Stop a run: a pending one is cancelled at once (terminated), a started one gets terminate_requested.

    Returns the execution as it is now: still active means the runner has been asked to stop it.
    Raises InvalidState when it has already ended. The operator's `reason` is recorded, and is the
    cancelled run's message (else "cancelled by <user>").
    """
    permissions.EXECUTION_CONTROL.check(user)
    message = reason or gettext(EXECUTION_CANCELLED) % {"user": _who(user)}
    cancelled = transitions.executions_cancel(execution_ids=[execution.pk], reason=message, now=now)
    requested = 0 if cancelled else transitions.executions_request_terminate(execution_ids=[execution.pk], now=now)
    execution = _current(execution)
    if not (cancelled or requested):
        raise InvalidState(gettext(EXECUTION_TERMINATE_REFUSED) % {"status": execution.status})
    action = OperatorAction.Action.TERMINATE
    _record(user=user, action=action, execution=execution, reason=reason or "", cancelled=bool(cancelled))
    return execution


@transaction.atomic
def execution_rerun(
    *, execution: TaskExecution, user: Actor, now: datetime | None = None, reason: str = ""
) -> TaskExecution:
    """Queue a new manual run of the execution's task (same overlap rules as "run now"); returns it."""
    permissions.EXECUTION_CONTROL.check(user)
    execution = _current(execution)
    if execution.is_active:
        raise InvalidState(gettext(EXECUTION_RERUN_REFUSED) % {"status": execution.status})
    rerun = execution_enqueue(task=execution.task, trigger=TaskExecution.Trigger.MANUAL, user=user, now=now)
    action = OperatorAction.Action.RERUN
    _record(user=user, action=action, execution=execution, reason=reason, new_execution_id=rerun.pk)
    return rerun


MARK_ACTIONS = {Status.SUCCESS: OperatorAction.Action.MARK_SUCCESS, Status.FAILED: OperatorAction.Action.MARK_FAILED}


@transaction.atomic
def execution_mark(
    *, execution: TaskExecution, status: str, user: Actor, reason: str = "", now: datetime | None = None
) -> TaskExecution:
    """Correct how a finished run ended: mark it `success` or `failed` (EXECUTION_CONTROL).

    Through runtime.transitions.execution_mark (which states allow it); recorded as an OperatorAction
    with who and the optional reason, in the same transaction. Raises InvalidState when the run's
    state does not allow the mark, ValueError for a status other than success or failed.
    """
    permissions.EXECUTION_CONTROL.check(user)
    if status not in MARK_ACTIONS:
        raise ValueError(f"an execution is marked success or failed, not {status!r}")
    reason = (reason or "").strip()[:REASON_MAX_LENGTH]
    words = {"status": Status(status).label.lower(), "user": _who(user), "reason": reason}
    message = gettext(EXECUTION_MARKED_BECAUSE if reason else EXECUTION_MARKED) % words
    left = transitions.execution_mark(execution_id=execution.pk, status=status, message=message, now=now)
    execution = _current(execution)
    if left is None:
        raise InvalidState(gettext(EXECUTION_MARK_REFUSED) % {"status": execution.status})
    action_record(
        actor=user,
        action=MARK_ACTIONS[status],
        task=execution.task,
        execution_id=execution.pk,
        reason=reason,
        details={"from": left, "to": status},
    )
    return execution
