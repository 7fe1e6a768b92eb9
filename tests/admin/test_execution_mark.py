"""The execution page's mark success / mark failed: shown for finished runs to who may control runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduler_app.models import OperatorAction
from tests.factories import TaskExecutionFactory

pytestmark = pytest.mark.django_db


def page(client, execution) -> str:
    return client.get(reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk])).content.decode()


def mark_url(execution) -> str:
    return reverse("admin:scheduler_app_taskexecution_mark", args=[execution.pk])


def test_a_failed_run_offers_mark_success_only(admin_client):
    execution = TaskExecutionFactory(status="failed")
    html = page(admin_client, execution)
    assert mark_url(execution) in html
    assert "Mark success" in html
    assert "Mark failed" not in html


def test_an_active_run_offers_no_mark(admin_client):
    assert "Mark success" not in page(admin_client, TaskExecutionFactory(status="running"))


def test_marking_records_who_and_why(admin_client, admin_user):
    execution = TaskExecutionFactory(status="success")

    response = admin_client.post(mark_url(execution), {"status": "failed", "reason": "wrong data"})

    assert response.status_code == 302
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert execution.error_message == "Marked failed by admin: wrong data"
    record = OperatorAction.objects.get()
    assert (record.action, record.actor, record.reason) == ("mark_failed", admin_user, "wrong data")


@pytest.mark.parametrize("data", [{"status": "completed"}, {}, {"status": "success", "reason": "x" * 501}])
def test_bad_input_is_a_message_and_changes_nothing(admin_client, data):
    execution = TaskExecutionFactory(status="failed")

    response = admin_client.post(mark_url(execution), data, follow=True)

    assert "Choose success or failed" in response.content.decode()
    execution.refresh_from_db()
    assert execution.status == "failed"
    assert not OperatorAction.objects.exists()


def test_a_state_that_does_not_allow_it_is_a_message(admin_client):
    execution = TaskExecutionFactory(status="skipped")

    response = admin_client.post(mark_url(execution), {"status": "success"}, follow=True)

    assert "Only a finished run can be marked" in response.content.decode()
    execution.refresh_from_db()
    assert execution.status == "skipped"
