"""No 500 for any row the database can hold: rows broken behind the services' back (by SQL) are
answered with 200 or a 4xx that names the problem, on every read route."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import connection
from django.urls import reverse

from scheduler_app.models import ScheduledTask, TaskExecution
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

# Column values the services never write but the database accepts.
BROKEN = {
    "unknown timezone": {"timezone": "'Mars/Olympus'"},
    "cron out of range": {"cron_expression": "'99 * * * *'", "interval_seconds": "NULL"},
    "cron garbage": {"cron_expression": "'every day'", "interval_seconds": "NULL"},
    "config a list": {"config": "'[1, 2]'"},
    "config a string": {"config": "'\"text\"'"},
    "config null": {"config": "'null'"},
    "unknown task type": {"task_type": "'teleport'"},
    "unknown overlap policy": {"overlap_policy": "'sometimes'"},
}


def corrupt(task: ScheduledTask, columns: dict[str, str]) -> None:
    assignments = ", ".join(f"{column} = {value}" for column, value in columns.items())
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {ScheduledTask._meta.db_table} SET {assignments} WHERE id = %s", [task.pk])


def read_routes(task: ScheduledTask, execution: TaskExecution) -> list[str]:
    return [
        reverse("api:task-list"),
        reverse("api:task-list") + "?ordering=-latest_execution_time&schedule_status=failed",
        reverse("api:task-detail", kwargs={"pk": task.pk}),
        reverse("api:task-next-runs", kwargs={"pk": task.pk}),
        reverse("api:task-stats", kwargs={"pk": task.pk}),
        reverse("api:task-workflow-tasks", kwargs={"pk": task.pk}),
        reverse("api:task-execution-list", kwargs={"task_pk": task.pk}),
        reverse("api:execution-list"),
        reverse("api:execution-detail", kwargs={"pk": execution.pk}),
        reverse("api:stats"),
        reverse("api:scheduler-status"),
    ]


@pytest.mark.parametrize("columns", BROKEN.values(), ids=BROKEN.keys())
def test_every_read_route_answers_a_broken_task_without_a_server_error(operator_client, columns):
    task = ScheduledTaskFactory(cron_expression="0 9 * * 1-5", interval_seconds=None)
    execution = TaskExecutionFactory(task=task, status=TaskExecution.Status.FAILED)
    corrupt(task, columns)

    for url in read_routes(task, execution):
        response = operator_client.get(url)
        assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR, (url, response.status_code)


@pytest.mark.parametrize("columns", [BROKEN["unknown timezone"], BROKEN["cron out of range"]], ids=["timezone", "cron"])
def test_next_runs_of_a_broken_schedule_names_the_problem(operator_client, columns):
    task = ScheduledTaskFactory(cron_expression="0 9 * * 1-5", interval_seconds=None)
    corrupt(task, columns)

    response = operator_client.get(reverse("api:task-next-runs", kwargs={"pk": task.pk}))

    assert response.status_code == HTTPStatus.CONFLICT
    body = response.json()
    assert body["code"] == "invalid_schedule"
    assert "Mars/Olympus" in body["detail"] or "99" in body["detail"]
