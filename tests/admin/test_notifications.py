"""The notification pages of the admin: subscriptions are edited there; events and attempts are shown."""

from __future__ import annotations

from datetime import time

import pytest
from django.urls import reverse

from scheduler_app.models import BlackoutWindow, Calendar, NotificationSubscription
from scheduler_app.ops.events import EventDraft, events_record
from scheduler_app.runtime.clock import db_now
from tests.factories import ScheduledTaskFactory, user_with

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


def test_staff_with_every_task_permission_cannot_change_calendars_or_subscriptions(client):
    """The calendar and notification pages ask their own models' rules: task permissions open none of them."""
    calendar = Calendar.objects.create(name="SSE")
    window = BlackoutWindow.objects.create(name="lunch", from_time=time(11, 30), until_time=time(13))
    hook = NotificationSubscription.objects.create(name="on call", channel="webhook", webhook_url="https://h.example")
    tasks = [f"{verb}_scheduledtask" for verb in ("view", "add", "change", "delete", "run")]
    client.force_login(user_with("staff", *tasks, "change_command_scheduledtask", is_staff=True))
    rows = [(Calendar, calendar), (BlackoutWindow, window), (NotificationSubscription, hook)]
    before = [list(model.objects.values()) for model, _row in rows]
    for model, row in rows:
        name = f"admin:scheduler_app_{model._meta.model_name}"
        assert client.get(reverse(f"{name}_changelist")).status_code == 403
        assert client.post(reverse(f"{name}_add"), {"name": "new"}).status_code == 403
        assert client.post(reverse(f"{name}_change", args=[row.pk]), {"name": "changed"}).status_code == 403
        assert client.post(reverse(f"{name}_delete", args=[row.pk]), {"post": "yes"}).status_code == 403
    assert [list(model.objects.values()) for model, _row in rows] == before
