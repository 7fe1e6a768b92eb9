"""No N+1: list pages cost the same number of queries for 5 rows and for 100."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_apscheduler.models import DjangoJob

from tests.api.conftest import client_for
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, UserFactory

PERMISSION_QUERIES = 2  # the user's own permissions and their groups' (ModelBackend caches them on the user)


def add_tasks(count: int, creator) -> None:
    now = timezone.now()
    for index in range(count):
        kind = index % 3
        task = ScheduledTaskFactory(
            created_by=creator,
            updated_by=creator,
            task_type="manual_task" if kind == 0 else "common_task",
            interval_seconds=None if kind == 0 else 60,
            cron_expression=None,
        )
        DjangoJob.objects.create(id=task.job_id, next_run_time=now + timedelta(minutes=index), job_state=b"")
        TaskExecutionFactory(task=task, status="failed", start_time=now)
        TaskExecutionFactory(task=task, status=("success", "running", "failed", "pending")[index % 4], start_time=now)


def queries_for(user, url, params) -> tuple[int, dict]:
    """The queries of one request by `user`, loaded afresh as every real request loads its user (so its
    permission cache starts empty)."""
    client = client_for(type(user).objects.get(pk=user.pk))
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == HTTPStatus.OK
    return len(captured), response.json()


@pytest.mark.parametrize("ordering", ["name", "-latest_execution_time", "next_run_time"])
def test_task_list_costs_the_same_for_5_and_100_tasks(operator, ordering):
    url = reverse("api:task-list")
    params = {"page_size": 500, "ordering": ordering}
    add_tasks(5, UserFactory(username="creator"))
    # count + page of ids + the tasks + their latest executions, and the permission check (the user's and
    # their groups' permissions, read once per request by Django's ModelBackend); authentication is forced here
    small_queries, small = queries_for(operator, url, params)
    add_tasks(95, operator)
    large_queries, large = queries_for(operator, url, params)
    assert small_queries == large_queries <= 4 + PERMISSION_QUERIES
    assert (small["count"], large["count"]) == (5, 100)
    assert {row["schedule_status"] for row in large["results"]} == {"success", "running", "failed", "pending"}
    assert all(row["created_by_username"] for row in large["results"])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("execution-list", None), ("task-execution-list", "task"), ("task-workflow-tasks", "workflow")],
)
def test_other_lists_do_not_grow_with_rows(operator, name, kwargs):
    task = ScheduledTaskFactory()
    steps = [task]

    def grow(count):
        for _ in range(count):
            TaskExecutionFactory(task=task, status="success", triggered_by=operator)
            steps.append(ScheduledTaskFactory())

    grow(3)
    flow = ScheduledTaskFactory(task_type="workflow", config={"tasks": [{"task_id": step.pk} for step in steps]})
    url_kwargs = {"task": {"task_pk": task.pk}, "workflow": {"pk": flow.pk}, None: None}[kwargs]
    url = reverse(f"api:{name}", kwargs=url_kwargs)
    small, _ = queries_for(operator, url, {"page_size": 500})
    grow(40)
    flow.config = {"tasks": [{"task_id": step.pk} for step in steps]}
    flow.save()
    large, body = queries_for(operator, url, {"page_size": 500})
    assert small == large <= 3 + PERMISSION_QUERIES
    rows = body if isinstance(body, list) else body["results"]
    assert len(rows) >= 40
