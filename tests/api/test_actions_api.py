"""GET actions/: every registered action with its declared parameters as a JSON schema, plus command and workflow;
a config breaking a declared parameter is a 400 on the config field, and nothing is saved."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app.actions import INTEGER, Param, action, registered_actions, unregister_action
from scheduler_app.models import ScheduledTask
from tests.api.conftest import client_for
from tests.factories import ScheduledTaskFactory, user_with

pytestmark = pytest.mark.django_db


def test_the_catalogue_lists_every_action_and_the_other_kinds(operator_client):
    response = operator_client.get(reverse("api:action-list"))

    assert response.status_code == HTTPStatus.OK
    names = [entry["name"] for entry in response.json()]
    assert names == [*registered_actions(), "command", "workflow"]
    assert {"example_task", "sync_daily_data", "calculate_factor"} <= set(names)


def test_an_action_entry_carries_its_parameters_and_schema(operator_client):
    entries = {entry["name"]: entry for entry in operator_client.get(reverse("api:action-list")).json()}
    example = entries["example_task"]

    assert example["kind"] == "action"
    assert example["task_types"] == ["common_task", "manual_task"]
    steps = next(param for param in example["parameters"] if param["name"] == "steps")
    assert steps == {
        "name": "steps",
        "type": "integer",
        "default": 5,
        "help": steps["help"],
        "required": False,
        "choices": [],
        "minimum": 1.0,
        "maximum": 100000.0,
    }
    schema = example["schema"]
    assert schema["properties"]["task_action"] == {"const": "example_task"}
    assert schema["properties"]["steps"]["type"] == "integer"
    assert schema["properties"]["steps"]["default"] == 5
    assert schema["required"] == ["task_action"]
    assert entries["sync_all_daily_data"]["schema"]["properties"]["start_date"]["format"] == "date"
    assert entries["command"]["schema"]["required"] == ["command"]
    assert entries["workflow"]["task_types"] == ["workflow"]


@pytest.fixture
def declared_action():
    @action(
        "tests_declared",
        parameters=[
            Param("mode", choices=("fast", "slow"), required=True, help="How."),
            Param("count", INTEGER, default=2, minimum=1),
        ],
    )
    def run(ctx, params):
        return {"success": True, "count": params["count"]}

    yield "tests_declared"
    unregister_action("tests_declared")


def test_declared_choices_and_required_show_in_the_schema(operator_client, declared_action):
    entries = {entry["name"]: entry for entry in operator_client.get(reverse("api:action-list")).json()}
    schema = entries[declared_action]["schema"]

    assert schema["required"] == ["task_action", "mode"]
    assert schema["properties"]["mode"] == {"type": "string", "enum": ["fast", "slow"], "description": "How."}


BAD = {
    "a required parameter left out": ({"count": 3}, "mode is required."),
    "a value outside the choices": ({"mode": "warp"}, "mode must be one of fast, slow."),
    "a whole number that is text": ({"mode": "fast", "count": "3"}, "count must be a whole number."),
    "below the minimum": ({"mode": "fast", "count": 0}, "count must be at least 1."),
}


@pytest.mark.parametrize(("params", "message"), BAD.values(), ids=BAD.keys())
def test_a_declared_parameter_is_checked_on_create(operator_client, declared_action, params, message):
    body = {"name": "declared", "task_type": "manual_task", "config": {"task_action": declared_action, **params}}

    response = operator_client.post(reverse("api:task-list"), body, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["config"] == [message]
    assert not ScheduledTask.objects.filter(name="declared").exists()


def test_a_declared_parameter_is_checked_on_update_and_nothing_changes(operator_client):
    task = ScheduledTaskFactory(config={"task_action": "example_task", "steps": 2})

    url = reverse("api:task-detail", args=[task.pk])
    response = operator_client.patch(url, {"config": {"task_action": "example_task", "steps": 1.5}}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["config"] == ["steps must be a whole number."]
    task.refresh_from_db()
    assert task.config == {"task_action": "example_task", "steps": 2}


def test_readers_without_a_task_permission_are_refused():
    client = client_for(user_with("runs only", "view_taskexecution"))
    assert client.get(reverse("api:action-list")).status_code == HTTPStatus.FORBIDDEN
