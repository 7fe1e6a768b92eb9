"""Common and manual tasks: route `config.command` to the command runner, `config.task_action` to an action."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.conf import scheduler_settings
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
        with action_slot(ctx):
            result = found.func(ctx, params)
        if not isinstance(result, dict):
            result = {"success": True, "message": "" if result is None else str(result)}
        return result


_action_slots: threading.BoundedSemaphore | None = None
_action_slots_lock = threading.Lock()


@contextlib.contextmanager
def action_slot(ctx: RunContext) -> Iterator[None]:
    """Hold one of the process's SCHEDULER_ACTION_CONCURRENCY action slots while an action runs.

    In-process actions share the interpreter and usually a database connection each, unlike commands
    and workflows, which mostly wait: bounding them keeps a burst from opening a connection per run.
    A run waiting for a slot still obeys terminate and its time limit.
    """
    global _action_slots
    with _action_slots_lock:
        if _action_slots is None:
            _action_slots = threading.BoundedSemaphore(max(1, scheduler_settings.ACTION_CONCURRENCY))
        slots = _action_slots
    while not slots.acquire(timeout=0.2):
        ctx.raise_if_stopping()
    try:
        yield
    finally:
        slots.release()


@register
class ManualTaskExecutor(CommonTaskExecutor):
    """A manual task: the same work as a common task, only ever run on demand."""

    task_type = "manual_task"
