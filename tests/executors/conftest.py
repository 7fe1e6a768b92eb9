"""Fixtures of the executor tests."""

from tests.executors.helpers import fast  # noqa: F401 - a fixture
