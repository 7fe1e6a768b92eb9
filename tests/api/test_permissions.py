"""Walk every route of the API namespace (from the URL resolver) as every role and check each answer.

Each route has one or more cases (a target and a body) and what the case needs, written here as the
docs' permission table says it (tests/roles.py). A role that has it gets the superuser's answer; any
other signed-in role gets 403 and the database is left exactly as it was (tasks, executions, nodes,
the schedule version, with on-commit callbacks run); anonymous requests get 401. Never a 500. A route
added without a case fails the test. Authenticated roles use real token authentication.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate

from scheduler_app.api.views import StatsView
from scheduler_app.models import ScheduledTask
from tests.roles import (
    ADD,
    CHANGE,
    COMMAND,
    COMMAND_CONFIG,
    DELETE,
    NODES_SEEN,
    ROLES,
    RUN,
    RUNS_SEEN,
    SUBSCRIPTION,
    TASK_FORM,
    TASKS_SEEN,
    World,
    build_world,
    db_state,
    needs,
    seen,
    sign_up,
)

OK, CREATED, ACCEPTED, NO_CONTENT, CONFLICT = 200, 201, 202, 204, 409


@dataclass(frozen=True)
class Case:
    label: str
    needs: tuple[frozenset[str], ...]
    answer: int  # what a role that may gets, in the world of tests/roles.py
    target: str = "flow"  # the task of a task route: step, flow or cmd
    body: dict[str, Any] | Callable[[World], dict[str, Any]] | None = None


# (url name, method) -> its cases
CASES: dict[tuple[str, str], list[Case]] = {
    ("task-list", "GET"): [Case("list", needs(TASKS_SEEN), OK)],
    ("task-list", "POST"): [
        Case(
            "an action task",
            needs(ADD),
            CREATED,
            body={"name": "new", "task_type": "manual_task", "config": {"task_action": "example_task"}},
        ),
        Case(
            "a command task",
            needs(ADD, COMMAND),
            CREATED,
            body={"name": "new", "task_type": "manual_task", "config": COMMAND_CONFIG},
        ),
    ],
    ("task-detail", "GET"): [
        Case("a workflow", needs(TASKS_SEEN), OK),
        Case("config.env", needs(TASKS_SEEN), OK, "cmd"),
    ],
    ("task-detail", "PUT"): [
        Case(
            "same work",
            needs(CHANGE),
            OK,
            body=lambda w: {"name": "flow", "task_type": "workflow", "interval_seconds": 300, "config": w.flow.config},
        ),
        Case(
            "a command's program",
            needs(CHANGE, COMMAND),
            OK,
            "cmd",
            {"name": "cmd", "task_type": "common_task", "interval_seconds": 600, "config": {"command": "true"}},
        ),
    ],
    ("task-detail", "PATCH"): [
        Case("description", needs(CHANGE), OK, "step", {"description": "edited"}),
        Case("a command's description", needs(CHANGE), OK, "cmd", {"description": "edited"}),
        Case("a command's schedule", needs(CHANGE), OK, "cmd", {"interval_seconds": 3}),
        Case(
            "a command's type",
            needs(CHANGE, COMMAND),
            OK,
            "cmd",
            {"task_type": "manual_task", "interval_seconds": None},
        ),
        Case(
            "an action becomes a command every 3 s",
            needs(CHANGE, COMMAND),
            OK,
            "step",
            {"task_type": "common_task", "interval_seconds": 3, "config": COMMAND_CONFIG},
        ),
        Case("a command's env", needs(CHANGE, COMMAND), OK, "cmd", {"config": {**COMMAND_CONFIG, "env": {"A": "b"}}}),
        Case(
            "a command becomes an action",
            needs(CHANGE, COMMAND),
            OK,
            "cmd",
            {"config": {"task_action": "example_task"}},
        ),
        Case(
            "an action's parameters", needs(CHANGE), OK, "step", {"config": {"task_action": "example_task", "steps": 9}}
        ),
        Case(
            "a workflow's steps",
            needs(CHANGE),
            OK,
            "flow",
            lambda w: {"config": {"tasks": [{"task_id": w.cmd.pk}, {"task_id": w.step.pk}]}},
        ),
    ],
    ("task-detail", "DELETE"): [Case("a command task", needs(DELETE), NO_CONTENT, "cmd")],
    ("task-trigger", "POST"): [
        Case("run now", needs(RUN), ACCEPTED),
        Case("with parameters", needs(RUN), ACCEPTED, "step", {"config": {"steps": 2}}),
        Case(
            "with a command instead of the action",
            needs(RUN, COMMAND),
            ACCEPTED,
            "step",
            {"config": {"task_action": None, **COMMAND_CONFIG}},
        ),
    ],
    ("task-enable", "POST"): [Case("enable", needs(CHANGE), OK)],
    ("task-disable", "POST"): [Case("disable", needs(CHANGE), OK)],
    ("task-pause", "POST"): [Case("pause", needs(CHANGE), OK)],
    ("task-resume", "POST"): [Case("resume", needs(CHANGE), OK)],
    ("task-copy", "POST"): [
        Case("an action task", needs(ADD, TASKS_SEEN), CREATED, "step"),
        Case("a command task", needs(ADD, TASKS_SEEN, COMMAND), CREATED, "cmd"),
    ],
    ("task-stats", "GET"): [Case("a task's run statistics", needs(RUNS_SEEN), OK)],
    ("task-next-runs", "GET"): [Case("next runs", needs(TASKS_SEEN), OK)],
    ("task-workflow-tasks", "GET"): [Case("steps", needs(TASKS_SEEN), OK)],
    ("task-history", "GET"): [Case("versions", needs(TASKS_SEEN), OK, "cmd")],
    ("task-actions", "GET"): [Case("operators' actions", needs(TASKS_SEEN), OK)],
    ("task-execution-list", "GET"): [Case("a task's runs", needs(RUNS_SEEN), OK)],
    ("execution-list", "GET"): [Case("runs", needs(RUNS_SEEN), OK)],
    ("execution-detail", "GET"): [Case("output_tail", needs(RUNS_SEEN), OK)],
    ("execution-pause", "POST"): [Case("a failed run", needs(RUN, RUNS_SEEN), CONFLICT)],
    ("execution-resume", "POST"): [Case("a failed run", needs(RUN, RUNS_SEEN), ACCEPTED)],
    ("execution-terminate", "POST"): [Case("a failed run", needs(RUN, RUNS_SEEN), CONFLICT)],
    ("execution-rerun", "POST"): [Case("a failed run", needs(RUN, RUNS_SEEN), ACCEPTED)],
    ("execution-mark", "POST"): [
        Case(
            "a failed run as success", needs(RUN, RUNS_SEEN), OK, body={"status": "success", "reason": "done by hand"}
        ),
        Case("a failed run as failed", needs(RUN, RUNS_SEEN), CONFLICT, body={"status": "failed"}),
    ],
    ("stats", "GET"): [Case("all runs' statistics", needs(RUNS_SEEN), OK)],
    ("action-list", "GET"): [Case("the action catalogue", needs(TASK_FORM), OK)],
    ("workflow-validate", "POST"): [Case("check", needs(TASK_FORM), OK, body={"config": {"tasks": []}})],
    ("schedule-preview", "POST"): [Case("check", needs(TASK_FORM), OK, body={"cron_expression": "*/5 * * * *"})],
    ("scheduler-status", "GET"): [Case("status", needs(NODES_SEEN), OK)],
    # Runs by task, and the leading process's host and pid.
    ("metrics", "GET"): [Case("Prometheus text", needs(RUNS_SEEN, NODES_SEEN), OK)],
    ("notification-subscription-list", "GET"): [Case("subscriptions", needs(seen(SUBSCRIPTION)), OK)],
    ("notification-subscription-detail", "GET"): [Case("a subscription", needs(seen(SUBSCRIPTION)), OK)],
}


def api_routes() -> list[tuple[str, str]]:
    """(url name, HTTP method) of every route in the "api" namespace, read from the URL resolver."""
    found: list[tuple[str, str]] = []

    def walk(patterns, namespace: str | None) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and namespace == "api":
                view = pattern.callback
                actions = getattr(view, "actions", None)
                if actions:
                    methods = actions
                else:
                    methods = {m: m for m in view.view_class.http_method_names if m not in ("options", "head")}
                    methods = {m: m for m in methods if hasattr(view.view_class, m)}
                found.extend((pattern.name, method.upper()) for method in methods)

    walk(get_resolver().url_patterns, None)
    return sorted(found)


ROUTES = api_routes()
WALK = [
    pytest.param(name, method, case, id=f"{name} {method} {case.label}")
    for name, method in ROUTES
    for case in CASES.get((name, method), [])
]


def test_every_route_has_a_case():
    assert set(ROUTES) == set(CASES)


def request_for(name: str, method: str, case: Case, world: World) -> tuple[str, dict | None]:
    task = getattr(world, case.target)
    if name.startswith("task-execution"):
        url = reverse(f"api:{name}", kwargs={"task_pk": task.pk})
    elif name.startswith("task-") and name != "task-list":
        url = reverse(f"api:{name}", kwargs={"pk": task.pk})
    elif name.startswith("execution-") and name != "execution-list":
        url = reverse(f"api:{name}", kwargs={"pk": world.failed.pk})
    elif name == "notification-subscription-detail":
        url = reverse(f"api:{name}", kwargs={"pk": world.subscription.pk})
    else:
        url = reverse(f"api:{name}")
    return url, case.body(world) if callable(case.body) else case.body


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(("name", "method", "case"), WALK)
def test_route_answers_by_role(db, django_capture_on_commit_callbacks, role, name, method, case):
    world = build_world()
    client = APIClient()
    user = sign_up(role, ROLES[role])
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    url, body = request_for(name, method, case, world)
    before = db_state()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.generic(
            method, url, data="" if body is None else json.dumps(body), content_type="application/json"
        )
    if user is None:
        expected = HTTPStatus.UNAUTHORIZED
    elif ROLES[role].may(case.needs):
        expected = case.answer
    else:
        expected = HTTPStatus.FORBIDDEN
    assert response.status_code == expected, (role, name, method, case.label, response.content[:300])
    if expected in (HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN):
        assert db_state() == before, "a refused request changed the database"
        assert not callbacks, "a refused request registered work for the commit"


def test_a_refusal_by_the_service_names_the_permission(db):
    """change_scheduledtask passes the API's first check; the task service refuses the command (403, a code)."""
    world = build_world()
    client = APIClient()
    client.force_authenticate(sign_up("changer", ROLES["changer"]))
    body = {"task_type": "common_task", "interval_seconds": 3, "config": COMMAND_CONFIG}
    response = client.patch(reverse("api:task-detail", kwargs={"pk": world.step.pk}), body, format="json")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert response.json()["code"] == "permission_denied"
    assert "scheduler_app.change_command_scheduledtask" in response.json()["detail"]
    assert ScheduledTask.objects.get(pk=world.step.pk).config == world.step.config


def test_an_inactive_superuser_is_refused(db):
    build_world()
    user = sign_up("superuser", ROLES["superuser"])
    user.is_active = False
    user.save()
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(reverse("api:task-list")).status_code == HTTPStatus.FORBIDDEN


def test_an_operation_without_a_rule_is_refused(db):
    """An operation missing from `required_permissions` is refused, also to a superuser: nothing is open by mistake."""
    view = StatsView.as_view(required_permissions={})
    request = APIRequestFactory().get("/")
    force_authenticate(request, sign_up("superuser", ROLES["superuser"]))
    assert view(request).status_code == HTTPStatus.FORBIDDEN
