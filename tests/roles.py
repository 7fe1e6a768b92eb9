"""The roles the permission walks (tests/api, tests/admin) sign in as, and the world they act on.

A role is a set of scheduler_app permission codenames plus the user's flags. What each route needs is
written in the walks themselves, as groups of codenames (any one of a group, every group), so that the
tests state the rule independently of scheduler_app.services.permissions instead of asking it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any

from django.utils import timezone

from scheduler_app.models import (
    BlackoutWindow,
    Calendar,
    CalendarDay,
    NotificationDelivery,
    NotificationEvent,
    NotificationSubscription,
    ScheduledTask,
    SchedulerNode,
    SchedulerState,
    TaskExecution,
)
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, user_with

VIEW = "view_scheduledtask"
ADD = "add_scheduledtask"
CHANGE = "change_scheduledtask"
DELETE = "delete_scheduledtask"
RUN = "run_scheduledtask"
COMMAND = "change_command_scheduledtask"
VIEW_RUNS = "view_taskexecution"
DELETE_RUNS = "delete_taskexecution"
VIEW_NODES = "view_schedulernode"
DELETE_NODES = "delete_schedulernode"
# The calendar and notification models: (view, add, change, delete) of each.
CALENDAR = tuple(f"{verb}_calendar" for verb in ("view", "add", "change", "delete"))
BLACKOUT = tuple(f"{verb}_blackoutwindow" for verb in ("view", "add", "change", "delete"))
SUBSCRIPTION = tuple(f"{verb}_notificationsubscription" for verb in ("view", "add", "change", "delete"))
EVENT = tuple(f"{verb}_notificationevent" for verb in ("view", "add", "change", "delete"))
DELIVERY = tuple(f"{verb}_notificationdelivery" for verb in ("view", "add", "change", "delete"))
SETTINGS_MODELS = (
    "calendar",
    "blackoutwindow",
    "notificationsubscription",
    "notificationevent",
    "notificationdelivery",
)

# What the routes need, as the docs' permission table says it: each group is satisfied by any one of its
# permissions (Django's rule: change implies view).
TASKS_SEEN = frozenset({VIEW, CHANGE})
RUNS_SEEN = frozenset({VIEW_RUNS, "change_taskexecution"})
NODES_SEEN = frozenset({VIEW_NODES, "change_schedulernode"})
TASK_FORM = frozenset({VIEW, ADD, CHANGE})


def seen(model: tuple[str, ...]) -> frozenset[str]:
    """A model's view or change permission (Django's rule: change implies view)."""
    return frozenset({model[0], model[2]})


def needs(*groups: str | frozenset[str]) -> tuple[frozenset[str], ...]:
    return tuple(group if isinstance(group, frozenset) else frozenset({group}) for group in groups)


@dataclass(frozen=True)
class Role:
    permissions: frozenset[str] = frozenset()
    staff: bool = False
    superuser: bool = False
    signed_in: bool = True

    def may(self, required: tuple[frozenset[str], ...]) -> bool:
        if not self.signed_in:
            return False
        return self.superuser or all(group & self.permissions for group in required)


# Every model permission of the app, and run: everything but the command permission.
EDITOR = frozenset(
    f"{verb}_{model}"
    for verb in ("add", "change", "delete", "view")
    for model in ("scheduledtask", "taskexecution", "schedulernode", "schedulerstate", *SETTINGS_MODELS)
) | {RUN}
ROLES: dict[str, Role] = {
    "anonymous": Role(signed_in=False),
    "no_perm": Role(),
    "staff": Role(staff=True),
    "task_viewer": Role(frozenset({VIEW})),
    "viewer": Role(frozenset({VIEW, VIEW_RUNS, VIEW_NODES} | {f"view_{model}" for model in SETTINGS_MODELS})),
    "runner": Role(frozenset({RUN})),
    "changer": Role(frozenset({CHANGE})),
    "changer_command": Role(frozenset({CHANGE, COMMAND})),
    "editor": Role(EDITOR),
    # Change without view, add or delete, on calendars, windows and subscriptions; and the records' deletion
    # without their deliveries'.
    "settings_changer": Role(frozenset({CALENDAR[2], BLACKOUT[2], SUBSCRIPTION[2], EVENT[3], DELIVERY[0]})),
    "superuser": Role(staff=True, superuser=True),
}


def sign_up(name: str, role: Role, *, staff: bool | None = None):
    """The user of a role (None for anonymous); `staff` overrides the role's flag (the admin needs it)."""
    if not role.signed_in:
        return None
    is_staff = role.staff if staff is None else staff
    return user_with(name, *role.permissions, is_staff=is_staff, is_superuser=role.superuser)


COMMAND_CONFIG = {"command": "python -m scheduler_app.jobs.example_job --steps 1 --delay 0"}


@dataclass
class World:
    step: ScheduledTask
    flow: ScheduledTask
    cmd: ScheduledTask
    failed: TaskExecution
    node: SchedulerNode
    calendar: Calendar
    day: CalendarDay
    window: BlackoutWindow
    subscription: NotificationSubscription
    event: NotificationEvent
    delivery: NotificationDelivery


def build_world() -> World:
    """A manual action task (a workflow's step), the workflow, a scheduled command task (with an env, as a
    provider's token once was), a failed run with output, a scheduler node; a calendar with a holiday
    (used by nothing), a blackout window, a webhook subscription, and an event with its delivery."""
    step = ScheduledTaskFactory(name="step", task_type="manual_task", interval_seconds=None)
    flow = ScheduledTaskFactory(
        name="flow", task_type="workflow", interval_seconds=600, config={"tasks": [{"task_id": step.pk}]}
    )
    cmd = ScheduledTaskFactory(name="cmd", interval_seconds=600, config={**COMMAND_CONFIG, "env": {"TOKEN": "x"}})
    failed = TaskExecutionFactory(
        task=flow, status=TaskExecution.Status.FAILED, output_tail="secret output", result={"message": "m"}
    )
    now = timezone.now()
    node = SchedulerNode.objects.create(node_id="n1", host="testhost", pid=4242, started_at=now, last_heartbeat=now)
    calendar = Calendar.objects.create(name="SSE", weekdays="1-5")
    day = CalendarDay.objects.create(calendar=calendar, date=now.date(), note="holiday")
    window = BlackoutWindow.objects.create(name="lunch", from_time=time(11, 30), until_time=time(13))
    subscription = NotificationSubscription.objects.create(
        name="on call", channel="webhook", webhook_url="https://hooks.example.com/x", on_failure=True
    )
    event = NotificationEvent.objects.create(
        kind="failed", key=f"failed:{failed.pk}", summary="flow failed", task=flow, detected_at=now
    )
    delivery = NotificationDelivery.objects.create(
        event=event,
        subscription=subscription,
        kind="failed",
        task=flow,
        channel="webhook",
        target=subscription.webhook_url,
        created_at=now,
    )
    return World(
        step=step,
        flow=flow,
        cmd=cmd,
        failed=failed,
        node=node,
        calendar=calendar,
        day=day,
        window=window,
        subscription=subscription,
        event=event,
        delivery=delivery,
    )


def db_state() -> tuple[Any, ...]:
    """Everything a refused request must leave as it was: task rows, execution rows, nodes, calendars and their
    days, blackout windows, notification subscriptions, events and deliveries, the schedule version."""
    models = (
        ScheduledTask,
        TaskExecution,
        SchedulerNode,
        Calendar,
        CalendarDay,
        BlackoutWindow,
        NotificationSubscription,
        NotificationEvent,
        NotificationDelivery,
    )
    return (
        *(list(model.objects.order_by("pk").values()) for model in models),
        SchedulerState.objects.filter(pk=1).values_list("schedule_version", flat=True).first(),
    )


def work_state() -> list[tuple[Any, ...]]:
    """What every task runs (type and config)."""
    return list(ScheduledTask.objects.order_by("pk").values_list("pk", "task_type", "config"))
