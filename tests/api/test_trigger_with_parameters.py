"""POST tasks/{id}/trigger/ with `config`: a run with some config keys replaced, validated like the task's config,
stored on the execution, used by the run (and its retry); the task itself is unchanged."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app.models import TaskExecution
from scheduler_app.runtime import runner as runs
from tests.api.conftest import client_for
from tests.executors.helpers import fast  # noqa: F401 - a fixture
from tests.factories import ScheduledTaskFactory, user_with

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast")]

TASK_CONFIG = {"task_action": "example_task", "duration_seconds": 0, "steps": 2}


@pytest.fixture
def task():
    return ScheduledTaskFactory(
        task_type="manual_task", cron_expression=None, interval_seconds=None, config=TASK_CONFIG
    )


def trigger(client, task, body):
    return client.post(reverse("api:task-trigger", args=[task.pk]), body, format="json")


def test_the_override_is_stored_and_the_run_uses_it(operator_client, task):
    response = trigger(operator_client, task, {"config": {"steps": 4, "message": "with parameters"}})

    assert response.status_code == HTTPStatus.ACCEPTED, response.content
    assert response.json()["config_override"] == {"steps": 4, "message": "with parameters"}
    execution = TaskExecution.objects.get(pk=response.json()["id"])
    assert execution.config == {**TASK_CONFIG, "steps": 4, "message": "with parameters"}

    final = runs.execution_run(execution_id=execution.pk)
    assert final.status == "success"
    assert final.result["total_steps"] == 4
    assert final.result["message"] == "with parameters"
    task.refresh_from_db()
    assert task.config == TASK_CONFIG


def test_without_a_body_the_run_uses_the_task_config(operator_client, task):
    response = trigger(operator_client, task, None)

    assert response.status_code == HTTPStatus.ACCEPTED
    assert response.json()["config_override"] is None
    assert TaskExecution.objects.get(pk=response.json()["id"]).config == TASK_CONFIG


BAD = {
    "a parameter out of range": ({"config": {"steps": 0}}, ["steps must be at least 1."]),
    "a parameter of the wrong type": ({"config": {"success_rate": "high"}}, ["success_rate must be a number."]),
    "an unknown action": ({"config": {"task_action": "nope"}}, None),
    "not an object": ({"config": [1, 2]}, None),
    "null": ({"config": None}, None),
    "both a command and an action": ({"config": {"command": "true"}}, None),
}


@pytest.mark.parametrize(("body", "messages"), BAD.values(), ids=BAD.keys())
def test_a_bad_override_is_a_400_on_config_and_queues_nothing(operator_client, task, body, messages):
    response = trigger(operator_client, task, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response.json()["config"]
    if messages is not None:
        assert response.json()["config"] == messages
    assert not TaskExecution.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(operator_client, task):
    response = operator_client.post(reverse("api:task-trigger", args=[task.pk]), "[1]", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not TaskExecution.objects.exists()


def test_an_override_that_runs_a_program_needs_the_command_permission(task):
    runner = client_for(user_with("runner", "run_scheduledtask", "view_scheduledtask"))
    body = {"config": {"task_action": None, "command": "true"}}

    response = trigger(runner, task, body)

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "change_command_scheduledtask" in response.json()["detail"]
    assert not TaskExecution.objects.exists()


def test_the_run_permission_is_checked_before_the_override(task):
    viewer = client_for(user_with("viewer", "view_scheduledtask"))
    assert trigger(viewer, task, {"config": {"steps": 0}}).status_code == HTTPStatus.FORBIDDEN
    assert not TaskExecution.objects.exists()


def test_a_retry_repeats_the_override(operator_client):
    task = ScheduledTaskFactory(
        task_type="manual_task",
        cron_expression=None,
        interval_seconds=None,
        max_retries=1,
        config={"task_action": "example_task", "duration_seconds": 0, "steps": 1},
    )
    response = trigger(operator_client, task, {"config": {"success_rate": 0}})
    final = runs.execution_run(execution_id=response.json()["id"])

    assert final.status == "failed"
    retry = TaskExecution.objects.get(parent=final, trigger="retry")
    assert retry.config_override == {"success_rate": 0}
