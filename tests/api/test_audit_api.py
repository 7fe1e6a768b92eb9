"""GET tasks/{id}/history/ and tasks/{id}/actions/, and the reason of a manual action."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app.models import OperatorAction
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db


def url(name: str, task) -> str:
    return reverse(f"scheduler_api:task-{name}", args=[task.pk])


def test_history_lists_versions_newest_first_with_their_changes(operator_client, operator):
    task = ScheduledTaskFactory(name="h", interval_seconds=60)
    response = operator_client.patch(url("detail", task), {"interval_seconds": 90}, format="json")
    assert response.status_code == HTTPStatus.OK, response.data
    body = operator_client.get(url("history", task)).json()
    assert body["count"] == 2
    latest, first = body["results"]
    assert (latest["history_type"], latest["history_user"]) == ("changed", operator.get_username())
    assert latest["changes"] == [{"field": "interval_seconds", "old": 60, "new": 90}]
    assert (first["history_type"], first["changes"]) == ("created", [])


def test_a_reason_is_kept_with_the_action(operator_client, operator):
    task = ScheduledTaskFactory(name="a", interval_seconds=60)
    response = operator_client.post(url("disable", task), {"reason": "provider down"}, format="json")
    assert response.status_code == HTTPStatus.OK
    assert operator_client.post(url("trigger", task), format="json").status_code == HTTPStatus.ACCEPTED
    body = operator_client.get(url("actions", task)).json()
    assert [(row["action"], row["reason"], row["actor_name"]) for row in body["results"]] == [
        ("run_now", "", operator.get_username()),
        ("disable", "provider down", operator.get_username()),
    ]
    assert body["results"][0]["execution_id"] is not None


def test_a_bad_reason_is_400_and_nothing_happens(operator_client):
    task = ScheduledTaskFactory(name="b", interval_seconds=60)
    response = operator_client.post(url("pause", task), {"reason": "x" * 501}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "reason" in response.json()
    response = operator_client.post(url("trigger", task), [1], format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not OperatorAction.objects.exists()


def test_history_of_an_unknown_task_is_404(operator_client):
    assert operator_client.get("/api/v1/scheduler/tasks/999999/history/").status_code == HTTPStatus.NOT_FOUND
