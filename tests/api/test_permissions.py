"""Walk every route of the API namespace (from the URL resolver) as every role and check each answer.

Roles: anonymous; a plain signed-in user (reads only); a user with only `run_scheduledtask` (runs
and execution controls); a user with only `change_scheduledtask`; a user with only
`view_taskexecution` and `view_notificationsubscription` (metrics, subscriptions); staff (everything
else). Authenticated
roles use real token authentication. A route added without an entry in EXPECTED fails the test.
"""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scheduler_app.models import NotificationSubscription, TaskExecution
from tests.api.conftest import user_with
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

READ, ADD, CHANGE, DELETE, RUN = "read", "add", "change", "delete", "run"
METRICS = "metrics"  # the view permission on executions (or the metrics bearer token)
SUBSCRIPTIONS = "subscriptions"  # the view permission on notification subscriptions
OK, CREATED, ACCEPTED, NO_CONTENT, CONFLICT = 200, 201, 202, 204, 409

# (url name, method) -> (what it needs, the answer staff gets in the world built below)
EXPECTED: dict[tuple[str, str], tuple[str, int]] = {
    ("task-list", "GET"): (READ, OK),
    ("task-list", "POST"): (ADD, CREATED),
    ("task-detail", "GET"): (READ, OK),
    ("task-detail", "PUT"): (CHANGE, OK),
    ("task-detail", "PATCH"): (CHANGE, OK),
    ("task-detail", "DELETE"): (DELETE, NO_CONTENT),
    ("task-trigger", "POST"): (RUN, ACCEPTED),
    ("task-enable", "POST"): (CHANGE, OK),
    ("task-disable", "POST"): (CHANGE, OK),
    ("task-pause", "POST"): (CHANGE, OK),
    ("task-resume", "POST"): (CHANGE, OK),
    ("task-copy", "POST"): (ADD, CREATED),
    ("task-stats", "GET"): (READ, OK),
    ("task-next-runs", "GET"): (READ, OK),
    ("task-workflow-tasks", "GET"): (READ, OK),
    ("task-execution-list", "GET"): (READ, OK),
    ("execution-list", "GET"): (READ, OK),
    ("execution-detail", "GET"): (READ, OK),
    ("execution-pause", "POST"): (RUN, CONFLICT),  # the execution below has failed
    ("execution-resume", "POST"): (RUN, ACCEPTED),
    ("execution-terminate", "POST"): (RUN, CONFLICT),
    ("execution-rerun", "POST"): (RUN, ACCEPTED),
    ("stats", "GET"): (READ, OK),
    ("workflow-validate", "POST"): (READ, OK),
    ("schedule-preview", "POST"): (READ, OK),
    ("scheduler-status", "GET"): (READ, OK),
    ("metrics", "GET"): (METRICS, OK),
    ("notification-subscription-list", "GET"): (SUBSCRIPTIONS, OK),
    ("notification-subscription-detail", "GET"): (SUBSCRIPTIONS, OK),
}
# role -> model permissions it is given (None: not signed in)
ROLES = {
    "anonymous": None,
    "reader": (),
    "runner": ("run_scheduledtask",),
    "editor": ("change_scheduledtask",),
    "watcher": ("view_taskexecution", "view_notificationsubscription"),
    "staff": (),
}
ROLE_MAY = {
    "reader": set(),
    "runner": {RUN},
    "editor": {CHANGE},
    "watcher": {METRICS, SUBSCRIPTIONS},
    "staff": {ADD, CHANGE, DELETE, RUN},
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


def test_every_route_has_an_expectation():
    assert set(ROUTES) == set(EXPECTED)


def build_world():
    step = ScheduledTaskFactory(name="step")
    flow = ScheduledTaskFactory(
        name="flow", task_type="workflow", interval_seconds=600, config={"tasks": [{"task_id": step.pk}]}
    )
    execution = TaskExecutionFactory(task=flow, status=TaskExecution.Status.FAILED)
    subscription = NotificationSubscription.objects.create(name="ops", channel="email", email_to="ops@example.com")
    return flow, execution, subscription


def request_for(name: str, method: str, flow, execution, subscription) -> tuple[str, dict | None]:
    if name.startswith("task-execution"):
        url = reverse(f"api:{name}", kwargs={"task_pk": flow.pk})
    elif name.startswith("task-") and name != "task-list":
        url = reverse(f"api:{name}", kwargs={"pk": flow.pk})
    elif name.startswith("execution-") and name != "execution-list":
        url = reverse(f"api:{name}", kwargs={"pk": execution.pk})
    elif name == "notification-subscription-detail":
        url = reverse(f"api:{name}", kwargs={"pk": subscription.pk})
    else:
        url = reverse(f"api:{name}")
    bodies = {
        ("task-list", "POST"): {
            "name": "created",
            "task_type": "manual_task",
            "config": {"task_action": "example_task"},
        },
        ("task-detail", "PUT"): {
            "name": "flow",
            "task_type": "workflow",
            "interval_seconds": 300,
            "config": flow.config,
        },
        ("task-detail", "PATCH"): {"description": "edited"},
        ("workflow-validate", "POST"): {"config": flow.config},
        ("schedule-preview", "POST"): {"cron_expression": "*/5 * * * *"},
    }
    return url, bodies.get((name, method))


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(("name", "method"), ROUTES)
def test_route_answers_by_role(db, settings, role, name, method):
    flow, execution, subscription = build_world()
    client = APIClient()
    if ROLES[role] is not None:
        user = user_with(role, *ROLES[role], is_staff=role == "staff")
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    url, body = request_for(name, method, flow, execution, subscription)
    data = "" if body is None else json.dumps(body)
    response = client.generic(method, url, data=data, content_type="application/json")
    needs, staff_answer = EXPECTED[(name, method)]
    if role == "anonymous":
        expected = HTTPStatus.UNAUTHORIZED
    elif needs == READ or needs in ROLE_MAY[role]:
        expected = staff_answer
    else:
        expected = HTTPStatus.FORBIDDEN
    assert response.status_code == expected, (role, name, method, response.content[:300])
