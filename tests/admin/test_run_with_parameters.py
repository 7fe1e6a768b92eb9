"""The admin's run-with-parameters form: queues a run with config keys replaced; bad input is a form error."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduler_app.models import TaskExecution
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db

CONFIG = {"task_action": "example_task", "steps": 2}


@pytest.fixture
def task():
    return ScheduledTaskFactory(task_type="manual_task", cron_expression=None, interval_seconds=None, config=CONFIG)


def url(task) -> str:
    return reverse("admin:scheduler_app_scheduledtask_run_with_parameters", args=[task.pk])


def test_the_form_shows_the_config_and_the_declared_parameters(admin_client, task):
    page = admin_client.get(url(task)).content.decode()

    assert "duration_seconds" in page
    assert "success_rate" in page
    assert "&quot;steps&quot;: 2" in page
    change = admin_client.get(reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])).content.decode()
    assert url(task) in change


def test_a_run_with_parameters_is_queued(admin_client, task):
    response = admin_client.post(url(task), {"config": '{"steps": 7}'})

    execution = TaskExecution.objects.get(task=task)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk])
    assert execution.config_override == {"steps": 7}
    assert execution.triggered_by.username == "admin"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"steps": 0}', "steps must be at least 1."),
        ("[1]", "The config must be a JSON object"),
        ("{not json", "Enter a valid JSON"),
    ],
)
def test_bad_parameters_are_a_form_error_and_queue_nothing(admin_client, task, config, message):
    response = admin_client.post(url(task), {"config": config})

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["config"])
    assert not TaskExecution.objects.exists()
