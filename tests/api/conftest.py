"""API fixtures: a reader and an operator, and clients signed in as each (the permission walk's roles are in
tests/roles.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import operator_user, user_with

READ_PERMISSIONS = ("view_scheduledtask", "view_taskexecution", "view_schedulernode")


@pytest.fixture
def plain_user(db):
    """May read everything (tasks, executions, the scheduler's status), write nothing."""
    return user_with("reader", *READ_PERMISSIONS)


@pytest.fixture
def operator(db):
    """Every scheduler permission, and not staff: the API asks the model permissions, never is_staff."""
    return operator_user()


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
def operator_client(operator):
    return client_for(operator)
