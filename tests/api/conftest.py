"""API fixtures: one user per role, and clients signed in as each."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from tests.factories import UserFactory


def user_with(username: str, *codenames: str, **fields):
    user = UserFactory(username=username, **fields)
    if codenames:
        user.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="scheduler_app", codename__in=codenames)
        )
    return user


@pytest.fixture
def plain_user(db):
    return user_with("reader")


@pytest.fixture
def staff_user(db):
    return user_with("staff", is_staff=True)


@pytest.fixture
def runner_user(db):
    """May run tasks and control executions, nothing else."""
    return user_with("runner", "run_scheduledtask")


@pytest.fixture
def editor_user(db):
    """May change tasks (edit, enable, pause...), not add, delete or run them."""
    return user_with("editor", "change_scheduledtask")


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def user_client(plain_user):
    return client_for(plain_user)


@pytest.fixture
def staff_client(staff_user):
    return client_for(staff_user)
