"""Fixtures of the runtime tests."""

from tests.executors.helpers import fast  # noqa: F401 - a fixture
