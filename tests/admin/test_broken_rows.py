"""The admin pages show rows broken behind the services' back (by SQL) without a server error."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from scheduler_app.models import TaskExecution
from tests.api.test_broken_rows import BROKEN, corrupt
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("columns", BROKEN.values(), ids=BROKEN.keys())
def test_admin_pages_show_a_broken_task(admin_client, live_node, columns):
    task = ScheduledTaskFactory(cron_expression="0 9 * * 1-5", interval_seconds=None)
    execution = TaskExecutionFactory(task=task, status=TaskExecution.Status.FAILED)
    corrupt(task, columns)

    pages = [
        reverse("admin:scheduler_app_scheduledtask_changelist"),
        reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk]),
        reverse("admin:scheduler_app_scheduledtask_dashboard"),
        reverse("admin:scheduler_app_taskexecution_changelist"),
        reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk]),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == HTTPStatus.OK, (url, response.status_code)
