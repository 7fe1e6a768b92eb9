"""OpenAPI for the scheduler API: every operation documents the answers it can give (400, 401, 403, 404).

The views carry this schema class themselves, so the documentation is the same in any project that
publishes a drf-spectacular schema, whatever its DEFAULT_SCHEMA_CLASS and wherever it mounts the API.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from scheduler_app.api.serializers import ErrorSerializer

COMMON = {
    "401": "Not signed in (no or a bad token, no session).",
    "403": "Signed in, but without the permission this operation needs.",
}


class SchedulerSchema(AutoSchema):
    """drf-spectacular's schema, plus the error answers the scheduler's permission and lookups give."""

    def get_operation(self, path, path_regex, path_prefix, method, registry) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error = {"content": {"application/json": {"schema": self.resolve_serializer(ErrorSerializer, "response").ref}}}
        responses = operation.setdefault("responses", {})
        if "requestBody" in operation:
            responses.setdefault("400", {"description": "Bad input: field name → list of messages."})
        for status, description in COMMON.items():
            responses.setdefault(status, {"description": description, **error})
        if "{" in path:
            responses.setdefault("404", {"description": "No such object.", **error})
        elif any(parameter.get("name") == "page" for parameter in operation.get("parameters", [])):
            responses.setdefault("404", {"description": "No such page (past the last one).", **error})
        return operation
