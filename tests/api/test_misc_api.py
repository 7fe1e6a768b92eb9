"""Global stats, schedule preview, workflow validation, scheduler status, auth, schema and docs."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scheduler_app.models import SchedulerNode, SchedulerState, TaskExecution
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory


def test_global_stats(user_client, task):
    TaskExecutionFactory(task=task, status="success", start_time=timezone.now())
    TaskExecutionFactory(status="terminated", start_time=timezone.now())
    body = user_client.get(reverse("api:stats")).json()
    assert (body["total"], body["success"], body["failed"], body["success_rate"]) == (2, 1, 1, 0.5)
    assert len(body["by_day"]) == 30


class TestSchedulePreview:
    @pytest.mark.parametrize(
        ("payload", "first_local_time"),
        [
            ({"cron_expression": "30 18 * * *", "timezone": "Asia/Shanghai"}, "18:30:00+08:00"),
            ({"cron_expression": "0 9 * * *", "timezone": "Europe/London", "count": 2}, "09:00:00"),
        ],
    )
    def test_valid_cron(self, user_client, payload, first_local_time):
        response = user_client.post(reverse("api:schedule-preview"), payload, format="json")
        assert response.status_code == HTTPStatus.OK
        body = response.json()
        assert body["valid"] is True
        assert body["errors"] == {}
        assert body["description"]
        assert len(body["next_runs"]) == payload.get("count", 5)
        assert first_local_time in body["next_runs"][0]

    def test_interval_uses_the_default_timezone(self, user_client):
        body = user_client.post(reverse("api:schedule-preview"), {"interval_seconds": 900}, format="json").json()
        assert body["valid"] is True
        assert body["timezone"] == "Asia/Shanghai"
        assert body["description"] == "Every 15 minutes"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"cron_expression": "61 * * * *"}, "cron_expression"),
            ({"cron_expression": "*/0 * * * *"}, "cron_expression"),
            ({"cron_expression": "0 0 * * * *"}, "cron_expression"),
            ({"cron_expression": ""}, "cron_expression"),
            ({}, "cron_expression"),
            ({"interval_seconds": 0}, "interval_seconds"),
            ({"interval_seconds": -5}, "interval_seconds"),
            ({"cron_expression": "* * * * *", "interval_seconds": 5}, "interval_seconds"),
            ({"cron_expression": "* * * * *", "timezone": "Nowhere/City"}, "timezone"),
            ({"cron_expression": "* * * * *", "count": 0}, "count"),
        ],
    )
    def test_invalid_is_400_with_the_same_shape(self, user_client, payload, field):
        response = user_client.post(reverse("api:schedule-preview"), payload, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        body = response.json()
        assert body["valid"] is False
        assert body["next_runs"] == []
        assert field in body["errors"]


class TestWorkflowValidate:
    def test_valid_and_invalid_answer_200(self, user_client):
        first, second = ScheduledTaskFactory(), ScheduledTaskFactory()
        config = {
            "workflow_type": "parallel",
            "tasks": [{"task_id": first.pk}, {"task_id": second.pk, "dependencies": [first.pk]}],
        }
        body = user_client.post(reverse("api:workflow-validate"), {"config": config}, format="json").json()
        assert body == {"valid": True, "message": "The configuration is valid.", "errors": []}
        config["tasks"][0]["dependencies"] = [second.pk]
        response = user_client.post(reverse("api:workflow-validate"), {"config": config}, format="json")
        assert response.status_code == HTTPStatus.OK
        assert response.json()["valid"] is False
        assert "cycle" in response.json()["errors"][0]

    def test_self_reference_needs_the_task_id(self, user_client):
        step = ScheduledTaskFactory()
        flow = ScheduledTaskFactory(task_type="workflow", config={"tasks": [{"task_id": step.pk}]})
        config = {"tasks": [{"task_id": flow.pk}]}
        body = user_client.post(
            reverse("api:workflow-validate"), {"config": config, "task_id": flow.pk}, format="json"
        ).json()
        assert body["valid"] is False
        assert "cannot list itself" in body["message"]

    def test_config_that_is_not_an_object(self, user_client):
        body = user_client.post(reverse("api:workflow-validate"), {"config": [1]}, format="json").json()
        assert body["valid"] is False
        assert "JSON object" in body["errors"][0]

    def test_missing_config_is_400(self, user_client):
        response = user_client.post(reverse("api:workflow-validate"), {}, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "config" in response.json()


def test_scheduler_status(user_client):
    now = timezone.now()
    SchedulerState.objects.create(pk=1, schedule_version=3, leader="n1", lease_expires_at=now + timedelta(seconds=9))
    SchedulerNode.objects.create(
        node_id="n1", host="box", pid=42, started_at=now - timedelta(minutes=1), last_heartbeat=now, is_leader=True
    )
    body = user_client.get(reverse("api:scheduler-status")).json()
    assert body["online"] is True
    assert body["version"] == 3
    assert body["standbys"] == []
    assert {key: body["leader"][key] for key in ("host", "pid")} == {"host": "box", "pid": 42}
    assert {"started_at", "last_heartbeat"} <= set(body["leader"])


class TestAuthentication:
    def test_token_endpoint_and_token_header(self, plain_user):
        plain_user.set_password("s3cret-pass")
        plain_user.save()
        client = APIClient()
        response = client.post(reverse("api-token"), {"username": "reader", "password": "s3cret-pass"}, format="json")
        assert response.status_code == HTTPStatus.OK
        token = response.json()["token"]
        assert client.post(reverse("api-token"), {"username": "reader", "password": "no"}).status_code == 400
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert client.get(reverse("api:task-list")).status_code == HTTPStatus.OK
        client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
        assert client.get(reverse("api:task-list")).status_code == HTTPStatus.UNAUTHORIZED

    def test_anonymous_gets_401_with_a_challenge(self, anon_client):
        response = anon_client.get(reverse("api:task-list"))
        assert response.status_code == HTTPStatus.UNAUTHORIZED
        assert response["WWW-Authenticate"] == "Token"

    def test_session_writes_need_the_csrf_token(self, operator, task):
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(operator)
        assert client.get(reverse("api:task-list")).status_code == HTTPStatus.OK
        trigger = reverse("api:task-trigger", kwargs={"pk": task.pk})
        refused = client.post(trigger)
        assert refused.status_code == HTTPStatus.FORBIDDEN
        assert "CSRF" in refused.json()["detail"]
        secret = "abcdefghijklmnopqrstuvwxyzABCDEF"  # what a browser got from the csrftoken cookie
        client.cookies["csrftoken"] = secret
        accepted = client.post(trigger, HTTP_X_CSRFTOKEN=secret)
        assert accepted.status_code == HTTPStatus.ACCEPTED
        assert TaskExecution.objects.count() == 1

    def test_drf_create_token_command(self, plain_user):
        out = StringIO()
        call_command("drf_create_token", "reader", stdout=out)
        assert Token.objects.get(user=plain_user).key in out.getvalue()


class TestSchemaAndDocs:
    def test_schema_lists_every_endpoint_of_the_design(self, client):
        response = client.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == HTTPStatus.OK
        schema = response.json()
        assert schema["openapi"].startswith("3.")
        paths = {path.removeprefix("/api/v1/scheduler/") for path in schema["paths"]}
        expected = {
            "tasks/",
            "tasks/{id}/",
            "tasks/{id}/trigger/",
            "tasks/{id}/enable/",
            "tasks/{id}/disable/",
            "tasks/{id}/pause/",
            "tasks/{id}/resume/",
            "tasks/{task_pk}/executions/",
            "tasks/{id}/stats/",
            "stats/",
            "tasks/{id}/next-runs/",
            "tasks/{id}/workflow-tasks/",
            "executions/",
            "executions/{id}/",
            "executions/{id}/pause/",
            "executions/{id}/resume/",
            "executions/{id}/terminate/",
            "executions/{id}/rerun/",
            "workflows/validate/",
            "schedules/preview/",
            "scheduler/status/",
        }
        assert expected <= paths
        assert set(schema["paths"]["/api/v1/scheduler/tasks/{id}/"]) == {"get", "put", "patch", "delete"}

    def test_swagger_ui_is_served_from_local_static_files(self, client):
        response = client.get(reverse("api-docs"))
        assert response.status_code == HTTPStatus.OK
        html = response.content.decode()
        assert "drf_spectacular_sidecar/swagger-ui-dist" in html
        assert "cdn" not in html.lower()
        assert "unpkg" not in html.lower()
