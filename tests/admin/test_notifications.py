"""The notification pages of the admin: subscriptions are edited there; events and attempts are shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from scheduler_app.models import NotificationSubscription
from scheduler_app.ops.events import EventDraft, events_record
from scheduler_app.runtime.clock import db_now
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db


def test_a_subscription_is_added_and_a_bad_one_refused_on_its_field(admin_client):
    task = ScheduledTaskFactory()
    url = reverse("admin:scheduler_app_notificationsubscription_add")
    form = {
        "name": "on call",
        "enabled": "on",
        "task": task.pk,
        "channel": "webhook",
        "webhook_url": "https://hooks.example.com/zquant",
        "secret": "s" * 32,
        "on_failure": "on",
    }
    refused = admin_client.post(url, {**form, "webhook_url": ""})
    assert refused.status_code == 200
    assert "A webhook subscription needs a URL." in refused.content.decode()
    assert admin_client.post(url, form).status_code == 302
    assert NotificationSubscription.objects.get().task == task


def test_events_and_deliveries_are_listed_with_their_outcome(admin_client):
    task = ScheduledTaskFactory(name="nightly")
    NotificationSubscription.objects.create(name="hook", channel="webhook", webhook_url="http://127.0.0.1:9/x")
    [event] = events_record(
        drafts=[EventDraft(kind="failed", key="failed:1", summary="nightly failed", task_id=task.pk, execution_id=7)],
        now=db_now(),
    )
    events_page = admin_client.get(reverse("admin:scheduler_app_notificationevent_changelist"))
    assert "nightly failed" in events_page.content.decode()
    detail = admin_client.get(reverse("admin:scheduler_app_notificationevent_change", args=[event.pk]))
    assert "http://127.0.0.1:9/x" in detail.content.decode()
    deliveries = admin_client.get(reverse("admin:scheduler_app_notificationdelivery_changelist"))
    assert deliveries.status_code == 200
    assert "Pending" in deliveries.content.decode()
    assert admin_client.get(reverse("admin:scheduler_app_notificationdelivery_add")).status_code == 403
