"""A config is checked at save by the validator of the executor that will run it: a config that could
never run is a 400 naming the field, and nothing is saved or changed."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app.models import ScheduledTask
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

NEVER_RUNS = {
    "unknown action": {"task_action": "rm_rf_everything"},
    "action parameter out of range": {"task_action": "example_task", "steps": 0},
    "unbalanced quote": {"command": "echo 'never closed"},
    "program outside the allowlist": {"command": "ls -l"},
    "env name with a space": {"command": "echo hi", "env": {"A B": "x"}},
    "negative command timeout": {"command": "echo hi", "timeout_seconds": -1},
}


@pytest.fixture(autouse=True)
def allowlist(settings):
    settings.SCHEDULER_COMMAND_ALLOWLIST = ["echo"]


def payload(config) -> dict:
    return {"name": "never runs", "task_type": "common_task", "interval_seconds": 60, "config": config}


@pytest.mark.parametrize("config", NEVER_RUNS.values(), ids=NEVER_RUNS.keys())
def test_api_create_refuses_a_config_that_cannot_run(operator_client, config):
    response = operator_client.post(reverse("api:task-list"), payload(config), format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response.json()["config"], response.json()
    assert not ScheduledTask.objects.filter(name="never runs").exists()


@pytest.mark.parametrize("config", NEVER_RUNS.values(), ids=NEVER_RUNS.keys())
def test_api_update_refuses_a_config_that_cannot_run_and_changes_nothing(operator_client, config):
    task = ScheduledTaskFactory()
    before = task.config

    url = reverse("api:task-detail", args=[task.pk])
    response = operator_client.patch(url, {"config": config}, format="json")

    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content
    assert response.json()["config"]
    task.refresh_from_db()
    assert task.config == before


def test_task_timeout_must_be_positive(operator_client):
    response = operator_client.post(
        reverse("api:task-list"),
        {**payload({"task_action": "example_task"}), "timeout_seconds": 0},
        format="json",
    )

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["timeout_seconds"]
