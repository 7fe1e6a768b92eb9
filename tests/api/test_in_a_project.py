"""The API in someone else's project: its own REST_FRAMEWORK settings (or none) and its own URL prefixes.

The scheduler's endpoints carry what the API contract needs (JSON bodies, filters, pagination, the mapping
of domain errors to 400/404/409, the documented error answers); the project keeps authentication,
renderers and throttles.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from scheduler_app.models import ScheduledTask
from tests.api import project_urls
from tests.factories import ScheduledTaskFactory, UserFactory, user_with

pytestmark = pytest.mark.django_db


# project_urls is imported above, under the site's settings: drf-spectacular's decorators take DRF's
# DEFAULT_SCHEMA_CLASS when the views are defined, and a project that publishes a schema has set it by then
# (drf-spectacular's install step); the fixtures below change the settings only after that.


@pytest.fixture
def bare_project(settings):
    """An empty REST_FRAMEWORK setting: DRF's defaults (session and basic authentication, form parsers,
    no filter backend, no pagination, DRF's own exception handler and schema class)."""
    settings.REST_FRAMEWORK = {}  # assigned, not deleted: DRF reloads its settings on the change signal
    settings.ROOT_URLCONF = "tests.api.project_urls"


@pytest.fixture
def staff(bare_project) -> APIClient:
    """An operator: the scheduler's model permissions (is_staff alone grants nothing)."""
    client = APIClient()
    client.force_authenticate(
        user_with("ops", "view_scheduledtask", "add_scheduledtask", "run_scheduledtask", is_staff=True)
    )
    return client


def test_mounted_where_the_project_includes_it(bare_project):
    assert project_urls.urlpatterns[1].app_name == "scheduler_api"
    assert reverse("scheduler_api:task-list") == "/ops/scheduler/tasks/"


def test_filters_and_pagination_do_not_depend_on_the_projects_defaults(staff):
    ScheduledTaskFactory(name="on")
    ScheduledTaskFactory(name="off", enabled=False)
    response = staff.get("/ops/scheduler/tasks/", {"enabled": "false"})
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["count"] == 1
    assert [row["name"] for row in body["results"]] == ["off"]


def test_domain_errors_keep_their_status_and_code(staff):
    task = ScheduledTaskFactory(name="once", overlap_policy=ScheduledTask.OverlapPolicy.SKIP)
    assert staff.post(f"/ops/scheduler/tasks/{task.pk}/trigger/").status_code == HTTPStatus.ACCEPTED
    again = staff.post(f"/ops/scheduler/tasks/{task.pk}/trigger/")
    assert again.status_code == HTTPStatus.CONFLICT
    assert again.json()["code"] == "run_active"
    invalid = staff.post("/ops/scheduler/tasks/", {"name": "x", "task_type": "common_task"}, format="json")
    assert invalid.status_code == HTTPStatus.BAD_REQUEST
    assert "cron_expression" in invalid.json() or "interval_seconds" in invalid.json()


def test_bodies_are_json_only(staff):
    response = staff.post("/ops/scheduler/tasks/", {"name": "form", "task_type": "manual_task"}, format="multipart")
    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert not ScheduledTask.objects.exists()


def test_the_schema_documents_the_error_answers_under_the_projects_prefix(bare_project, settings):
    # The one setting drf-spectacular asks of every project that publishes a schema with it.
    settings.REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    client = APIClient()
    client.force_authenticate(UserFactory(username="reader"))
    schema = client.get("/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    task_list = schema["paths"]["/ops/scheduler/tasks/"]
    assert {"401", "403", "404"} <= set(task_list["get"]["responses"])  # 404: a page past the last
    assert {"400", "401", "403"} <= set(task_list["post"]["responses"])
    assert "404" in schema["paths"]["/ops/scheduler/tasks/{id}/"]["get"]["responses"]
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_the_admin_task_form_calls_the_api_where_it_is_mounted(bare_project):
    client = Client()
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    page = client.get("/backoffice/scheduler_app/scheduledtask/add/").content.decode()
    assert "/ops/scheduler/schedules/preview/" in page
    assert "/ops/scheduler/workflows/validate/" in page
