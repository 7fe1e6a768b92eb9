"""The catalogue of what a task can run: every registered action with its parameters, plus commands and workflows.

The API's `actions/` route and the admin's action picker read it. An action's entry comes from its
declaration in the registry (executors.actions), so the catalogue, the form and the validator agree.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from scheduler_app.executors.actions import get_action, registered_actions
from scheduler_app.workflows import DEFAULT_MAX_PARALLEL

ACTION, COMMAND, WORKFLOW = "action", "command", "workflow"
ACTION_TASK_TYPES = ["common_task", "manual_task"]

COMMAND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {
            "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}],
            "description": "The command line, as an argv list or a string split like a shell (never run by one).",
        },
        "work_dir": {"type": "string", "description": "The working directory."},
        "env": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Variables added."},
        "env_from": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Secrets."},
        "timeout_seconds": {"type": "number", "exclusiveMinimum": 0, "description": "Kill the command after."},
    },
    "required": ["command"],
}

WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "workflow_type": {"type": "string", "enum": ["serial", "parallel"], "default": "serial"},
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "task_id": {"type": "integer"},
                    "name": {"type": "string"},
                    "dependencies": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["task_id"],
            },
        },
        "on_failure": {"type": "string", "enum": ["stop", "continue"], "default": "stop"},
        "max_parallel": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_PARALLEL},
    },
    "required": ["tasks"],
}


def action_entry(name: str) -> dict[str, Any]:
    found = get_action(name)
    return {
        "name": found.name,
        "kind": ACTION,
        "task_types": ACTION_TASK_TYPES,
        "description": found.description,
        "parameters": [
            {
                "name": param.name,
                "type": param.type,
                "default": param.default,
                "help": str(param.help),
                "required": param.required,
                "choices": list(param.choices),
                "minimum": param.minimum,
                "maximum": param.maximum,
            }
            for param in found.parameters
        ],
        "schema": found.config_schema(),
    }


def action_catalogue() -> list[dict[str, Any]]:
    """Every registered action (by name), then the `command` and `workflow` task kinds."""
    entries = [action_entry(name) for name in registered_actions()]
    entries.append(
        {
            "name": COMMAND,
            "kind": COMMAND,
            "task_types": ACTION_TASK_TYPES,
            "description": _("A program run as an argv list, never through a shell."),
            "parameters": [],
            "schema": COMMAND_SCHEMA,
        }
    )
    entries.append(
        {
            "name": WORKFLOW,
            "kind": WORKFLOW,
            "task_types": ["workflow"],
            "description": _("Other tasks run as steps, serially or in parallel, along their dependencies."),
            "parameters": [],
            "schema": WORKFLOW_SCHEMA,
        }
    )
    return entries
