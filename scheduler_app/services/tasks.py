"""Task services: create, update, delete, enable, disable, pause, resume, copy and trigger.

The admin, the API and the scheduler's commands all write tasks through these functions. Each one
first checks that `user` may (services.permissions: PermissionDenied otherwise, before anything is
locked or written), validates with `full_clean()` plus the checks that need the database (workflow
steps, config shape), runs in one transaction, and bumps the schedule version on commit when the
scheduler must see the change (`services.state.schedule_touch`). Calling several of them inside one
`transaction.atomic()` block (a bulk admin action) bumps the version once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.utils import bulk_update_with_history

from scheduler_app.exceptions import TaskInUse
from scheduler_app.executors.registry import validate_config
from scheduler_app.models import (
    MAX_ID,
    Calendar,
    OperatorAction,
    ScheduledTask,
    TaskExecution,
    config_problem,
    run_config,
)
from scheduler_app.schedules import InvalidSchedule
from scheduler_app.selectors import workflows_using_task
from scheduler_app.services import permissions
from scheduler_app.services.audit import action_record
from scheduler_app.services.executions import execution_enqueue
from scheduler_app.services.permissions import Actor, Work, recorded_user
from scheduler_app.services.state import schedule_touch
from scheduler_app.triggers import UnknownCalendar, build_task_trigger, timing_of

# Fields a caller may set; job_id, the audit fields and the timestamps are the service's business.
EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "task_type",
    "cron_expression",
    "interval_seconds",
    "timezone",
    "run_at",
    "calendar",
    "calendar_rule",
    "calendar_n",
    "event_calendar",
    "valid_from",
    "valid_until",
    "jitter_seconds",
    "enabled",
    "paused",
    "paused_until",
    "description",
    "config",
    "max_retries",
    "retry_interval",
    "retry_backoff",
    "timeout_seconds",
    "overlap_policy",
    "misfire_grace_seconds",
    "catch_up",
    "retention_days",
    "retention_max_runs",
)
COPY_SUFFIX = "_副本"
MAX_TASK_ID = MAX_ID

TASK_NAME_TAKEN = _("A task with this name already exists.")
TASK_DELETE_USED_BY_WORKFLOW = _("The task is a step of the workflow(s) %(names)s; remove it from them first.")
TASK_DELETE_STARTED_RUNS = _("The task has started runs (%(ids)s); terminate them or wait until they end.")
TASK_DISABLE_USED_BY_WORKFLOW = _(
    "The task is a step of the enabled workflow(s) %(names)s; disable them or remove the task from them first."
)
TASK_RUN_AT_PASSED = _("The one-shot time has passed; choose a time in the future.")
TASK_PAUSED_UNTIL_PASSED = _("Pause until a time in the future.")
TASK_NO_SUCH_VERSION = _("The task has no version #%(id)s.")
TASK_RESTORED = _("Restored version #%(id)s of %(date)s")
TASK_PAUSE_ENDED = _("The timed pause ended")
TASK_VERSION_CALENDAR_GONE = _("The calendar of that version no longer exists.")


def _editable(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"Not editable task fields: {', '.join(unknown)}")
    return dict(data)


def _names(workflows: Iterable[ScheduledTask]) -> str:
    return ", ".join(f'"{workflow.name}"' for workflow in workflows)


def workflow_config_errors(*, config: Any, workflow_id: int | None = None) -> list[str]:
    """Every problem of a workflow config (spec 4.9 and what it missed); empty when it can run.

    `workflow_id` is the workflow being edited (None for a new one), for the self-reference and
    nesting checks. The same validator the workflow executor runs before every run.
    """
    return validate_config(ScheduledTask.TaskType.WORKFLOW, config, task_id=workflow_id)


def task_validate(*, task: ScheduledTask) -> None:
    """Every check a task must pass before it is saved; raises ValidationError with field errors."""
    errors: dict[str, list[str]] = {}
    try:
        task.full_clean()
    except ValidationError as error:
        errors = {field: list(messages) for field, messages in error.message_dict.items()}
    if "config" not in errors and "task_type" not in errors:
        # The validator of the executor that will run the config, the same one the runner calls.
        config_errors = validate_config(task.task_type, task.config, task_id=task.pk)
        if config_errors:
            errors["config"] = config_errors
    if not errors and task.is_scheduled:
        # The trigger the scheduler will build, built here from the same fields and calendars.
        try:
            build_task_trigger(timing_of(task), start_date=timezone.now())
        except UnknownCalendar as error:
            errors["calendar"] = [str(error)]
        except InvalidSchedule as error:
            errors["cron_expression"] = [str(error)]
    if errors:
        raise ValidationError(errors)


def _check_instants(task: ScheduledTask, *, before: ScheduledTask | None, enabling: bool = False) -> None:
    """Times that must lie ahead when they are set: a one-shot time (when an enabled task gets it,
    or is enabled with it; a run already recorded is never repeated) and "paused until"."""
    now = timezone.now()
    errors: dict[str, list[str]] = {}
    run_at_set = before is None or before.run_at != task.run_at or enabling
    if task.run_at is not None and task.enabled and run_at_set and task.run_at <= now:
        errors["run_at"] = [gettext(TASK_RUN_AT_PASSED)]
    until_set = before is None or before.paused_until != task.paused_until
    if task.paused_until is not None and until_set and task.paused_until <= now:
        errors["paused_until"] = [gettext(TASK_PAUSED_UNTIL_PASSED)]
    if errors:
        raise ValidationError(errors)


def _save(task: ScheduledTask, *, user: Actor, change_reason: str = "", **kwargs: Any) -> None:
    """Save; a name taken by a concurrent transaction after full_clean() is still a field error.

    The version the history keeps names `user` (the system: nobody) and the reason, if any."""
    task._history_user = recorded_user(user)
    task._change_reason = change_reason
    try:
        with transaction.atomic():
            task.save(**kwargs)
    except IntegrityError:
        if ScheduledTask.objects.filter(name=task.name).exclude(pk=task.pk).exists():
            raise ValidationError({"name": [gettext(TASK_NAME_TAKEN)]}) from None
        raise


def _refuse_if_enabled_workflows_use(task: ScheduledTask, message: str) -> None:
    users = [workflow for workflow in workflows_using_task(task_id=task.pk) if workflow.enabled]
    if users:
        raise TaskInUse(gettext(message) % {"names": _names(users)})


@transaction.atomic
def task_create(*, data: Mapping[str, Any], user: Actor) -> ScheduledTask:
    """Create a task from `data` (a subset of EDITABLE_FIELDS; the rest take the model defaults).

    Needs TASK_ADD, and TASK_COMMAND for a task that runs a program (permissions.task_work_check).
    """
    permissions.TASK_ADD.check(user)
    task = ScheduledTask(**_editable(data), created_by=recorded_user(user), updated_by=recorded_user(user))
    permissions.task_work_check(actor=user, work=Work.of(task), before=None)
    task_validate(task=task)
    _check_instants(task, before=None)
    _save(task, user=user)
    schedule_touch(task_ids=[task.pk])
    return task


@transaction.atomic
def task_update(*, task: ScheduledTask, data: Mapping[str, Any], user: Actor, change_reason: str = "") -> ScheduledTask:
    """Change the fields in `data` (a subset of EDITABLE_FIELDS); the task type may change if the invariants hold.

    Needs TASK_CHANGE, and TASK_COMMAND to change the type or config of a task that runs or would run
    a program (permissions.task_work_check), judged against the stored row. `change_reason` goes
    with the version the history keeps.
    """
    permissions.TASK_CHANGE.check(user)
    fields = _editable(data)
    task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
    before = ScheduledTask(run_at=task.run_at, paused_until=task.paused_until)
    was_enabled, stored_work = task.enabled, Work.of(task)
    for name, value in fields.items():
        setattr(task, name, value)
    if not task.paused and "paused_until" not in fields:
        task.paused_until = None  # resuming ends a timed pause too
    task.updated_by = recorded_user(user)
    permissions.task_work_check(actor=user, work=Work.of(task), before=stored_work)
    task_validate(task=task)
    _check_instants(task, before=before, enabling=task.enabled and not was_enabled)
    if was_enabled and not task.enabled:
        _refuse_if_enabled_workflows_use(task, TASK_DISABLE_USED_BY_WORKFLOW)
    _save(task, user=user, change_reason=change_reason)
    schedule_touch(task_ids=[task.pk])
    return task


@transaction.atomic
def task_delete(*, task: ScheduledTask, user: Actor) -> None:
    """Delete a task and its history (TASK_DELETE); refused while a workflow lists it or one of its runs has started.

    Pending runs go with the task: nothing has claimed them yet, so there is nothing to stop.
    """
    permissions.TASK_DELETE.check(user)
    task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
    users = workflows_using_task(task_id=task.pk)
    if users:
        raise TaskInUse(gettext(TASK_DELETE_USED_BY_WORKFLOW) % {"names": _names(users)})
    started = list(TaskExecution.objects.filter(task=task).started().values_list("pk", flat=True)[:10])
    if started:
        raise TaskInUse(gettext(TASK_DELETE_STARTED_RUNS) % {"ids": ", ".join(map(str, started))})
    task_pk = task.pk
    task._history_user = recorded_user(user)
    task.delete()
    schedule_touch(task_ids=[task_pk])


def _task_set_flag(
    *,
    task: ScheduledTask,
    field: str,
    value: bool,
    user: Actor,
    action: OperatorAction.Action,
    reason: str,
    paused_until: datetime | None = None,
) -> ScheduledTask:
    permissions.TASK_CHANGE.check(user)
    with transaction.atomic():
        task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
        before = ScheduledTask(run_at=task.run_at, paused_until=task.paused_until)
        if field == "paused":
            # Resuming ends a timed pause; pausing sets (or clears) its end.
            task.paused_until = paused_until if value else None
        if getattr(task, field) == value and task.paused_until == before.paused_until:
            # Idempotent: no write, no version bump; the operator's request is still on record.
            action_record(actor=user, action=action, task=task, reason=reason, details={"changed": False})
            return task
        setattr(task, field, value)
        task.updated_by = recorded_user(user)
        if field == "enabled" and not value:
            _refuse_if_enabled_workflows_use(task, TASK_DISABLE_USED_BY_WORKFLOW)
        turning_on = value if field == "enabled" else not value
        if turning_on:
            # Turning a task on (enable, resume) must not start something invalid, e.g. a workflow whose
            # steps were disabled meanwhile. Turning it off is always allowed, even for a broken task.
            task_validate(task=task)
        _check_instants(task, before=before, enabling=field == "enabled" and value)
        task._history_user = recorded_user(user)
        task._change_reason = reason
        task.save(update_fields=[field, "paused_until", "updated_by", "updated_at"])
        details: dict[str, Any] = {"changed": True}
        if field == "paused" and task.paused_until is not None:
            details["until"] = task.paused_until.isoformat()
        action_record(actor=user, action=action, task=task, reason=reason, details=details)
        schedule_touch(task_ids=[task.pk])
    return task


def task_enable(*, task: ScheduledTask, user: Actor, reason: str = "") -> ScheduledTask:
    """Let the scheduler fire the task (idempotent; TASK_CHANGE); the task is validated again first.

    Every state change here records an OperatorAction with the operator's `reason`."""
    action = OperatorAction.Action.ENABLE
    return _task_set_flag(task=task, field="enabled", value=True, user=user, action=action, reason=reason)


def task_disable(*, task: ScheduledTask, user: Actor, reason: str = "") -> ScheduledTask:
    """Stop scheduling the task (idempotent; TASK_CHANGE); refused while an enabled workflow lists it.

    Runs keep going."""
    action = OperatorAction.Action.DISABLE
    return _task_set_flag(task=task, field="enabled", value=False, user=user, action=action, reason=reason)


def task_pause(*, task: ScheduledTask, user: Actor, until: datetime | None = None, reason: str = "") -> ScheduledTask:
    """Hold the schedule (idempotent; TASK_CHANGE); running executions are not affected.

    With `until` (in the future) the pause ends by itself: the scheduler process resumes the task
    then (tasks_resume_expired), and occurrences from that instant on run. Pausing again replaces
    the end (None: paused until resumed by hand).
    """
    action = OperatorAction.Action.PAUSE
    return _task_set_flag(
        task=task, field="paused", value=True, user=user, action=action, reason=reason, paused_until=until
    )


def task_resume(*, task: ScheduledTask, user: Actor, reason: str = "") -> ScheduledTask:
    """Release a paused schedule (idempotent; TASK_CHANGE), a timed pause too; the task is validated again first."""
    action = OperatorAction.Action.RESUME
    return _task_set_flag(task=task, field="paused", value=False, user=user, action=action, reason=reason)


@transaction.atomic
def tasks_resume_expired(*, task_ids: Iterable[int], now: datetime | None = None) -> list[int]:
    """Resume the tasks among `task_ids` whose timed pause has ended (paused_until <= now); returns
    their ids. The scheduler process calls it when the time comes; one conditional UPDATE, so a
    task paused again meanwhile (or resumed by hand) is left as it is."""
    now = now or timezone.now()
    expired = ScheduledTask.objects.select_for_update().filter(
        pk__in=list(task_ids), paused=True, paused_until__lte=now
    )
    tasks = list(expired.order_by("pk"))
    for task in tasks:
        task.paused, task.paused_until, task.updated_at = False, None, now
    if tasks:
        # The rows are locked: one UPDATE each, and a version in the history, by the system.
        bulk_update_with_history(
            tasks,
            ScheduledTask,
            ["paused", "paused_until", "updated_at"],
            default_user=None,
            default_change_reason=gettext(TASK_PAUSE_ENDED),
            default_date=now,
        )
        schedule_touch(task_ids=[task.pk for task in tasks])
    return [task.pk for task in tasks]


def _copy_name(name: str) -> str:
    limit = ScheduledTask._meta.get_field("name").max_length
    for number in range(1, 1000):
        suffix = COPY_SUFFIX if number == 1 else f"{COPY_SUFFIX}{number}"
        candidate = name[: limit - len(suffix)] + suffix
        if not ScheduledTask.objects.filter(name=candidate).exists():
            return candidate
    raise ValidationError({"name": [gettext(TASK_NAME_TAKEN)]})


@transaction.atomic
def task_copy(*, task: ScheduledTask, user: Actor) -> ScheduledTask:
    """A disabled copy named `<name>_副本` (numbered when taken), with a new job id and no history.

    Needs TASK_COPY; the copy is a new task, so copying a command task needs TASK_COMMAND as creating one does.
    """
    permissions.TASK_COPY.check(user)
    fields = {name: getattr(task, name) for name in EDITABLE_FIELDS}
    fields.update(name=_copy_name(task.name), enabled=False, paused=False, paused_until=None)
    return task_create(data=fields, user=user)


@transaction.atomic
def task_trigger(
    *,
    task: ScheduledTask,
    user: Actor,
    config: dict[str, Any] | None = None,
    now: datetime | None = None,
    reason: str = "",
) -> TaskExecution:
    """Queue a manual run ("run now", TASK_RUN) and return it; the scheduler process claims and runs it.

    Follows the task's overlap policy (docs/internals.md): `skip` refuses with RunActive (409) while
    a run is active; `replace` terminates the active runs first. Disabled and paused tasks may be
    triggered: it is an explicit operator action, and it neither schedules nor un-pauses anything.

    `config` (run now with parameters) replaces keys of the task's config for this run only; the
    result is validated as a task config is (ValidationError on `config`, nothing queued), and a run
    that would execute a different program than the task's needs TASK_COMMAND as changing the task would.
    Records an OperatorAction (run now) with the new run and the `reason`.
    """
    permissions.TASK_RUN.check(user)
    if config is not None:
        task = ScheduledTask.objects.get(pk=task.pk)
        effective = run_config(task.config, config)
        problem = config_problem(config) or config_problem(effective)
        errors = [problem] if problem else validate_config(task.task_type, effective, task_id=task.pk)
        if errors:
            raise ValidationError({"config": errors})
        permissions.task_work_check(actor=user, work=Work(task.task_type, effective), before=Work.of(task))
    execution = execution_enqueue(
        task=task, trigger=TaskExecution.Trigger.MANUAL, user=user, now=now, config_override=config
    )
    action_record(actor=user, action=OperatorAction.Action.RUN_NOW, task=task, execution_id=execution.pk, reason=reason)
    return execution


@transaction.atomic
def task_restore(*, task: ScheduledTask, history_id: int, user: Actor, reason: str = "") -> ScheduledTask:
    """Make an earlier version of the task (`history_id`, one of its history rows) its current state.

    The version's fields go through task_update(), so the same permissions (TASK_CHANGE, and
    TASK_COMMAND when what it runs changes back), the same validation (a version whose calendar is
    gone, or whose one-shot time has passed, is refused with field errors) and the schedule sync
    apply. The name, the job id and the history stay. Records an OperatorAction (restore).
    """
    permissions.TASK_CHANGE.check(user)
    version = ScheduledTask.history.filter(id=task.pk, history_id=history_id).first()
    if version is None:
        raise ValidationError({"history_id": [gettext(TASK_NO_SUCH_VERSION) % {"id": history_id}]})
    data = {name: getattr(version, name) for name in EDITABLE_FIELDS if name not in ("calendar", "event_calendar")}
    data["calendar"] = _version_calendar(version, "calendar")
    data["event_calendar"] = _version_calendar(version, "event_calendar")
    data.pop("name")
    when = timezone.localtime(version.history_date).strftime("%Y-%m-%d %H:%M:%S")
    note = gettext(TASK_RESTORED) % {"id": history_id, "date": when}
    restored = task_update(task=task, data=data, user=user, change_reason=note[:100])
    details = {"history_id": history_id, "history_date": version.history_date.isoformat()}
    action_record(actor=user, action=OperatorAction.Action.RESTORE, task=restored, reason=reason, details=details)
    return restored


def _version_calendar(version: Any, field: str) -> Any:
    """The calendar a version named, if it still exists (a deleted one fails validation by its id)."""
    calendar_id = getattr(version, f"{field}_id")
    if calendar_id is None:
        return None
    calendar = Calendar.objects.filter(pk=calendar_id).first()
    if calendar is None:
        raise ValidationError({field: [gettext(TASK_VERSION_CALENDAR_GONE)]})
    return calendar
