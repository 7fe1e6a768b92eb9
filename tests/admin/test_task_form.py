"""The task form: fieldsets, the preview, validation identical to the API's, saving and deleting through services."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from scheduler_app.models import ScheduledTask, SchedulerState
from tests.admin.conftest import make_run
from tests.api.test_config_validation import NEVER_RUNS
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

ADD = "admin:scheduler_app_scheduledtask_add"


def form_data(**overrides) -> dict[str, str]:
    data = {
        "name": "nightly",
        "task_type": "common_task",
        "description": "",
        "enabled": "on",
        "cron_expression": "0 18 * * 1-5",
        "interval_seconds": "",
        "timezone": "Asia/Shanghai",
        "misfire_grace_seconds": "300",
        "catch_up": "once",
        "config": json.dumps({"task_action": "example_task", "steps": 2}),
        "max_retries": "3",
        "retry_interval": "60",
        "retry_backoff": "1.0",
        "timeout_seconds": "",
        "overlap_policy": "skip",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def errors_of(response) -> dict[str, list[str]]:
    return {field: list(messages) for field, messages in response.context["adminform"].form.errors.items()}


def test_add_page_shows_fieldsets_preview_and_editor(admin_client):
    ScheduledTaskFactory(name="candidate-step")
    response = admin_client.get(reverse(ADD))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    for title in ("Schedule", "What to run", "Retries, limits and overlaps"):
        assert f">{title}<" in html
    assert ">Record<" not in html  # nothing to record before the first save
    assert 'id="zq-schedule-preview"' in html
    assert 'id="zq-workflow-editor"' in html
    assert 'id="zq-workflow-tasks"' in html
    assert "candidate-step" in html
    assert 'id="zq-task-form-config"' in html
    assert reverse("api:schedule-preview") in html
    assert "scheduler_app/task_form.js" in html
    assert "scheduler_app/vendor/cytoscape/cytoscape.min.js" in html
    assert '<datalist id="zq-timezones">' in html
    assert '<option value="Europe/Paris">' in html


def test_create_goes_through_the_service(admin_client, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(ADD), form_data())

    assert response.status_code == HTTPStatus.FOUND, errors_of(response)
    task = ScheduledTask.objects.get(name="nightly")
    assert task.cron_expression == "0 18 * * 1-5"
    assert task.config == {"task_action": "example_task", "steps": 2}
    assert task.created_by == admin_user
    assert task.job_id.startswith("task-")
    assert SchedulerState.objects.get(pk=1).schedule_version >= 1


def test_invalid_cron_is_shown_on_the_field(admin_client):
    response = admin_client.post(reverse(ADD), form_data(cron_expression="61 * * * *"))

    assert response.status_code == HTTPStatus.OK
    errors = errors_of(response)
    assert "minute" in errors["cron_expression"][0]
    assert "out of range" in errors["cron_expression"][0]
    assert not ScheduledTask.objects.exists()
    # the server-side preview shows the same problem
    assert "errornote" in response.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"config": "{not json"}, "config", "valid JSON"),
        ({"config": "[]"}, "config", "JSON object"),
        ({"config": json.dumps({"steps": 1})}, "config", '"command" or a "task_action"'),
        ({"config": json.dumps({"command": "x", "task_action": "y"})}, "config", "not both"),
        ({"cron_expression": "", "interval_seconds": ""}, "cron_expression", "needs a cron expression"),
        ({"interval_seconds": "60"}, "interval_seconds", "not both"),
        ({"task_type": "manual_task"}, "cron_expression", "manual task"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Mars/Olympus"),
        ({"retry_backoff": "0.5"}, "retry_backoff", "at least 1"),
        ({"description": "x" * 2001}, "description", "at most 2000 characters"),
    ],
)
def test_validation_errors_land_on_their_field(admin_client, overrides, field, fragment):
    response = admin_client.post(reverse(ADD), form_data(**overrides))

    assert response.status_code == HTTPStatus.OK
    errors = errors_of(response)
    assert field in errors, errors
    assert any(fragment in message for message in errors[field]), errors
    assert not ScheduledTask.objects.exists()


def test_duplicate_name_is_a_field_error(admin_client):
    ScheduledTaskFactory(name="nightly")
    response = admin_client.post(reverse(ADD), form_data())
    assert "name" in errors_of(response)


@pytest.mark.parametrize(
    "overrides",
    [
        {"config": {"steps": 1}},
        {"config": {"command": "x", "task_action": "y"}},
        {"cron_expression": "61 * * * *"},
        {"task_type": "manual_task"},
        {"timezone": "Mars/Olympus"},
        {"description": "x" * 2001},
    ],
)
def test_admin_and_api_refuse_alike(admin_client, admin_user, overrides):
    """The same invalid task gives the same messages in the admin form and in the API (both call task_validate)."""
    api = APIClient()
    api.force_authenticate(admin_user)
    body = {
        "name": "nightly",
        "task_type": "common_task",
        "cron_expression": "0 18 * * 1-5",
        "timezone": "Asia/Shanghai",
        "config": {"task_action": "example_task"},
        **overrides,
    }
    api_response = api.post(reverse("api:task-list"), body, format="json")
    assert api_response.status_code == HTTPStatus.BAD_REQUEST
    form_overrides = {key: json.dumps(value) if key == "config" else value for key, value in overrides.items()}
    admin_errors = errors_of(admin_client.post(reverse(ADD), form_data(**form_overrides)))
    api_errors = api_response.json()
    for field, messages in admin_errors.items():
        assert field in api_errors, (admin_errors, api_errors)
        assert set(messages) & set(api_errors[field]), (admin_errors, api_errors)


def test_workflow_config_checked_like_the_api(admin_client, workflow):
    a = ScheduledTask.objects.get(name="step-a")
    b = ScheduledTask.objects.get(name="step-b")
    cycle = {
        "tasks": [
            {"task_id": a.pk, "dependencies": [b.pk]},
            {"task_id": b.pk, "dependencies": [a.pk]},
        ]
    }
    response = admin_client.post(reverse(ADD), form_data(name="wf", task_type="workflow", config=json.dumps(cycle)))
    assert any("cycle" in message for message in errors_of(response)["config"])

    self_ref = {"tasks": [{"task_id": workflow.pk, "dependencies": []}]}
    response = admin_client.post(
        reverse("admin:scheduler_app_scheduledtask_change", args=[workflow.pk]),
        form_data(name="flow", task_type="workflow", config=json.dumps(self_ref)),
    )
    assert any("itself" in message for message in errors_of(response)["config"])


def test_change_page_shows_preview_buttons_and_record(admin_client):
    task = ScheduledTaskFactory(name="nightly", cron_expression="30 18 * * *", interval_seconds=None)
    make_run(task, "running")

    response = admin_client.get(reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk]))

    html = response.content.decode()
    assert "At 18:30" in html
    assert html.count(" 18:30:00 +08:00 ") == 5  # next 5 runs in the task's timezone
    assert ">Record<" in html
    assert task.job_id in html
    run_url = reverse("admin:scheduler_app_scheduledtask_run", args=[task.pk])
    assert f'formaction="{run_url}"' in html
    assert 'data-zq-verb="run" disabled' in html  # a run is in progress
    assert reverse("admin:scheduler_app_scheduledtask_pause", args=[task.pk]) in html
    assert reverse("admin:scheduler_app_scheduledtask_copy", args=[task.pk]) in html
    assert f"?task__id__exact={task.pk}" in html


def test_change_page_of_a_workflow_lists_candidates_with_status(admin_client, workflow):
    a = ScheduledTask.objects.get(name="step-a")
    make_run(a, "failed")

    response = admin_client.get(reverse("admin:scheduler_app_scheduledtask_change", args=[workflow.pk]))

    html = response.content.decode()
    marker = 'id="zq-workflow-tasks" type="application/json">'
    start = html.index(marker) + len(marker)
    candidates = json.loads(html[start : html.index("</script>", start)])
    assert {"id": a.pk, "name": "step-a", "type": "manual_task", "enabled": True, "status": "failed"} in candidates
    assert workflow.pk not in [candidate["id"] for candidate in candidates]


def test_update_goes_through_the_service(admin_client, admin_user):
    task = ScheduledTaskFactory(name="old", interval_seconds=60)
    response = admin_client.post(
        reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk]),
        form_data(name="new", cron_expression="", interval_seconds="120"),
    )
    assert response.status_code == HTTPStatus.FOUND, errors_of(response)
    task.refresh_from_db()
    assert (task.name, task.interval_seconds, task.cron_expression) == ("new", 120, None)
    assert task.updated_by == admin_user


def test_disabling_a_workflow_step_in_the_form_is_a_field_error(admin_client, workflow):
    step = ScheduledTask.objects.get(name="step-a")
    data = form_data(name="step-a", task_type="manual_task", cron_expression="", enabled=None)
    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_change", args=[step.pk]), data)
    assert response.status_code == HTTPStatus.OK
    assert '"flow"' in errors_of(response)["enabled"][0]
    step.refresh_from_db()
    assert step.enabled


def test_change_and_add_need_permissions(staff_client):
    task = ScheduledTaskFactory()
    viewer = staff_client("view_scheduledtask")
    assert viewer.get(reverse(ADD)).status_code == HTTPStatus.FORBIDDEN
    response = viewer.get(reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk]))
    assert response.status_code == HTTPStatus.OK  # a read-only view
    assert "zq-row-action" in response.content.decode()
    assert reverse("admin:scheduler_app_scheduledtask_pause", args=[task.pk]) not in response.content.decode()
    response = viewer.post(reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk]), form_data())
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_delete_refused_while_a_workflow_uses_the_task(admin_client, workflow):
    step = ScheduledTask.objects.get(name="step-a")
    url = reverse("admin:scheduler_app_scheduledtask_delete", args=[step.pk])
    assert admin_client.get(url).status_code == HTTPStatus.OK

    response = admin_client.post(url, {"post": "yes"}, follow=True)

    assert response.status_code == HTTPStatus.OK
    assert ScheduledTask.objects.filter(pk=step.pk).exists()
    assert response.redirect_chain[-1][0] == reverse("admin:scheduler_app_scheduledtask_change", args=[step.pk])
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert '"flow"' in message


def test_delete_refused_while_a_run_has_started(admin_client):
    task = ScheduledTaskFactory()
    make_run(task, "running")
    url = reverse("admin:scheduler_app_scheduledtask_delete", args=[task.pk])
    admin_client.post(url, {"post": "yes"})
    assert ScheduledTask.objects.filter(pk=task.pk).exists()


def test_delete_through_the_service(admin_client):
    task = ScheduledTaskFactory()
    make_run(task, "success")
    response = admin_client.post(reverse("admin:scheduler_app_scheduledtask_delete", args=[task.pk]), {"post": "yes"})
    assert response.status_code == HTTPStatus.FOUND
    assert not ScheduledTask.objects.filter(pk=task.pk).exists()


def test_schedule_error_is_shown_on_the_page_and_in_the_banner(admin_client):
    task = ScheduledTaskFactory(name="bad", schedule_error="Trigger cannot be built: boom")
    html = admin_client.get(reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])).content.decode()
    assert 'id="zq-banner-broken"' in html
    assert html.count("Trigger cannot be built: boom") >= 2


@pytest.mark.parametrize("config", NEVER_RUNS.values(), ids=NEVER_RUNS.keys())
def test_admin_form_refuses_a_config_that_cannot_run(staff_client, settings, config):
    settings.SCHEDULER_COMMAND_ALLOWLIST = ["echo"]
    # With the command permission, so that what refuses the commands is their validation
    response = staff_client("add_scheduledtask", "change_command_scheduledtask").post(
        reverse(ADD), form_data(name="never runs", config=json.dumps(config))
    )

    assert response.status_code == HTTPStatus.OK  # the form again, with the error
    assert response.context["adminform"].form.errors["config"]
    assert not ScheduledTask.objects.filter(name="never runs").exists()


COMMAND = {"command": "python -m scheduler_app.jobs.example_job --steps 1"}


def test_what_a_command_task_runs_is_read_only_without_the_command_permission(staff_client):
    task = ScheduledTaskFactory(name="cmd", config={**COMMAND, "env": {"TOKEN": "t"}})
    url = reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])
    form = staff_client("change_scheduledtask").get(url).context["adminform"].form
    assert "config" not in form.fields
    assert "task_type" not in form.fields
    form = staff_client("change_scheduledtask", "change_command_scheduledtask").get(url).context["adminform"].form
    assert {"config", "task_type"} <= set(form.fields)


def test_a_command_in_the_form_without_the_command_permission_is_a_field_error(staff_client):
    task = ScheduledTaskFactory(name="action", task_type="manual_task", interval_seconds=None)
    url = reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])
    data = form_data(name="action", task_type="manual_task", cron_expression="", config=json.dumps(COMMAND))
    response = staff_client("change_scheduledtask").post(url, data)
    assert response.status_code == HTTPStatus.OK
    [message] = errors_of(response)["config"]
    assert "scheduler_app.change_command_scheduledtask" in message
    task.refresh_from_db()
    assert "command" not in task.config
    assert staff_client("change_scheduledtask", "change_command_scheduledtask").post(url, data).status_code == 302
    task.refresh_from_db()
    assert task.config == COMMAND
