"""API throttles of the site: DRF's anonymous and per-user rates, read when a request comes in."""

from __future__ import annotations

from typing import Any

from rest_framework import throttling
from rest_framework.settings import api_settings

from zquant_site.schema import ERROR_REF, ERROR_SCHEMA

THROTTLED = "Too many requests; `Retry-After` says how many seconds to wait."


class SettingsRateMixin:
    """DRF binds THROTTLE_RATES when rest_framework.throttling is imported; this reads the current settings
    instead, so that a changed REST_FRAMEWORK (override_settings, the pytest `settings` fixture) applies."""

    scope: str

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class AnonRateThrottle(SettingsRateMixin, throttling.AnonRateThrottle):
    """Anonymous requests, per client address (the token endpoint, the schema and Swagger UI)."""


class UserRateThrottle(SettingsRateMixin, throttling.UserRateThrottle):
    """Signed-in requests, per user; anonymous ones per client address."""


def add_throttled_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular hook: every operation may answer 429 while its client is throttled or locked out."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault(
                "429", {"description": THROTTLED, "content": {"application/json": {"schema": ERROR_REF}}}
            )
    return result
