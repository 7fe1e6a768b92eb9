"""Execution endpoints: list filters, detail with children, and the control actions' status codes."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app.models import TaskExecution
from tests.factories import TaskExecutionFactory

Status = TaskExecution.Status
MODEL_FIELDS = {field.name for field in TaskExecution._meta.concrete_fields}


def url(name, execution):
    return reverse(f"api:execution-{name}", kwargs={"pk": execution.pk})


class TestReads:
    def test_list_newest_first_with_filters(self, user_client, task):
        parent = TaskExecutionFactory(task=task, status=Status.RUNNING, trigger="schedule")
        child = TaskExecutionFactory(status=Status.SUCCESS, trigger="workflow", parent=parent)
        other = TaskExecutionFactory(status=Status.FAILED)
        listing = reverse("api:execution-list")
        body = user_client.get(listing).json()
        assert body["count"] == 3
        assert [row["id"] for row in body["results"]] == [other.pk, child.pk, parent.pk]
        assert MODEL_FIELDS | {"task_name"} <= set(body["results"][0])
        assert [r["id"] for r in user_client.get(listing, {"task": task.pk}).json()["results"]] == [parent.pk]
        assert [r["id"] for r in user_client.get(listing, {"parent": parent.pk}).json()["results"]] == [child.pk]
        both = user_client.get(listing, {"status": ["running", "failed"]}).json()["results"]
        assert {r["id"] for r in both} == {parent.pk, other.pk}
        assert [r["id"] for r in user_client.get(listing, {"trigger": "workflow"}).json()["results"]] == [child.pk]
        assert user_client.get(listing, {"task": "x"}).status_code == HTTPStatus.BAD_REQUEST
        assert user_client.get(listing, {"task": 2**70}).status_code == HTTPStatus.BAD_REQUEST

    def test_detail_has_children_ids_and_result_object(self, user_client, task):
        parent = TaskExecutionFactory(task=task, status=Status.SUCCESS, result={"success": True})
        children = [TaskExecutionFactory(task=task, status=Status.SUCCESS, parent=parent) for _ in range(2)]
        body = user_client.get(url("detail", parent)).json()
        assert body["children"] == [child.pk for child in children]
        assert body["result"] == {"success": True}
        assert body["task"] == task.pk
        assert body["task_name"] == task.name
        assert body["parent"] is None
        missing = reverse("api:execution-detail", kwargs={"pk": 10**12})
        assert user_client.get(missing).status_code == HTTPStatus.NOT_FOUND


class TestControls:
    @pytest.mark.parametrize(
        ("action", "status", "expected"),
        [
            ("pause", Status.RUNNING, HTTPStatus.OK),
            ("pause", Status.PENDING, HTTPStatus.CONFLICT),
            ("pause", Status.SUCCESS, HTTPStatus.CONFLICT),
            ("resume", Status.PAUSED, HTTPStatus.OK),
            ("resume", Status.FAILED, HTTPStatus.ACCEPTED),
            ("resume", Status.TERMINATED, HTTPStatus.ACCEPTED),
            ("resume", Status.SUCCESS, HTTPStatus.CONFLICT),
            ("terminate", Status.PENDING, HTTPStatus.OK),
            ("terminate", Status.RUNNING, HTTPStatus.ACCEPTED),
            ("terminate", Status.PAUSED, HTTPStatus.ACCEPTED),
            ("terminate", Status.FAILED, HTTPStatus.CONFLICT),
            ("rerun", Status.SUCCESS, HTTPStatus.ACCEPTED),
            ("rerun", Status.RUNNING, HTTPStatus.CONFLICT),
        ],
    )
    def test_status_codes(self, operator_client, task, action, status, expected):
        execution = TaskExecutionFactory(task=task, status=status, is_paused=status == Status.PAUSED)
        response = operator_client.post(url(action, execution))
        assert response.status_code == expected, response.json()
        if expected == HTTPStatus.CONFLICT:
            assert response.json()["code"] == "invalid_state"

    def test_resume_answers_the_new_run(self, operator_client, task):
        failed = TaskExecutionFactory(task=task, status=Status.FAILED, current_item="step 3")
        body = operator_client.post(url("resume", failed)).json()
        assert body["id"] != failed.pk
        assert body["parent"] == failed.pk
        assert body["trigger"] == "resume"
        assert body["result"] == {"resume_from_execution_id": failed.pk}
        assert body["current_item"] == "step 3"

    def test_terminate_pending_and_started(self, operator_client, task):
        pending = TaskExecutionFactory(task=task, status=Status.PENDING)
        assert operator_client.post(url("terminate", pending)).json()["status"] == "terminated"
        running = TaskExecutionFactory(task=task, status=Status.RUNNING)
        body = operator_client.post(url("terminate", running)).json()
        assert body["status"] == "running"
        assert body["terminate_requested"] is True

    def test_rerun_refused_by_the_overlap_policy(self, operator_client, task):
        done = TaskExecutionFactory(task=task, status=Status.SUCCESS)
        TaskExecutionFactory(task=task, status=Status.RUNNING)
        response = operator_client.post(url("rerun", done))
        assert response.status_code == HTTPStatus.CONFLICT
        assert response.json()["code"] == "run_active"
