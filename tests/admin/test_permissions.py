"""Walk every admin URL of the scheduler's models (from the admin site's get_urls()) as every role.

The admin asks for `is_staff` before anyone signs in (anonymous and non-staff users are sent to the
login page); inside, the same model permissions as the API's decide (tests/roles.py). Each URL has
cases: what passing the page's own check needs (`gate`: else 403), what the effect needs on top
(`needs`: else the `refused` answer, a form error or a message), and the superuser's answer. Every
refusal leaves the database as it was (tasks, executions, nodes, the schedule version, with on-commit
callbacks run). A URL added without a case fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLResolver, reverse

from scheduler_app.models import ScheduledTask
from tests.roles import (
    ADD,
    BLACKOUT,
    CALENDAR,
    CHANGE,
    COMMAND,
    COMMAND_CONFIG,
    DELETE,
    DELETE_NODES,
    DELETE_RUNS,
    DELIVERY,
    EVENT,
    NODES_SEEN,
    ROLES,
    RUN,
    RUNS_SEEN,
    SETTINGS_MODELS,
    SUBSCRIPTION,
    TASKS_SEEN,
    Role,
    World,
    build_world,
    db_state,
    needs,
    seen,
    sign_up,
    work_state,
)

OK, FOUND, FORBIDDEN, NOT_ALLOWED = 200, 302, 403, 405
MODELS = ("scheduledtask", "taskexecution", "schedulernode", *SETTINGS_MODELS)


@dataclass(frozen=True)
class Case:
    label: str
    gate: tuple[frozenset[str], ...]  # what the page's own check needs; without it, 403
    answer: int  # what a role with gate and needs gets
    target: str = "flow"  # the object of a task URL: step, flow or cmd
    data: dict[str, Any] | Callable[[World], dict[str, Any]] | None = None  # a POST's form data
    needs: tuple[frozenset[str], ...] = ()  # what the effect needs on top of the gate
    refused: frozenset[int] = frozenset()  # the answers to a role with the gate but not the needs
    unchanged: Callable[[], Any] = db_state  # what such a refusal leaves as it was


def form_of(task: str, **overrides: Any) -> Callable[[World], dict[str, str]]:
    """The task form's data for a task of the world, as the change page would post it, with overrides."""

    def data(world: World) -> dict[str, str]:
        stored: ScheduledTask = getattr(world, task)
        fields = {
            "name": stored.name,
            "task_type": stored.task_type,
            "description": stored.description,
            "enabled": "on" if stored.enabled else None,
            "cron_expression": stored.cron_expression or "",
            "interval_seconds": stored.interval_seconds or "",
            "timezone": stored.timezone,
            "misfire_grace_seconds": stored.misfire_grace_seconds,
            "catch_up": stored.catch_up,
            "config": json.dumps(stored.config),
            "max_retries": stored.max_retries,
            "retry_interval": stored.retry_interval,
            "retry_backoff": stored.retry_backoff,
            "timeout_seconds": stored.timeout_seconds or "",
            "overlap_policy": stored.overlap_policy,
            **overrides,
        }
        return {key: str(value) for key, value in fields.items() if value is not None}

    return data


def bulk(action: str, target: str, **extra: str) -> Callable[[World], dict[str, Any]]:
    def data(world: World) -> dict[str, Any]:
        return {"action": action, "_selected_action": [getattr(world, target).pk], **extra}

    return data


def calendar_form(**overrides: str) -> Callable[[World], dict[str, str]]:
    """The calendar form with its listed days (the inline) as the change page posts them."""

    def data(world: World) -> dict[str, str]:
        day = world.day
        return {
            "name": "SSE",
            "description": "",
            "weekdays": "1-5",
            "known_until": "",
            "days-TOTAL_FORMS": "1",
            "days-INITIAL_FORMS": "1",
            "days-MIN_NUM_FORMS": "0",
            "days-MAX_NUM_FORMS": "1000",
            "days-0-id": str(day.pk),
            "days-0-calendar": str(world.calendar.pk),
            "days-0-date": day.date.isoformat(),
            "days-0-kind": day.kind,
            "days-0-closes_at": "",
            "days-0-note": day.note,
            **overrides,
        }

    return data


NO_DAYS = {"days-TOTAL_FORMS": "0", "days-INITIAL_FORMS": "0", "days-MIN_NUM_FORMS": "0", "days-MAX_NUM_FORMS": "1000"}
WINDOW_FORM = {
    "name": "close",
    "task": "",
    "action": "skip",
    "enabled": "on",
    "description": "",
    "kind": "daily",
    "timezone": "Asia/Shanghai",
    "from_time": "14:55",
    "until_time": "15:00",
    "calendar": "",
    "starts_at_0": "",
    "starts_at_1": "",
    "ends_at_0": "",
    "ends_at_1": "",
}
SUBSCRIPTION_FORM = {
    "name": "on call",
    "enabled": "on",
    "task": "",
    "channel": "webhook",
    "email_to": "",
    "webhook_url": "https://hooks.example.com/x",
    "secret": "s" * 32,
    "on_failure": "on",
}


def editable_cases(
    model: str, perms: tuple[str, ...], target: str, add: dict[str, Any], change: Callable | dict[str, Any]
) -> dict[tuple[str, str, str], list[Case]]:
    """The URLs of a model edited in the admin by its own model permissions (view, add, change, delete)."""
    _view, add_perm, change_perm, delete = perms
    return {
        (model, "changelist", "GET"): [Case("list", needs(seen(perms)), OK)],
        (model, "changelist", "POST"): [
            Case(
                "bulk delete",
                needs(seen(perms)),
                FOUND,
                data=bulk("delete_selected", target, post="yes"),
                needs=needs(delete),
                refused=FORM_ERROR_OR_MESSAGE,
            )
        ],
        (model, "add", "GET"): [Case("form", needs(add_perm), OK)],
        (model, "add", "POST"): [Case("add", needs(add_perm), FOUND, data=add)],
        (model, "change", "GET"): [Case("form", needs(seen(perms)), OK)],
        (model, "change", "POST"): [Case("change", needs(change_perm), FOUND, data=change)],
        (model, "delete", "GET"): [Case("confirmation", needs(delete), OK)],
        (model, "delete", "POST"): [Case("delete", needs(delete), FOUND, data={"post": "yes"})],
        (model, "history", "GET"): [Case("history", needs(seen(perms)), OK)],
        (model, "redirect", "GET"): [Case("old change URL", EVERYONE, FOUND)],
    }


def record_cases(
    model: str, perms: tuple[str, ...], target: str, delete: tuple[frozenset[str], ...]
) -> dict[tuple[str, str, str], list[Case]]:
    """The URLs of a record the scheduler writes: seen and deleted (`delete` needs), never added or changed."""
    return {
        (model, "changelist", "GET"): [Case("list", needs(seen(perms)), OK)],
        (model, "changelist", "POST"): [
            Case(
                "bulk delete",
                needs(seen(perms)),
                FOUND,
                data=bulk("delete_selected", target, post="yes"),
                needs=delete,
                refused=FORM_ERROR_OR_MESSAGE,
            )
        ],
        (model, "add", "GET"): [Case("never written by hand", EVERYONE, FORBIDDEN)],
        (model, "add", "POST"): [Case("never written by hand", EVERYONE, FORBIDDEN, data={})],
        (model, "change", "GET"): [Case("read-only view", needs(seen(perms)), OK)],
        (model, "change", "POST"): [Case("read-only", EVERYONE, FORBIDDEN, data={})],
        (model, "delete", "GET"): [Case("confirmation", delete, OK)],
        (model, "delete", "POST"): [Case("delete", delete, FOUND, data={"post": "yes"})],
        (model, "history", "GET"): [Case("history", needs(seen(perms)), OK)],
        (model, "redirect", "GET"): [Case("old change URL", EVERYONE, FOUND)],
    }


FORM_ERROR_OR_MESSAGE = frozenset({OK, FOUND})  # a form again with the error, or a redirect with a message
EVERYONE = ()

# (model, URL name or "redirect", method) -> its cases
CASES: dict[tuple[str, str, str], list[Case]] = {
    ("scheduledtask", "changelist", "GET"): [Case("list", needs(TASKS_SEEN), OK)],
    ("scheduledtask", "changelist", "POST"): [
        Case(
            "bulk run now",
            needs(TASKS_SEEN),
            FOUND,
            data=bulk("run_tasks_now", "flow", index="0"),
            needs=needs(RUN),
            refused=FORM_ERROR_OR_MESSAGE,
        ),
        Case(
            "bulk disable",
            needs(TASKS_SEEN),
            FOUND,
            data=bulk("disable_tasks", "flow", index="0"),
            needs=needs(CHANGE),
            refused=FORM_ERROR_OR_MESSAGE,
        ),
        Case(
            "bulk copy of a command task",
            needs(TASKS_SEEN),
            FOUND,
            data=bulk("copy_tasks", "cmd", index="0"),
            needs=needs(ADD, COMMAND),
            refused=FORM_ERROR_OR_MESSAGE,
        ),
        Case(
            "bulk delete",
            needs(TASKS_SEEN),
            FOUND,
            data=bulk("delete_selected", "cmd", post="yes"),
            needs=needs(DELETE),
            refused=FORM_ERROR_OR_MESSAGE,
        ),
    ],
    ("scheduledtask", "add", "GET"): [Case("form", needs(ADD), OK)],
    ("scheduledtask", "add", "POST"): [
        Case(
            "an action task",
            needs(ADD),
            FOUND,
            data=form_of("step", name="new", config=json.dumps({"task_action": "example_task"})),
        ),
        Case(
            "a command task",
            needs(ADD),
            FOUND,
            data=form_of("step", name="new", config=json.dumps(COMMAND_CONFIG)),
            needs=needs(COMMAND),
            refused=frozenset({OK}),
        ),
    ],
    ("scheduledtask", "change", "GET"): [
        Case("a workflow", needs(TASKS_SEEN), OK),
        Case("config.env", needs(TASKS_SEEN), OK, "cmd"),
    ],
    ("scheduledtask", "change", "POST"): [
        Case("description", needs(CHANGE), FOUND, "step", form_of("step", description="edited")),
        Case(
            "an action becomes a command every 3 s",
            needs(CHANGE),
            FOUND,
            "step",
            form_of("step", task_type="common_task", interval_seconds=3, config=json.dumps(COMMAND_CONFIG)),
            needs=needs(COMMAND),
            refused=frozenset({OK}),
        ),
        # Without the command permission, what a command task runs is read-only: the rest is saved.
        Case(
            "a command's program",
            needs(CHANGE),
            FOUND,
            "cmd",
            form_of("cmd", description="edited", config=json.dumps({"command": "true"})),
            needs=needs(COMMAND),
            refused=frozenset({FOUND}),
            unchanged=work_state,
        ),
    ],
    ("scheduledtask", "delete", "GET"): [Case("confirmation", needs(DELETE), OK, "cmd")],
    ("scheduledtask", "delete", "POST"): [Case("delete", needs(DELETE), FOUND, "cmd", {"post": "yes"})],
    ("scheduledtask", "history", "GET"): [Case("history", needs(TASKS_SEEN), OK)],
    # A version of the task, and its restore (through task_restore(): the change permission).
    ("scheduledtask", "simple_history", "GET"): [Case("a version", needs(TASKS_SEEN), OK, "step")],
    ("scheduledtask", "simple_history", "POST"): [
        Case("restore", needs(CHANGE), FOUND, "step", form_of("step"), refused=frozenset({OK, FOUND}))
    ],
    ("scheduledtask", "redirect", "GET"): [Case("old change URL", EVERYONE, FOUND)],
    ("scheduledtask", "dashboard", "GET"): [Case("dashboard", needs(TASKS_SEEN, RUNS_SEEN), OK)],
    ("scheduledtask", "run", "GET"): [Case("needs POST", EVERYONE, NOT_ALLOWED)],
    ("scheduledtask", "run", "POST"): [Case("run now", needs(RUN), FOUND)],
    ("scheduledtask", "run_with_parameters", "GET"): [Case("the form", needs(RUN, TASKS_SEEN), OK, "step")],
    ("scheduledtask", "run_with_parameters", "POST"): [
        Case("run with parameters", needs(RUN, TASKS_SEEN), FOUND, "step", {"config": '{"steps": 2}'}),
        Case(
            "a command instead of the action",
            needs(RUN, TASKS_SEEN),
            FOUND,
            "step",
            {"config": json.dumps({"task_action": None, **COMMAND_CONFIG})},
            needs=needs(COMMAND),
            refused=frozenset({OK}),
        ),
    ],
    ("scheduledtask", "copy", "GET"): [Case("needs POST", EVERYONE, NOT_ALLOWED)],
    ("scheduledtask", "copy", "POST"): [
        Case("an action task", needs(ADD, TASKS_SEEN), FOUND, "step"),
        Case("a command task", needs(ADD, TASKS_SEEN), FOUND, "cmd", needs=needs(COMMAND), refused=frozenset({FOUND})),
    ],
    **{
        ("scheduledtask", verb, method): [
            Case("needs POST", EVERYONE, NOT_ALLOWED) if method == "GET" else Case(verb, needs(CHANGE), FOUND)
        ]
        for verb in ("enable", "disable", "pause", "resume")
        for method in ("GET", "POST")
    },
    ("taskexecution", "changelist", "GET"): [Case("list", needs(RUNS_SEEN), OK)],
    ("taskexecution", "changelist", "POST"): [
        Case(
            "bulk delete",
            needs(RUNS_SEEN),
            FOUND,
            data=bulk("delete_selected", "failed", post="yes"),
            needs=needs(DELETE_RUNS),
            refused=FORM_ERROR_OR_MESSAGE,
        ),
    ],
    ("taskexecution", "add", "GET"): [Case("never written by hand", EVERYONE, FORBIDDEN)],
    ("taskexecution", "add", "POST"): [Case("never written by hand", EVERYONE, FORBIDDEN, data={})],
    ("taskexecution", "change", "GET"): [Case("output_tail", needs(RUNS_SEEN), OK)],
    ("taskexecution", "change", "POST"): [Case("read-only", EVERYONE, FORBIDDEN, data={})],
    ("taskexecution", "delete", "GET"): [Case("confirmation", needs(DELETE_RUNS), OK)],
    ("taskexecution", "delete", "POST"): [Case("delete", needs(DELETE_RUNS), FOUND, data={"post": "yes"})],
    ("taskexecution", "history", "GET"): [Case("history", needs(RUNS_SEEN), OK)],
    ("taskexecution", "redirect", "GET"): [Case("old change URL", EVERYONE, FOUND)],
    ("taskexecution", "progress", "GET"): [Case("live state", needs(RUNS_SEEN), OK)],
    ("taskexecution", "mark", "GET"): [Case("needs POST", EVERYONE, NOT_ALLOWED)],
    ("taskexecution", "mark", "POST"): [
        Case("mark success", needs(RUN, RUNS_SEEN), FOUND, data={"status": "success", "reason": "by hand"})
    ],
    ("taskexecution", "progress_one", "GET"): [Case("live state", needs(RUNS_SEEN), OK)],
    **{
        ("taskexecution", verb, method): [
            Case("needs POST", EVERYONE, NOT_ALLOWED) if method == "GET" else Case(verb, needs(RUN, RUNS_SEEN), FOUND)
        ]
        for verb in ("terminate", "pause", "resume", "rerun")
        for method in ("GET", "POST")
    },
    ("schedulernode", "changelist", "GET"): [Case("list", needs(NODES_SEEN), OK)],
    ("schedulernode", "add", "GET"): [Case("written by the schedulers only", EVERYONE, FORBIDDEN)],
    ("schedulernode", "change", "GET"): [Case("read-only view", needs(NODES_SEEN), OK)],
    ("schedulernode", "change", "POST"): [Case("read-only", EVERYONE, FORBIDDEN, data={})],
    ("schedulernode", "delete", "GET"): [Case("confirmation", needs(DELETE_NODES), OK)],
    ("schedulernode", "delete", "POST"): [Case("delete", needs(DELETE_NODES), FOUND, data={"post": "yes"})],
    ("schedulernode", "history", "GET"): [Case("history", needs(NODES_SEEN), OK)],
    ("schedulernode", "redirect", "GET"): [Case("old change URL", EVERYONE, FOUND)],
    # The days of a calendar are edited with it, by the calendar's permissions.
    **editable_cases(
        "calendar", CALENDAR, "calendar", {"name": "SZSE", "weekdays": "1-5", **NO_DAYS}, calendar_form(note="x")
    ),
    **editable_cases("blackoutwindow", BLACKOUT, "window", WINDOW_FORM, {**WINDOW_FORM, "name": "lunch"}),
    **editable_cases(
        "notificationsubscription", SUBSCRIPTION, "subscription", SUBSCRIPTION_FORM, {**SUBSCRIPTION_FORM, "name": "x"}
    ),
    # An event's deliveries are deleted with it.
    **record_cases("notificationevent", EVENT, "event", needs(EVENT[3], DELIVERY[3])),
    **record_cases("notificationdelivery", DELIVERY, "delivery", needs(DELIVERY[3])),
}

# Inside the admin every signed-in role is staff (the admin's door); one role shows that permissions
# without is_staff do not open it.
ADMIN_ROLES: dict[str, Role] = {
    **{name: Role(role.permissions, True, role.superuser, role.signed_in) for name, role in ROLES.items()},
    "viewer_not_staff": ROLES["viewer"],
}


def admin_urls() -> dict[tuple[str, str], str]:
    """(model, URL name or "redirect") -> the URL's route, for every URL of the scheduler models' admins."""
    found: dict[tuple[str, str], str] = {}
    for resolver in admin.site.get_urls():
        prefix = str(resolver.pattern)
        if not isinstance(resolver, URLResolver) or not prefix.startswith("scheduler_app/"):
            continue
        model = prefix.split("/")[1]
        for pattern in resolver.url_patterns:
            name = pattern.name.removeprefix(f"scheduler_app_{model}_") if pattern.name else "redirect"
            found[(model, name)] = prefix + str(pattern.pattern)
    return found


URLS = admin_urls()
WALK = [
    pytest.param(model, name, method, case, id=f"{model} {name} {method} {case.label}")
    for (model, name, method), cases in CASES.items()
    for case in cases
]


def test_every_admin_url_has_a_case():
    assert {model for model, _name in URLS} == set(MODELS)
    assert set(URLS) == {(model, name) for model, name, _method in CASES}


def url_of(model: str, name: str, case: Case, world: World) -> str:
    target = {
        "scheduledtask": getattr(world, case.target),
        "taskexecution": world.failed,
        "schedulernode": world.node,
        "calendar": world.calendar,
        "blackoutwindow": world.window,
        "notificationsubscription": world.subscription,
        "notificationevent": world.event,
        "notificationdelivery": world.delivery,
    }
    path = URLS[(model, name)].replace("<path:object_id>", str(target[model].pk))
    if name == "simple_history":  # a regex route: the object, then one of its versions
        version = target[model].history.order_by("history_id").first()
        path = f"scheduler_app/{model}/{target[model].pk}/history/{version.history_id}/"
    url = reverse("admin:index") + path
    return url + f"?ids={world.failed.pk}" if name == "progress" else url


@pytest.mark.parametrize("role", list(ADMIN_ROLES))
@pytest.mark.parametrize(("model", "name", "method", "case"), WALK)
def test_admin_url_answers_by_role(db, django_capture_on_commit_callbacks, role, model, name, method, case):
    world = build_world()
    spec = ADMIN_ROLES[role]
    client = Client()
    user = sign_up(role, spec)
    if user is not None:
        client.force_login(user)
    url = url_of(model, name, case, world)
    data = case.data(world) if callable(case.data) else case.data
    before, work_before = db_state(), case.unchanged()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.get(url) if method == "GET" else client.post(url, data or {})
    context = (role, model, name, method, case.label, response.status_code)

    if user is None or not spec.staff:
        assert response.status_code == FOUND, context
        assert response["Location"].startswith(reverse("admin:login")), context
        allowed = set()
    elif not spec.may(case.gate):
        allowed = {FORBIDDEN}
    elif not spec.may(case.gate + case.needs):
        allowed = set(case.refused)
    else:
        allowed = {case.answer}
    if allowed:
        assert response.status_code in allowed, context
    refused = not (user is not None and spec.staff and spec.may(case.gate + case.needs))
    if refused or case.answer in (FORBIDDEN, NOT_ALLOWED):
        if case.unchanged is db_state:
            assert db_state() == before, ("a refused request changed the database", *context)
            assert not callbacks, ("a refused request registered work for the commit", *context)
        else:
            assert case.unchanged() == work_before, ("a refused request changed what a task runs", *context)
