"""Property-based API test: schemathesis reads /api/schema/ and calls every operation in-process (WSGI).

Runs as an operator (every scheduler permission) and as a reader (the view permissions only: its
writes answer 403), with token authentication, valid and invalid generated data, a fixed number of
examples per operation, no shrinking and a time budget, derandomized so that CI runs are repeatable.
It fails on any 5xx, any status code the schema does not document, and any response body or content
type that breaks the schema.
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scheduler_app.models import TaskExecution
from tests.api.conftest import READ_PERMISSIONS
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, operator_user, user_with

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}
BUDGET_SECONDS = 60.0  # per role; the run stops generating (and says so) when it is spent


@pytest.fixture
def wsgi_app():
    """The real WSGI application, minus the per-request connection closing that would end the test transaction.

    Django's own test client disconnects the same two receivers for the same reason.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def unthrottled(settings):
    """Hundreds of calls a minute by one user: the API throttles (tested in tests/site) would answer 429."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": None, "user": None}}


def seed() -> dict[str, list[int]]:
    """Real objects for generated path ids to hit (beside the random ids, which mostly get 404)."""
    steps = [ScheduledTaskFactory(name=f"step {i}", task_type="manual_task", interval_seconds=None) for i in range(3)]
    flow = ScheduledTaskFactory(
        name="flow", task_type="workflow", config={"tasks": [{"task_id": step.pk} for step in steps]}
    )
    cron = ScheduledTaskFactory(name="cron", cron_expression="0 18 * * 1-5", interval_seconds=None)
    tasks = [*steps, flow, cron]
    executions = [
        TaskExecutionFactory(task=task, status=status)
        for task, status in zip(tasks, ["failed", "running", "paused", "success", "pending"], strict=True)
    ]
    TaskExecutionFactory(task=flow, status="terminated", parent=executions[3])
    return {"task": [t.pk for t in tasks], "execution": [e.pk for e in executions]}


class Runner:
    """Calls one operation with generated cases; generated path ids sometimes point at real objects."""

    def __init__(self, headers: dict[str, str], ids: dict[str, list[int]]) -> None:
        self.headers = headers
        self.ids = ids
        self.calls = 0

    def run(self, operation, mode: GenerationMode, examples: int) -> None:
        kind = "execution" if "/executions/{id}" in operation.path else "task"

        @given(case=operation.as_strategy(generation_mode=mode), pick=st.integers(0, 9))
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case, pick):
            for name, ids in (("id", self.ids[kind]), ("task_pk", self.ids["task"])):
                if mode is GenerationMode.POSITIVE and name in (case.path_parameters or {}) and pick < len(ids):
                    case.path_parameters[name] = ids[pick]
            self.calls += 1
            case.call_and_validate(headers=self.headers, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            if mode is not GenerationMode.NEGATIVE:
                raise  # an operation without parameters or body has no invalid input to generate


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "reader"])
def test_api_matches_its_schema(wsgi_app, unthrottled, role):
    user = operator_user() if role == "operator" else user_with(role, *READ_PERMISSIONS)
    runner = Runner({"Authorization": f"Token {Token.objects.create(user=user).key}"}, seed())
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES.items():
            if time.monotonic() > deadline:
                pytest.fail(f"time budget spent before {operation.label} ({mode.value})")
            try:
                runner.run(operation, mode, examples)
            except KeyboardInterrupt:
                raise
            except BaseException as error:  # collect them all (schemathesis raises exception groups)
                failures.append(f"{operation.label} [{mode.value}]: {error}"[:3000])
    assert not failures, "\n\n".join(failures)
    assert runner.calls > 200
    assert TaskExecution.objects.exists()
