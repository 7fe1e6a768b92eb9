"""API throttles: per client address for anonymous requests, per user for signed-in ones; 429 in DRF's shape."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import user_with

READER = ("view_scheduledtask", "view_schedulernode")  # what the endpoints below need

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    """Sets the throttle rates (read when a request comes in, so the settings fixture applies)."""

    def set_rates(*, anon: str | None = "1000/minute", user: str | None = "1000/minute") -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": anon, "user": user}}

    return set_rates


def assert_throttled(response, *, wait: int) -> None:
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}
    assert response["Retry-After"] == str(wait)


def test_anonymous_requests_are_throttled_per_address(rates):
    rates(anon="5/minute")
    client = APIClient()
    url = reverse("api-token")
    with time_machine.travel(timezone.now(), tick=False):
        # different usernames, so that the login lockout (per username) is not what stops them
        for number in range(5):
            response = client.post(url, {"username": f"guess{number}", "password": "x"}, format="json")
            assert response.status_code == HTTPStatus.BAD_REQUEST
        assert_throttled(client.post(url, {"username": "guess5", "password": "x"}, format="json"), wait=60)
        other = client.post(url, {"username": "guess6", "password": "x"}, format="json", REMOTE_ADDR="10.0.0.8")
        assert other.status_code == HTTPStatus.BAD_REQUEST
        # one count for every anonymous view (the schema answers in its own format)
        assert client.get(reverse("api-schema")).status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_signed_in_requests_are_throttled_per_user(rates):
    rates(user="3/minute")
    alice, bob = APIClient(), APIClient()
    alice.force_authenticate(user_with("alice", *READER))
    bob.force_authenticate(user_with("bob", *READER))
    url = reverse("api:task-list")
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        assert [alice.get(url).status_code for _ in range(3)] == [200, 200, 200]
        assert_throttled(alice.get(url), wait=60)
        assert bob.get(url).status_code == HTTPStatus.OK
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert alice.get(url).status_code == HTTPStatus.OK


def test_an_empty_rate_turns_the_throttle_off(rates):
    rates(user=None)
    client = APIClient()
    client.force_authenticate(user_with("alice", *READER))
    assert {client.get(reverse("api:scheduler-status")).status_code for _ in range(30)} == {HTTPStatus.OK}


def test_schema_documents_429_on_every_operation(admin_client):
    schema = admin_client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    operations = [operation for path in schema["paths"].values() for operation in path.values()]
    assert len(operations) > 20
    assert all("429" in operation["responses"] for operation in operations)
    assert schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]["429"]["content"]
