"""OpenAPI post-processing of the site's schema, for the endpoints beside the scheduler API's (the token
endpoint); the scheduler's own operations document their errors themselves (scheduler_app/api/schema.py)."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}


def add_bad_input_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular hook: every operation that takes a body may answer 400 with field errors."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault(
                    "400", {"description": "Bad input: field name → list of messages."}
                )
    return result
