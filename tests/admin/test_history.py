"""A task's history page: its versions with what changed, and the restore of one through the task service."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.urls import reverse

from scheduler_app.models import OperatorAction, ScheduledTask
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_create, task_update
from tests.admin.test_permissions import form_of

pytestmark = pytest.mark.django_db


def make_task() -> tuple[ScheduledTask, int]:
    task = task_create(
        data={"name": "h", "interval_seconds": 60, "description": "first", "config": {"task_action": "example_task"}},
        user=SYSTEM,
    )
    first = task.history.get().history_id
    task_update(task=task, data={"interval_seconds": 300, "description": "second"}, user=SYSTEM)
    return task, first


def test_the_history_page_lists_the_versions_and_their_changes(staff_client):
    task, _first = make_task()
    page = staff_client("view_scheduledtask", "change_scheduledtask").get(
        reverse("admin:scheduler_app_scheduledtask_history", args=[task.pk])
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "interval_seconds" in text or "interval" in text.lower()
    assert text.count("/history/") >= 2  # a link to each version


def test_restoring_a_version_goes_through_the_service_and_is_recorded(staff_client):
    task, first = make_task()
    url = reverse("admin:scheduler_app_scheduledtask_simple_history", args=[task.pk, first])
    client = staff_client("view_scheduledtask", "change_scheduledtask")
    assert client.get(url).status_code == 200
    # The form as the version's page shows it: the version's own fields.
    data = form_of("version")(SimpleNamespace(version=ScheduledTask.history.get(history_id=first)))
    response = client.post(url, {**data, "reason": "undo the slow-down"})
    assert response.status_code == 302, response.content.decode()[:2000]
    task.refresh_from_db()
    assert (task.interval_seconds, task.description) == (60, "first")
    record = OperatorAction.objects.get(action=OperatorAction.Action.RESTORE)
    assert (record.task_id, record.reason, record.details["history_id"]) == (task.pk, "undo the slow-down", first)
