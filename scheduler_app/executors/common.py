"""Common and manual tasks: route `config.command` to the command runner, `config.task_action` to an action."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.exceptions import ConfigError
from scheduler_app.executors.actions import get_action, validate_action_config
from scheduler_app.executors.base import BaseExecutor, RunContext
from scheduler_app.executors.command import parse_command, run_command, validate_command_config
from scheduler_app.executors.registry import register

CONFIG_NEEDS_ACTION = _('The config needs a "command" or a "task_action", for example {"task_action": "example_task"}.')
CONFIG_BOTH_ACTIONS = _('Set either "command" or "task_action" in the config, not both.')


def _route(config: dict[str, Any]) -> str:
    """'command' or 'action'; raises ConfigError when the config names neither or both."""
    has_command = config.get("command") not in (None, "", [])
    has_action = config.get("task_action") not in (None, "")
    if has_command and has_action:
        raise ConfigError(gettext(CONFIG_BOTH_ACTIONS))
    if has_command:
        return "command"
    if has_action:
        return "action"
    raise ConfigError(gettext(CONFIG_NEEDS_ACTION))


@register
class CommonTaskExecutor(BaseExecutor):
    """A scheduled task: runs a command (argv, no shell) or a registered action."""

    task_type = "common_task"

    def validate_config(self, config: dict[str, Any], *, task_id: int | None = None) -> list[str]:
        try:
            route = _route(config)
        except ConfigError as error:
            return error.errors
        return validate_command_config(config) if route == "command" else validate_action_config(config)

    def execute(self, ctx: RunContext) -> dict[str, Any]:
        if _route(ctx.config) == "command":
            return run_command(ctx, parse_command(ctx.config))
        found = get_action(ctx.config.get("task_action"))
        params = found.parse(ctx.config)
        result = found.func(ctx, params)
        if not isinstance(result, dict):
            result = {"success": True, "message": "" if result is None else str(result)}
        return result


@register
class ManualTaskExecutor(CommonTaskExecutor):
    """A manual task: the same work as a common task, only ever run on demand."""

    task_type = "manual_task"
