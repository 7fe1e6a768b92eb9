"""GET notifications/subscriptions/: readable with the view permission, never showing the secret."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from scheduler_app.models import NotificationSubscription
from tests.api.conftest import user_with
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db


def test_subscriptions_are_listed_without_their_secret():
    task = ScheduledTaskFactory()
    hook = NotificationSubscription.objects.create(
        name="on call", channel="webhook", webhook_url="https://hooks.example.com/x", task=task
    )
    client = APIClient()
    client.force_authenticate(user_with("watcher", "view_notificationsubscription"))
    listed = client.get(reverse("api:notification-subscription-list"))
    assert listed.status_code == HTTPStatus.OK
    [row] = listed.json()["results"]
    assert row["task"] == task.pk
    assert row["webhook_url"] == "https://hooks.example.com/x"
    assert "secret" not in row
    assert hook.secret not in listed.content.decode()
    one = client.get(reverse("api:notification-subscription-detail", args=[hook.pk]))
    assert one.json()["name"] == "on call"
    assert "secret" not in one.json()
