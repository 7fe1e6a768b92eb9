"""OpenAPI post-processing: document the answers every operation can give (400, 401, 403, 404)."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}
COMMON = {
    "401": "Not signed in (no or a bad token, no session).",
    "403": "Signed in, but without the permission this operation needs.",
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def add_auth_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular hook: scheduler API operations may answer 401/403, those with an id also 404,
    and every operation that takes a body (the token endpoint too) a 400 with field errors."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": "Bad input: field name → list of messages."})
        if not path.startswith("/api/v1/scheduler/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in COMMON.items():
                responses.setdefault(status, _error(description))
            if "{" in path:
                responses.setdefault("404", _error("No such object."))
            elif any(parameter.get("name") == "page" for parameter in operation.get("parameters", [])):
                responses.setdefault("404", _error("No such page (past the last one)."))
    return result
