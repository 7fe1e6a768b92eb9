"""Fixtures of the market-data tests."""

from __future__ import annotations

import importlib

import pytest

from tests.executors.helpers import fast  # noqa: F401 - a fixture


@pytest.fixture
def factors(db):
    """The factor definitions of the data migration (a transactional test flushes them)."""
    from marketdata.models import FactorDefinition

    seed = importlib.import_module("marketdata.migrations.0002_factor_definitions")
    for code, name, kind, window, short_window, _description in seed.FACTORS:
        FactorDefinition.objects.get_or_create(
            code=code,
            defaults={"name": name, "kind": kind, "window": window, "short_window": short_window},
        )
    return {definition.code: definition for definition in FactorDefinition.objects.all()}
