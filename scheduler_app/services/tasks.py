"""Task services: create, update, delete, enable, disable, pause, resume, copy and trigger.

The admin, the API and the scheduler's commands all write tasks through these functions. Each one
validates with `full_clean()` plus the checks that need the database (workflow steps, config
shape), runs in one transaction, and bumps the schedule version on commit when the scheduler must
see the change (`services.state.schedule_touch`). Calling several of them inside one
`transaction.atomic()` block (a bulk admin action) bumps the version once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.exceptions import TaskInUse
from scheduler_app.executors.registry import validate_config
from scheduler_app.models import MAX_ID, ScheduledTask, TaskExecution
from scheduler_app.selectors import workflows_using_task
from scheduler_app.services.executions import execution_enqueue
from scheduler_app.services.state import schedule_touch

User = AbstractBaseUser | AnonymousUser | None

# Fields a caller may set; job_id, the audit fields and the timestamps are the service's business.
EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "task_type",
    "cron_expression",
    "interval_seconds",
    "timezone",
    "enabled",
    "paused",
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


def _actor(user: User) -> AbstractBaseUser | None:
    return user if user is not None and user.is_authenticated else None


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
    if errors:
        raise ValidationError(errors)


def _save(task: ScheduledTask, **kwargs: Any) -> None:
    """Save; a name taken by a concurrent transaction after full_clean() is still a field error."""
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
def task_create(*, data: Mapping[str, Any], user: User) -> ScheduledTask:
    """Create a task from `data` (a subset of EDITABLE_FIELDS; the rest take the model defaults)."""
    task = ScheduledTask(**_editable(data), created_by=_actor(user), updated_by=_actor(user))
    task_validate(task=task)
    _save(task)
    schedule_touch()
    return task


@transaction.atomic
def task_update(*, task: ScheduledTask, data: Mapping[str, Any], user: User) -> ScheduledTask:
    """Change the fields in `data` (a subset of EDITABLE_FIELDS); the task type may change if the invariants hold."""
    fields = _editable(data)
    task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
    was_enabled = task.enabled
    for name, value in fields.items():
        setattr(task, name, value)
    task.updated_by = _actor(user)
    task_validate(task=task)
    if was_enabled and not task.enabled:
        _refuse_if_enabled_workflows_use(task, TASK_DISABLE_USED_BY_WORKFLOW)
    _save(task)
    schedule_touch()
    return task


@transaction.atomic
def task_delete(*, task: ScheduledTask) -> None:
    """Delete a task and its history; refused while a workflow lists it or one of its runs has started.

    Pending runs go with the task: nothing has claimed them yet, so there is nothing to stop.
    """
    task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
    users = workflows_using_task(task_id=task.pk)
    if users:
        raise TaskInUse(gettext(TASK_DELETE_USED_BY_WORKFLOW) % {"names": _names(users)})
    started = list(TaskExecution.objects.filter(task=task).started().values_list("pk", flat=True)[:10])
    if started:
        raise TaskInUse(gettext(TASK_DELETE_STARTED_RUNS) % {"ids": ", ".join(map(str, started))})
    task.delete()
    schedule_touch()


def _task_set_flag(*, task: ScheduledTask, field: str, value: bool, user: User) -> ScheduledTask:
    with transaction.atomic():
        task = ScheduledTask.objects.select_for_update().get(pk=task.pk)
        if getattr(task, field) == value:
            return task  # idempotent: no write, no version bump
        setattr(task, field, value)
        task.updated_by = _actor(user)
        if field == "enabled" and not value:
            _refuse_if_enabled_workflows_use(task, TASK_DISABLE_USED_BY_WORKFLOW)
        turning_on = value if field == "enabled" else not value
        if turning_on:
            # Turning a task on (enable, resume) must not start something invalid, e.g. a workflow whose
            # steps were disabled meanwhile. Turning it off is always allowed, even for a broken task.
            task_validate(task=task)
        task.save(update_fields=[field, "updated_by", "updated_at"])
        schedule_touch()
    return task


def task_enable(*, task: ScheduledTask, user: User) -> ScheduledTask:
    """Let the scheduler fire the task (idempotent); the task is validated again first."""
    return _task_set_flag(task=task, field="enabled", value=True, user=user)


def task_disable(*, task: ScheduledTask, user: User) -> ScheduledTask:
    """Stop scheduling the task (idempotent); refused while an enabled workflow lists it. Runs keep going."""
    return _task_set_flag(task=task, field="enabled", value=False, user=user)


def task_pause(*, task: ScheduledTask, user: User) -> ScheduledTask:
    """Hold the schedule (idempotent); running executions are not affected."""
    return _task_set_flag(task=task, field="paused", value=True, user=user)


def task_resume(*, task: ScheduledTask, user: User) -> ScheduledTask:
    """Release a paused schedule (idempotent); the task is validated again first."""
    return _task_set_flag(task=task, field="paused", value=False, user=user)


def _copy_name(name: str) -> str:
    limit = ScheduledTask._meta.get_field("name").max_length
    for number in range(1, 1000):
        suffix = COPY_SUFFIX if number == 1 else f"{COPY_SUFFIX}{number}"
        candidate = name[: limit - len(suffix)] + suffix
        if not ScheduledTask.objects.filter(name=candidate).exists():
            return candidate
    raise ValidationError({"name": [gettext(TASK_NAME_TAKEN)]})


@transaction.atomic
def task_copy(*, task: ScheduledTask, user: User) -> ScheduledTask:
    """A disabled copy named `<name>_副本` (numbered when taken), with a new job id and no history."""
    fields = {name: getattr(task, name) for name in EDITABLE_FIELDS}
    fields.update(name=_copy_name(task.name), enabled=False, paused=False)
    return task_create(data=fields, user=user)


def task_trigger(*, task: ScheduledTask, user: User, now: datetime | None = None) -> TaskExecution:
    """Queue a manual run ("run now") and return it; the scheduler process claims and runs it.

    Follows the task's overlap policy (docs/internals.md): `skip` refuses with RunActive (409) while
    a run is active; `replace` terminates the active runs first. Disabled and paused tasks may be
    triggered: it is an explicit operator action, and it neither schedules nor un-pauses anything.
    """
    return execution_enqueue(task=task, trigger=TaskExecution.Trigger.MANUAL, user=_actor(user), now=now)
