"""Execution services: queue a run under the task's overlap policy, and the operator's controls.

Nothing here runs work: a queued run is a `pending` row that the scheduler process claims, and
pause / resume / terminate set flags that the runner reads (docs/internals.md, "Control flags").
Every status change is a conditional UPDATE (`status__in=...`), so a terminal row never changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.exceptions import InvalidState, RunActive
from scheduler_app.models import ScheduledTask, TaskExecution

User = AbstractBaseUser | AnonymousUser | None
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
EXECUTION_RERUN_REFUSED = _("The execution is still active (%(status)s); terminate it or wait until it ends.")


def _actor(user: User) -> AbstractBaseUser | None:
    return user if user is not None and user.is_authenticated else None


def _who(user: User) -> str:
    actor = _actor(user)
    return actor.get_username() if actor is not None else gettext("the system")


def executions_replace(*, execution_ids: list[int], now: datetime | None = None) -> int:
    """Make way for a newer run (overlap policy replace): queued runs are cancelled at once (runs
    handed over to Celery included), started ones are asked to terminate. Returns the rows changed."""
    now = now or timezone.now()
    # Cancel the queued ones first; a row claimed meanwhile is caught by the second UPDATE.
    cancelled = TaskExecution.objects.filter(pk__in=execution_ids, status=Status.PENDING).update(
        status=Status.TERMINATED,
        terminate_requested=True,
        end_time=now,
        error_message=gettext(EXECUTION_REPLACED),
        updated_at=now,
    )
    return cancelled + TaskExecution.objects.filter(
        pk__in=execution_ids, status__in=TaskExecution.STARTED_STATUSES
    ).update(terminate_requested=True, updated_at=now)


@transaction.atomic
def execution_enqueue(
    *,
    task: ScheduledTask,
    trigger: str,
    user: User,
    now: datetime | None = None,
    parent: TaskExecution | None = None,
    result: dict[str, Any] | None = None,
    current_item: str = "",
) -> TaskExecution:
    """Write a `pending` run due now, after applying the task's overlap policy; returns it.

    The task row is locked (`select_for_update`) for the check and the insert, so two simultaneous
    requests give one run under `skip`. Raises RunActive when the policy refuses.
    """
    now = now or timezone.now()
    task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
    active = list(TaskExecution.objects.filter(task=task).active().order_by("pk").values_list("pk", "status"))
    if active and task.overlap_policy == ScheduledTask.OverlapPolicy.SKIP:
        ids = ", ".join(f"#{pk} {status}" for pk, status in active[:5])
        raise RunActive(gettext(EXECUTION_RUN_ACTIVE) % {"name": task.name, "ids": ids})
    if active and task.overlap_policy == ScheduledTask.OverlapPolicy.REPLACE:
        executions_replace(execution_ids=[pk for pk, _status in active], now=now)
    execution = TaskExecution(
        task=task,
        status=Status.PENDING,
        trigger=trigger,
        triggered_by=_actor(user),
        scheduled_for=now,
        parent=parent,
        current_item=current_item[:255],
    )
    execution.set_result(result)
    # The related rows are known to exist; the (task, scheduled_for) key is handled on insert below.
    execution.full_clean(exclude=["task", "parent", "triggered_by"], validate_unique=False, validate_constraints=False)
    for attempt in range(3):
        try:
            with transaction.atomic():
                execution.save(force_insert=True)
            break
        except IntegrityError:
            # Another run of this task is due at the very same microsecond (a scheduled occurrence).
            if attempt == 2:
                raise
            execution.scheduled_for += timedelta(microseconds=1)
    return execution


def execution_pause(*, execution: TaskExecution, user: User, now: datetime | None = None) -> TaskExecution:
    """Ask the runner to pause a running execution (is_paused = True); raises InvalidState otherwise."""
    now = now or timezone.now()
    updated = TaskExecution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(
        is_paused=True, updated_at=now
    )
    execution.refresh_from_db()
    if not updated:
        raise InvalidState(gettext(EXECUTION_PAUSE_REFUSED) % {"status": execution.status})
    return execution


def execution_resume(*, execution: TaskExecution, user: User, now: datetime | None = None) -> TaskExecution:
    """Continue a paused run, or restart a failed or terminated one from its checkpoint.

    A paused run (or a running one with a pending pause request) gets is_paused = False and is
    returned itself. A failed or terminated run gets a new `pending` run (trigger `resume`, parent =
    the old run, `result.resume_from_execution_id`, the old `current_item` as checkpoint) under the
    task's overlap policy, and the NEW run is returned. Anything else raises InvalidState.
    """
    now = now or timezone.now()
    updated = (
        TaskExecution.objects.filter(pk=execution.pk, status__in=TaskExecution.STARTED_STATUSES)
        .filter(Q(status=Status.PAUSED) | Q(is_paused=True))
        .update(is_paused=False, updated_at=now)
    )
    execution.refresh_from_db()
    if updated:
        return execution
    if execution.status in (Status.FAILED, Status.TERMINATED):
        return execution_enqueue(
            task=execution.task,
            trigger=TaskExecution.Trigger.RESUME,
            user=user,
            now=now,
            parent=execution,
            result={"resume_from_execution_id": execution.pk},
            current_item=execution.current_item,
        )
    raise InvalidState(gettext(EXECUTION_RESUME_REFUSED) % {"status": execution.status})


def execution_terminate(
    *, execution: TaskExecution, user: User, reason: str | None = None, now: datetime | None = None
) -> TaskExecution:
    """Stop a run: a pending one is cancelled at once (terminated), a started one gets terminate_requested.

    Returns the execution as it is now: still active means the runner has been asked to stop it.
    Raises InvalidState when it has already ended.
    """
    now = now or timezone.now()
    cancelled = TaskExecution.objects.filter(pk=execution.pk, status=Status.PENDING).update(
        status=Status.TERMINATED,
        terminate_requested=True,
        end_time=now,
        error_message=reason or gettext(EXECUTION_CANCELLED) % {"user": _who(user)},
        updated_at=now,
    )
    requested = 0
    if not cancelled:
        requested = TaskExecution.objects.filter(pk=execution.pk, status__in=TaskExecution.STARTED_STATUSES).update(
            terminate_requested=True, updated_at=now
        )
    execution.refresh_from_db()
    if not (cancelled or requested):
        raise InvalidState(gettext(EXECUTION_TERMINATE_REFUSED) % {"status": execution.status})
    return execution


def execution_rerun(*, execution: TaskExecution, user: User, now: datetime | None = None) -> TaskExecution:
    """Queue a new manual run of the execution's task (same overlap rules as "run now"); returns it."""
    execution.refresh_from_db()
    if execution.is_active:
        raise InvalidState(gettext(EXECUTION_RERUN_REFUSED) % {"status": execution.status})
    return execution_enqueue(task=execution.task, trigger=TaskExecution.Trigger.MANUAL, user=user, now=now)
