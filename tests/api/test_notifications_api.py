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


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_subscriptions_cannot_be_written_through_the_api(method):
    """Subscriptions are managed in the admin: the API has no write operation, for anyone (405; 401 to
    nobody), whatever their permissions, and a write changes nothing."""
    hook = NotificationSubscription.objects.create(name="on call", channel="webhook", webhook_url="https://h.example")
    before = list(NotificationSubscription.objects.values())
    urls = [
        reverse("api:notification-subscription-list"),
        reverse("api:notification-subscription-detail", args=[hook.pk]),
    ]
    staff = user_with("staff", "view_scheduledtask", "change_scheduledtask", "add_scheduledtask", is_staff=True)
    reader = user_with("reader", "view_notificationsubscription", "change_notificationsubscription")
    for user, answer in [(None, HTTPStatus.UNAUTHORIZED), (staff, 405), (reader, 405)]:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        for url in urls:
            response = getattr(client, method)(url, {"name": "changed", "webhook_url": "https://evil.example"})
            assert response.status_code == answer, (user, url, response.content)
    assert list(NotificationSubscription.objects.values()) == before
