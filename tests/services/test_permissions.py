"""The permission rule: who passes a rule, what counts as changing what a task runs, and every service
refusing an actor without its permission before it writes anything."""

from __future__ import annotations

from datetime import date, time

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.utils import translation

from scheduler_app.calendars import calendar_sources_publish
from scheduler_app.exceptions import PermissionDenied, SchedulerError
from scheduler_app.models import TaskExecution
from scheduler_app.services import blackouts as blackout_services
from scheduler_app.services import calendars as calendar_services
from scheduler_app.services import executions as execution_services
from scheduler_app.services import permissions
from scheduler_app.services import tasks as task_services
from scheduler_app.services.permissions import SYSTEM, Work, task_work_allowed
from tests.factories import (
    BlackoutWindowFactory,
    CalendarFactory,
    ScheduledTaskFactory,
    TaskExecutionFactory,
    user_with,
)
from tests.roles import COMMAND_CONFIG, db_state
from zquant_site.demo import DEMO_TASKS, DEMO_WORKFLOWS, demo_tasks_create

pytestmark = pytest.mark.django_db

ACTION = {"task_action": "example_task", "steps": 2}


class TestRules:
    def test_the_system_passes_every_rule(self):
        assert permissions.TASK_COMMAND.allows(SYSTEM)
        assert permissions.EXECUTION_CONTROL.allows(SYSTEM)

    @pytest.mark.parametrize("actor", [None, AnonymousUser()], ids=["None", "anonymous"])
    def test_nobody_passes_any_rule(self, actor):
        assert not permissions.TASK_VIEW.allows(actor)
        with pytest.raises(PermissionDenied):
            permissions.TASK_VIEW.check(actor)

    def test_staff_alone_grants_nothing(self):
        staff = user_with("staff", is_staff=True)
        assert not permissions.TASK_VIEW.allows(staff)
        assert not permissions.TASK_CHANGE.allows(staff)

    def test_a_superuser_passes_unless_inactive(self):
        root = user_with("root", is_superuser=True)
        assert permissions.TASK_COMMAND.allows(root)
        root.is_active = False
        assert not permissions.TASK_COMMAND.allows(root)

    def test_change_implies_view_as_in_django(self):
        assert permissions.TASK_VIEW.allows(user_with("editor", "change_scheduledtask"))

    def test_every_group_is_needed(self):
        assert not permissions.EXECUTION_CONTROL.allows(user_with("runner", "run_scheduledtask"))
        assert permissions.EXECUTION_CONTROL.allows(user_with("both", "run_scheduledtask", "view_taskexecution"))

    def test_the_refusal_names_what_is_missing_and_is_a_403_everywhere(self):
        with pytest.raises(PermissionDenied) as caught:
            permissions.EXECUTION_CONTROL.check(user_with("nobody"))
        assert caught.value.code == "permission_denied"
        assert caught.value.message == (
            'You do not have permission to control executions (it needs "scheduler_app.run_scheduledtask" and one of '
            '"scheduler_app.view_taskexecution", "scheduler_app.change_taskexecution").'
        )
        # The admin's messages catch it as a SchedulerError; Django and DRF answer it with 403 where nothing does.
        assert isinstance(caught.value, SchedulerError)
        assert isinstance(caught.value, DjangoPermissionDenied)


def work(task_type: str, config) -> Work:
    return Work(task_type, config)


# (what is written, what was stored before or None for a new task, whether the command permission is needed)
WORK_CASES = {
    "a new action task": (work("common_task", ACTION), None, False),
    "a new workflow listing a command task": (work("workflow", {"tasks": [{"task_id": 1}]}), None, False),
    "a new command task": (work("manual_task", COMMAND_CONFIG), None, True),
    "a new task with an empty command": (work("manual_task", {"command": "", **ACTION}), None, True),
    "a new task of another app's executor": (work("shell_task", {}), None, True),
    "an action's parameters": (work("common_task", {**ACTION, "steps": 9}), work("common_task", ACTION), False),
    "another action": (work("common_task", {"task_action": "cleanup"}), work("common_task", ACTION), False),
    "an action task becomes manual": (work("manual_task", ACTION), work("common_task", ACTION), False),
    "a workflow's steps": (work("workflow", {"tasks": [{"task_id": 2}]}), work("workflow", {"tasks": []}), False),
    "an action becomes a command": (work("common_task", COMMAND_CONFIG), work("common_task", ACTION), True),
    "a workflow becomes a command": (work("common_task", COMMAND_CONFIG), work("workflow", {"tasks": []}), True),
    "a command's env": (
        work("common_task", {**COMMAND_CONFIG, "env": {"A": "1"}}),
        work("common_task", COMMAND_CONFIG),
        True,
    ),
    "a command's env_from": (
        work("common_task", {**COMMAND_CONFIG, "env_from": ["token"]}),
        work("common_task", COMMAND_CONFIG),
        True,
    ),
    "a command's work_dir": (
        work("common_task", {**COMMAND_CONFIG, "work_dir": "/tmp"}),
        work("common_task", COMMAND_CONFIG),
        True,
    ),
    "a command's timeout in its config": (
        work("common_task", {**COMMAND_CONFIG, "timeout_seconds": 5}),
        work("common_task", COMMAND_CONFIG),
        True,
    ),
    "a command becomes an action": (work("common_task", ACTION), work("common_task", COMMAND_CONFIG), True),
    "a command task becomes manual": (work("manual_task", COMMAND_CONFIG), work("common_task", COMMAND_CONFIG), True),
    "a command's 1 becomes true": (
        work("common_task", {**COMMAND_CONFIG, "env": {"A": True}}),
        work("common_task", {**COMMAND_CONFIG, "env": {"A": 1}}),
        True,
    ),
    "a command unchanged, keys in another order": (
        work("common_task", {"timeout_seconds": 5, **COMMAND_CONFIG}),
        work("common_task", {**COMMAND_CONFIG, "timeout_seconds": 5}),
        False,
    ),
}


@pytest.mark.parametrize(("written", "stored", "needed"), WORK_CASES.values(), ids=WORK_CASES.keys())
def test_what_counts_as_changing_what_a_task_runs(written, stored, needed):
    editor = user_with("editor", "add_scheduledtask", "change_scheduledtask")
    commander = user_with("commander", "add_scheduledtask", "change_scheduledtask", "change_command_scheduledtask")
    assert task_work_allowed(actor=editor, work=written, before=stored) is not needed
    assert task_work_allowed(actor=commander, work=written, before=stored)
    assert task_work_allowed(actor=SYSTEM, work=written, before=stored)


def world() -> dict[str, object]:
    step = ScheduledTaskFactory(name="step", task_type="manual_task", interval_seconds=None)
    cmd = ScheduledTaskFactory(name="cmd", config=COMMAND_CONFIG)
    running = TaskExecutionFactory(status=TaskExecution.Status.RUNNING)  # of a task of its own: step may run again
    failed = TaskExecutionFactory(task=step, status=TaskExecution.Status.FAILED)
    calendar = CalendarFactory(name="SSE")
    window = BlackoutWindowFactory(name="lunch", from_time=time(11, 30), until_time=time(13))
    return {"step": step, "cmd": cmd, "running": running, "failed": failed, "calendar": calendar, "window": window}


NEW_ACTION = {"name": "new", "task_type": "manual_task", "config": ACTION}
NEW_COMMAND = {"name": "new", "task_type": "manual_task", "config": COMMAND_CONFIG}
NEW_WINDOW = {"name": "close", "kind": "daily", "from_time": time(14, 55), "until_time": time(15)}

# service call -> the permissions that suffice for it (and all of which it needs)
SERVICES = {
    "create an action task": (lambda w, u: task_services.task_create(data=NEW_ACTION, user=u), ["add"]),
    "create a command task": (lambda w, u: task_services.task_create(data=NEW_COMMAND, user=u), ["add", "command"]),
    "update": (lambda w, u: task_services.task_update(task=w["step"], data={"description": "x"}, user=u), ["change"]),
    "update a command": (
        lambda w, u: task_services.task_update(task=w["cmd"], data={"config": {"command": "true"}}, user=u),
        ["change", "command"],
    ),
    "delete": (lambda w, u: task_services.task_delete(task=w["cmd"], user=u), ["delete"]),
    "disable": (lambda w, u: task_services.task_disable(task=w["cmd"], user=u), ["change"]),
    "pause": (lambda w, u: task_services.task_pause(task=w["cmd"], user=u), ["change"]),
    "copy": (lambda w, u: task_services.task_copy(task=w["step"], user=u), ["add", "view"]),
    "copy a command task": (lambda w, u: task_services.task_copy(task=w["cmd"], user=u), ["add", "view", "command"]),
    "trigger": (lambda w, u: task_services.task_trigger(task=w["cmd"], user=u), ["run"]),
    "pause a run": (lambda w, u: execution_services.execution_pause(execution=w["running"], user=u), ["run", "runs"]),
    "terminate a run": (
        lambda w, u: execution_services.execution_terminate(execution=w["running"], user=u),
        ["run", "runs"],
    ),
    "resume a run": (lambda w, u: execution_services.execution_resume(execution=w["failed"], user=u), ["run", "runs"]),
    "rerun a run": (lambda w, u: execution_services.execution_rerun(execution=w["failed"], user=u), ["run", "runs"]),
    "create the demo tasks": (lambda w, u: demo_tasks_create(user=u), ["add", "command"]),
    "create a calendar": (lambda w, u: calendar_services.calendar_create(data={"name": "new"}, actor=u), ["calendar+"]),
    "change a calendar": (
        lambda w, u: calendar_services.calendar_update(calendar=w["calendar"], data={"description": "x"}, actor=u),
        ["calendar~"],
    ),
    "replace a calendar's days": (
        lambda w, u: calendar_services.calendar_days_replace(
            calendar=w["calendar"], days=[calendar_services.DaySpec(date(2024, 1, 2))], actor=u
        ),
        ["calendar~"],
    ),
    "delete a calendar": (
        lambda w, u: calendar_services.calendar_delete(calendar=w["calendar"], actor=u),
        ["calendar-"],
    ),
    "create a blackout window": (lambda w, u: blackout_services.blackout_create(data=NEW_WINDOW, actor=u), ["window+"]),
    "change a blackout window": (
        lambda w, u: blackout_services.blackout_update(window=w["window"], data={"action": "defer"}, actor=u),
        ["window~"],
    ),
    "delete a blackout window": (
        lambda w, u: blackout_services.blackout_delete(window=w["window"], actor=u),
        ["window-"],
    ),
}
CODENAMES = {
    "add": "add_scheduledtask",
    "change": "change_scheduledtask",
    "delete": "delete_scheduledtask",
    "view": "view_scheduledtask",
    "run": "run_scheduledtask",
    "command": "change_command_scheduledtask",
    "runs": "view_taskexecution",
    "calendar+": "add_calendar",
    "calendar~": "change_calendar",
    "calendar-": "delete_calendar",
    "window+": "add_blackoutwindow",
    "window~": "change_blackoutwindow",
    "window-": "delete_blackoutwindow",
}


@pytest.mark.parametrize(("call", "enough"), SERVICES.values(), ids=SERVICES.keys())
def test_each_service_needs_its_permissions_and_no_more(call, enough, django_capture_on_commit_callbacks):
    objects = world()
    for missing in enough:
        short = user_with(f"without-{missing}", *(CODENAMES[name] for name in enough if name != missing))
        before = db_state()
        with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(PermissionDenied):
            call(objects, short)
        assert db_state() == before, f"refused without {missing} but wrote"
        assert not callbacks
    call(objects, user_with("enough", *(CODENAMES[name] for name in enough)))  # and with them all, no refusal


@pytest.mark.parametrize("call", [v[0] for v in SERVICES.values()], ids=SERVICES.keys())
def test_none_is_nobody(call):
    with pytest.raises(PermissionDenied):
        call(world(), None)


def test_the_system_may_do_what_no_user_may():
    task = task_services.task_create(data=NEW_COMMAND, user=SYSTEM)
    assert task.created_by is None
    execution = task_services.task_trigger(task=task, user=SYSTEM)
    assert execution.triggered_by is None
    calendar_sources_publish()  # the trading-day demo task needs the SSE calendar
    assert set(demo_tasks_create(user=SYSTEM).created) == {*DEMO_TASKS, *DEMO_WORKFLOWS}


def test_the_refusal_is_translated():
    with translation.override("zh-hans"), pytest.raises(PermissionDenied) as caught:
        permissions.TASK_COMMAND.check(user_with("nobody"))
    assert caught.value.message == '您没有权限创建或修改命令任务（需要 "scheduler_app.change_command_scheduledtask"）。'
