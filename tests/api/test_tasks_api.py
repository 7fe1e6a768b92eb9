"""Task endpoints: shapes, pagination, filters, state changes, run now, history, stats and next runs."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.urls import reverse
from django.utils import timezone
from django_apscheduler.models import DjangoJob

from scheduler_app.models import ScheduledTask, TaskExecution
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

Status = TaskExecution.Status
MODEL_FIELDS = {field.name for field in ScheduledTask._meta.concrete_fields}
COMPUTED = {
    "latest_execution_id",
    "latest_execution_status",
    "latest_execution_time",
    "latest_execution_progress",
    "latest_execution_current_item",
    "schedule_status",
    "next_run_time",
    "schedule_description",
}


def detail(task, name="task-detail"):
    return reverse(f"api:{name}", kwargs={"pk": task.pk})


class TestList:
    def test_page_shape_with_real_count_and_computed_fields(self, user_client):
        tasks = [ScheduledTaskFactory(name=f"t{index:02}") for index in range(7)]
        TaskExecutionFactory(task=tasks[0], status=Status.RUNNING, progress_percent=12.5, current_item="A")
        response = user_client.get(reverse("api:task-list"), {"page_size": 3, "page": 2})
        assert response.status_code == HTTPStatus.OK
        body = response.json()
        assert body["count"] == 7
        assert body["next"].endswith("page=3&page_size=3")
        assert "page_size=3" in body["previous"]
        assert [row["name"] for row in body["results"]] == ["t03", "t04", "t05"]
        first = user_client.get(reverse("api:task-list")).json()["results"][0]
        assert set(first) >= MODEL_FIELDS | COMPUTED
        assert first["latest_execution_status"] == "running"
        assert first["latest_execution_progress"] == 12.5
        assert first["latest_execution_current_item"] == "A"
        assert first["schedule_status"] == "running"
        assert first["schedule_description"] == "Every minute"
        assert isinstance(first["config"], dict)

    def test_page_size_is_capped_at_500(self, user_client):
        ScheduledTaskFactory.create_batch(3)
        response = user_client.get(reverse("api:task-list"), {"page_size": 10_000})
        assert response.status_code == HTTPStatus.OK
        assert response.json()["count"] == 3

    def test_page_past_the_end_is_404(self, user_client):
        assert user_client.get(reverse("api:task-list"), {"page": 9}).status_code == HTTPStatus.NOT_FOUND

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ({"task_type": "workflow"}, ["flow"]),
            ({"enabled": "false"}, ["off"]),
            ({"paused": "true"}, ["held"]),
            ({"schedule_status": "failed"}, ["broken"]),
            ({"schedule_status": "disabled"}, ["off"]),
            ({"search": "PIPE"}, ["flow", "with-desc"]),
        ],
    )
    def test_filters(self, user_client, query, expected):
        step = ScheduledTaskFactory(name="step")
        ScheduledTaskFactory(
            name="flow", task_type="workflow", config={"tasks": [{"task_id": step.pk}]}, description="pipeline"
        )
        ScheduledTaskFactory(name="off", enabled=False)
        ScheduledTaskFactory(name="held", paused=True)
        TaskExecutionFactory(task=ScheduledTaskFactory(name="broken"), status=Status.FAILED)
        ScheduledTaskFactory(name="with-desc", description="the daily pipe")
        response = user_client.get(reverse("api:task-list"), query)
        assert response.status_code == HTTPStatus.OK
        assert sorted(row["name"] for row in response.json()["results"]) == expected

    def test_unknown_filter_value_is_400(self, user_client):
        response = user_client.get(reverse("api:task-list"), {"schedule_status": "exploded"})
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "schedule_status" in response.json()

    def test_ordering_by_next_run_time_puts_unscheduled_last(self, user_client):
        now = timezone.now()
        later, sooner, _none = (ScheduledTaskFactory(name=name) for name in ("later", "sooner", "none"))
        DjangoJob.objects.create(id=later.job_id, next_run_time=now + timedelta(hours=2), job_state=b"")
        DjangoJob.objects.create(id=sooner.job_id, next_run_time=now + timedelta(hours=1), job_state=b"")
        names = [
            r["name"]
            for r in user_client.get(reverse("api:task-list"), {"ordering": "next_run_time"}).json()["results"]
        ]
        assert names == ["sooner", "later", "none"]
        names = [r["name"] for r in user_client.get(reverse("api:task-list"), {"ordering": "-name"}).json()["results"]]
        assert names == ["sooner", "none", "later"]


class TestReadWrite:
    def test_retrieve_and_404(self, user_client, task):
        assert user_client.get(detail(task)).json()["id"] == task.pk
        assert user_client.get(reverse("api:task-detail", kwargs={"pk": 10**9})).status_code == HTTPStatus.NOT_FOUND
        assert user_client.get("/api/v1/scheduler/tasks/abc/").status_code == HTTPStatus.NOT_FOUND

    def test_create_returns_201_with_the_task(self, operator_client, operator):
        payload = {
            "name": "close prices",
            "task_type": "common_task",
            "cron_expression": " 0  18 * * 1-5 ",
            "config": {"task_action": "sync_daily_data", "ts_code": "000001.SZ"},
            "overlap_policy": "queue",
            "job_id": "ignored",
        }
        response = operator_client.post(reverse("api:task-list"), payload, format="json")
        assert response.status_code == HTTPStatus.CREATED, response.json()
        body = response.json()
        task = ScheduledTask.objects.get(pk=body["id"])
        assert body["cron_expression"] == "0 18 * * 1-5"
        assert task.job_id != "ignored"
        assert body["created_by"] == operator.pk
        assert body["created_by_username"] == "operator"
        assert body["schedule_status"] == "pending"
        assert body["overlap_policy"] == "queue"
        assert body["timezone"] == "Asia/Shanghai"
        assert body["max_retries"] == 3

    def test_put_replaces_and_patch_updates(self, operator_client):
        task = ScheduledTaskFactory(description="old", max_retries=9, overlap_policy="allow")
        response = operator_client.put(
            detail(task),
            {"name": "renamed", "task_type": "manual_task", "config": {"command": "echo hi"}},
            format="json",
        )
        assert response.status_code == HTTPStatus.OK, response.json()
        task.refresh_from_db()
        assert (task.name, task.task_type, task.interval_seconds) == ("renamed", "manual_task", None)
        assert (task.description, task.max_retries, task.overlap_policy) == ("", 3, "skip")
        response = operator_client.patch(detail(task), {"description": "new"}, format="json")
        assert response.status_code == HTTPStatus.OK
        assert response.json()["description"] == "new"
        task.refresh_from_db()
        assert task.name == "renamed"

    def test_put_needs_name_and_type(self, operator_client, task):
        response = operator_client.put(detail(task), {"description": "x"}, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert set(response.json()) == {"name", "task_type"}

    def test_delete_204_and_409_naming_the_workflow(self, operator_client):
        step, lonely = ScheduledTaskFactory(), ScheduledTaskFactory()
        ScheduledTaskFactory(name="nightly flow", task_type="workflow", config={"tasks": [{"task_id": step.pk}]})
        response = operator_client.delete(detail(step))
        assert response.status_code == HTTPStatus.CONFLICT
        assert "nightly flow" in response.json()["detail"]
        assert response.json()["code"] == "task_in_use"
        assert operator_client.delete(detail(lonely)).status_code == HTTPStatus.NO_CONTENT
        assert not ScheduledTask.objects.filter(pk=lonely.pk).exists()
        assert operator_client.delete(detail(lonely)).status_code == HTTPStatus.NOT_FOUND


class TestStateChangesAndTrigger:
    @pytest.mark.parametrize(
        ("action", "field", "value"),
        [
            ("enable", "enabled", True),
            ("disable", "enabled", False),
            ("pause", "paused", True),
            ("resume", "paused", False),
        ],
    )
    def test_state_changes_are_idempotent(self, operator_client, action, field, value):
        task = ScheduledTaskFactory(**{field: not value})
        for _ in range(2):
            response = operator_client.post(detail(task, f"task-{action}"))
            assert response.status_code == HTTPStatus.OK
            assert response.json()[field] is value
        assert (
            response.json()["schedule_status"]
            == {
                "enable": "pending",
                "disable": "disabled",
                "pause": "paused",
                "resume": "pending",
            }[action]
        )

    def test_trigger_202_then_409_with_skip(self, operator_client, operator, task):
        response = operator_client.post(detail(task, "task-trigger"))
        assert response.status_code == HTTPStatus.ACCEPTED
        body = response.json()
        assert body["status"] == "pending"
        assert body["trigger"] == "manual"
        assert body["task"] == task.pk
        assert body["task_name"] == task.name
        assert body["triggered_by"] == operator.pk
        again = operator_client.post(detail(task, "task-trigger"))
        assert again.status_code == HTTPStatus.CONFLICT
        assert again.json()["code"] == "run_active"
        assert TaskExecution.objects.count() == 1

    def test_copy(self, operator_client, task):
        response = operator_client.post(detail(task, "task-copy"))
        assert response.status_code == HTTPStatus.CREATED
        assert response.json()["name"] == f"{task.name}_副本"
        assert response.json()["enabled"] is False


class TestTaskReads:
    def test_history_newest_first_with_filters(self, user_client, task):
        now = timezone.now()
        old = TaskExecutionFactory(task=task, status=Status.SUCCESS, start_time=now - timedelta(days=2))
        new = TaskExecutionFactory(task=task, status=Status.FAILED, start_time=now - timedelta(hours=1))
        TaskExecutionFactory(status=Status.FAILED)  # another task's
        url = reverse("api:task-execution-list", kwargs={"task_pk": task.pk})
        body = user_client.get(url).json()
        assert body["count"] == 2
        assert [row["id"] for row in body["results"]] == [new.pk, old.pk]
        assert [r["id"] for r in user_client.get(url, {"status": "success"}).json()["results"]] == [old.pk]
        since = (now - timedelta(days=1)).isoformat()
        assert [r["id"] for r in user_client.get(url, {"since": since}).json()["results"]] == [new.pk]
        assert [r["id"] for r in user_client.get(url, {"until": since}).json()["results"]] == [old.pk]
        missing = reverse("api:task-execution-list", kwargs={"task_pk": 10**9})
        assert user_client.get(missing).status_code == HTTPStatus.NOT_FOUND
        assert user_client.get(url, {"since": "yesterday"}).status_code == HTTPStatus.BAD_REQUEST

    def test_stats(self, user_client, task):
        TaskExecutionFactory(task=task, status=Status.SUCCESS, start_time=timezone.now(), duration_seconds=4)
        body = user_client.get(detail(task, "task-stats"), {"days": 7}).json()
        assert body["total"] == 1
        assert body["success_rate"] == 1.0
        assert body["avg_duration_seconds"] == 4.0
        assert len(body["by_day"]) == 7
        assert body["by_day"][-1]["success"] == 1
        assert user_client.get(detail(task, "task-stats"), {"days": 0}).status_code == HTTPStatus.BAD_REQUEST

    def test_next_runs(self, user_client):
        task = ScheduledTaskFactory(cron_expression="0 9 * * 1-5", interval_seconds=None)
        body = user_client.get(detail(task, "task-next-runs"), {"count": 3}).json()
        assert body["timezone"] == "Asia/Shanghai"
        assert len(body["next_runs"]) == 3
        assert all(run.endswith("09:00:00+08:00") for run in body["next_runs"])
        assert user_client.get(detail(task, "task-next-runs"), {"count": 101}).status_code == HTTPStatus.BAD_REQUEST
        manual = ScheduledTaskFactory(task_type="manual_task", interval_seconds=None)
        assert user_client.get(detail(manual, "task-next-runs")).json()["next_runs"] == []

    def test_workflow_tasks_in_config_order(self, user_client):
        second, first = ScheduledTaskFactory(name="z"), ScheduledTaskFactory(name="a")
        flow = ScheduledTaskFactory(
            task_type="workflow", config={"tasks": [{"task_id": second.pk}, {"task_id": first.pk}]}
        )
        response = user_client.get(detail(flow, "task-workflow-tasks"))
        assert [row["name"] for row in response.json()] == ["z", "a"]
        not_flow = user_client.get(detail(first, "task-workflow-tasks"))
        assert not_flow.status_code == HTTPStatus.BAD_REQUEST
        assert not_flow.json()["code"] == "not_a_workflow"
