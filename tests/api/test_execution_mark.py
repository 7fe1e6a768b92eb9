"""POST executions/{id}/mark/: an operator corrects how a finished run ended, through the named transition,
recorded with who and why; the statistics move the run; bad input is a 400 and changes nothing."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app import selectors
from scheduler_app.models import OperatorAction, TaskExecution
from scheduler_app.runtime import runner as runs
from tests.executors.helpers import fast, make_execution, make_task  # noqa: F401 - fast is a fixture
from tests.factories import TaskExecutionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast")]


@pytest.fixture
def failed_run() -> TaskExecution:
    task = make_task({"task_action": "example_task", "duration_seconds": 0, "steps": 1, "success_rate": 0})
    task.max_retries = 0
    task.save(update_fields=["max_retries"])
    final = runs.execution_run(execution_id=make_execution(task).pk)
    assert final.status == "failed"
    return final


def mark(client, execution, body):
    return client.post(reverse("api:execution-mark", args=[execution.pk]), body, format="json")


def test_a_failed_run_marked_success_counts_as_success(operator_client, operator, failed_run):
    response = mark(operator_client, failed_run, {"status": "success", "reason": "fixed by hand"})

    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body["status"] == "success"
    assert body["error_message"] == ""
    assert body["result"]["success"] is True
    assert body["result"]["message"] == "Marked success by operator: fixed by hand"
    record = OperatorAction.objects.get()
    assert (record.action, record.actor, record.execution_id, record.reason) == (
        "mark_success",
        operator,
        failed_run.pk,
        "fixed by hand",
    )
    assert record.details == {"from": "failed", "to": "success"}
    stats = selectors.task_stats(task=failed_run.task, days=30)
    assert (stats["success"], stats["failed"]) == (1, 0)
    failed_run.task.refresh_from_db()
    assert failed_run.task.latest_execution_status == "success"
    assert not TaskExecution.objects.filter(trigger="retry").exists()


def test_a_run_marked_success_can_be_marked_failed_again(operator_client, failed_run):
    mark(operator_client, failed_run, {"status": "success"})
    response = mark(operator_client, failed_run, {"status": "failed"})

    assert response.status_code == HTTPStatus.OK
    assert response.json()["error_message"] == "Marked failed by operator."
    stats = selectors.task_stats(task=failed_run.task, days=30)
    assert (stats["success"], stats["failed"]) == (0, 1)
    assert list(OperatorAction.objects.order_by("pk").values_list("action", flat=True)) == [
        "mark_success",
        "mark_failed",
    ]


@pytest.mark.parametrize(
    ("status", "mark_as"),
    [
        ("running", "success"),
        ("pending", "failed"),
        ("skipped", "success"),
        ("failed", "failed"),
        ("success", "success"),
        ("terminated", "failed"),
    ],
)
def test_a_state_that_does_not_allow_the_mark_is_a_409(operator_client, status, mark_as):
    execution = TaskExecutionFactory(status=status)

    response = mark(operator_client, execution, {"status": mark_as})

    assert response.status_code == HTTPStatus.CONFLICT
    assert response.json()["code"] == "invalid_state"
    execution.refresh_from_db()
    assert execution.status == status
    assert not OperatorAction.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "completed"}, "status"),
        ({}, "status"),
        ({"status": "success", "reason": "x" * 501}, "reason"),
        ({"status": "success", "reason": 3.5j}, None),
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(operator_client, failed_run, body, field):
    if field is None:
        response = operator_client.post(
            reverse("api:execution-mark", args=[failed_run.pk]), "[]", content_type="application/json"
        )
    else:
        response = mark(operator_client, failed_run, body)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    if field:
        assert field in response.json()
    failed_run.refresh_from_db()
    assert failed_run.status == "failed"
    assert not OperatorAction.objects.exists()
