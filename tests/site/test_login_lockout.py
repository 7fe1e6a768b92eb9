"""Login lockout (django-axes) at the API token endpoint and the admin login, per username and address."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory
from zquant_site.auth import LOCKED_OUT, client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "right-password-1"
LIMIT = 10  # the default AXES_FAILURE_LIMIT
COOL_OFF_SECONDS = 30 * 60  # the default AXES_COOLOFF_MINUTES


@pytest.fixture
def user():
    return UserFactory(username="alice", password=PASSWORD, is_staff=True, is_superuser=True)


def token_login(client: APIClient, password: str, username: str = "alice", **extra):
    return client.post(reverse("api-token"), {"username": username, "password": password}, format="json", **extra)


def admin_login(client: Client, password: str, username: str = "alice"):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"})


def test_token_endpoint_locks_out_after_the_limit_with_a_drf_error(user):
    client = APIClient()
    for _ in range(LIMIT - 1):
        response = token_login(client, "wrong")
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert "non_field_errors" in response.json()

    # axes sees DRF's authenticate(request=...) calls: the failures are counted for alice from this address
    assert AccessAttempt.objects.get(username="alice").failures_since_start == LIMIT - 1

    locking = token_login(client, "wrong")  # the 10th failure locks the pair out
    refused = token_login(client, PASSWORD)  # and the 11th attempt is refused, even with the right password
    for response in (locking, refused):
        assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": f"{LOCKED_OUT} Expected available in {COOL_OFF_SECONDS} seconds."}
        assert response["Retry-After"] == str(COOL_OFF_SECONDS)
    assert not Token.objects.filter(user=user).exists()


def test_lockout_is_per_username_and_address(user):
    UserFactory(username="bob", password=PASSWORD)
    client = APIClient()
    for _ in range(LIMIT):
        token_login(client, "wrong")
    assert token_login(client, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS

    assert token_login(client, PASSWORD, username="bob").status_code == HTTPStatus.OK  # another user, same address
    elsewhere = token_login(client, PASSWORD, REMOTE_ADDR="10.0.0.7")  # the same user from another address
    assert elsewhere.status_code == HTTPStatus.OK
    assert elsewhere.json() == {"token": Token.objects.get(user=user).key}


def test_a_forged_forwarded_for_header_does_not_escape_the_lockout(user):
    client = APIClient()
    for attempt in range(LIMIT):
        token_login(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{attempt}")
    response = token_login(client, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_behind_a_proxy_the_forwarded_address_is_the_client(rf, settings):
    request = rf.get("/", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2", REMOTE_ADDR="10.0.0.1")
    assert client_ip(request) == "10.0.0.1"  # NUM_PROXIES=0: no forwarded header is trusted
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert client_ip(request) == "10.0.0.2"  # the address our one proxy saw
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 2}
    assert client_ip(request) == "203.0.113.9"


def test_the_lockout_ends_after_the_cool_off(user):
    client = APIClient()
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(LIMIT):
            token_login(client, "wrong")
        assert token_login(client, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    with time_machine.travel(start + timedelta(seconds=COOL_OFF_SECONDS - 60), tick=False):
        # each attempt during the lockout restarts the wait
        assert token_login(client, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    with time_machine.travel(start + timedelta(seconds=2 * COOL_OFF_SECONDS), tick=False):
        assert token_login(client, PASSWORD).status_code == HTTPStatus.OK


def test_a_successful_token_login_resets_the_count(user):
    client = APIClient()
    for _ in range(LIMIT - 1):
        token_login(client, "wrong")
    assert token_login(client, PASSWORD).status_code == HTTPStatus.OK
    assert not AccessAttempt.objects.exists()
    for _ in range(LIMIT - 1):
        assert token_login(client, "wrong").status_code == HTTPStatus.BAD_REQUEST
    assert token_login(client, PASSWORD).status_code == HTTPStatus.OK


def test_the_limits_are_settings(user, settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = timedelta(minutes=5)
    client = APIClient()
    assert [token_login(client, "wrong").status_code for _ in range(3)] == [400, 400, 429]
    assert token_login(client, PASSWORD)["Retry-After"] == "300"


def test_admin_login_shows_a_lockout_page(user):
    client = Client()
    for _ in range(LIMIT - 1):
        response = admin_login(client, "wrong")
        assert response.status_code == HTTPStatus.OK
        assert "Please enter the correct username and password" in response.content.decode()

    locking = admin_login(client, "wrong")
    refused = admin_login(client, PASSWORD)
    for response in (locking, refused):
        assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS
        assert response["Retry-After"] == str(COOL_OFF_SECONDS)
        html = response.content.decode()
        assert "<title>Too many failed logins" in html
        assert "failed to log in 10 times in a row from your address" in html
        assert "Try again in 30 minutes" in html
        assert "axes_reset_username" in html
    assert "_auth_user_id" not in client.session  # the right password did not log in
    assert client.get("/admin/").status_code == HTTPStatus.FOUND  # still sent to the login page


def test_admin_and_api_share_the_count(user):
    """Both ways in are one login: failures at either count towards the same lockout."""
    api, browser = APIClient(), Client()
    for _ in range(LIMIT // 2):
        token_login(api, "wrong")
        admin_login(browser, "wrong")
    assert token_login(api, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert admin_login(browser, PASSWORD).status_code == HTTPStatus.TOO_MANY_REQUESTS


def test_lockout_can_be_turned_off(user, settings):
    settings.AXES_ENABLED = False
    client = APIClient()
    for _ in range(LIMIT + 5):
        assert token_login(client, "wrong").status_code == HTTPStatus.BAD_REQUEST
    assert token_login(client, PASSWORD).status_code == HTTPStatus.OK
