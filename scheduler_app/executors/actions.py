"""The action registry: named in-process tasks (`config.task_action`), registered with `@action`.

Apps register actions by defining them in a module named `scheduler_actions` (found when Django
starts, see SchedulerAppConfig.ready) or by importing their module from their own `ready()`. The
public way to write one is `scheduler_app.actions` (the decorator, ConfigReader, RunContext).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from scheduler_app.exceptions import ConfigError
from scheduler_app.executors.base import RunContext

ActionFunc = Callable[[RunContext, Any], dict[str, Any]]
ParamsFunc = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Action:
    name: str
    func: ActionFunc
    params: ParamsFunc | None = None
    description: str = ""

    def parse(self, config: dict[str, Any]) -> Any:
        """The action's parameters from the task config; raises ConfigError."""
        return self.params(config) if self.params is not None else config

    def validate(self, config: dict[str, Any]) -> list[str]:
        try:
            self.parse(config)
        except ConfigError as error:
            return error.errors
        return []


_registry: dict[str, Action] = {}


def action(name: str, *, params: ParamsFunc | None = None, description: str = "") -> Callable[[ActionFunc], ActionFunc]:
    """Register the decorated function as the action `name`: `func(ctx, params) -> dict`."""

    def decorator(func: ActionFunc) -> ActionFunc:
        _registry[name] = Action(
            name=name, func=func, params=params, description=description or (func.__doc__ or "").strip()
        )
        return func

    return decorator


def unregister_action(name: str) -> None:
    """Forget an action (an app that replaces one, or a test that registered its own)."""
    _registry.pop(name, None)


def registered_actions() -> list[str]:
    return sorted(_registry)


def get_action(name: Any) -> Action:
    """The action registered as `name`; raises ConfigError naming the supported ones."""
    if isinstance(name, str) and name in _registry:
        return _registry[name]
    raise ConfigError(
        _("Unsupported task_action %(name)r; supported: %(known)s.")
        % {"name": name, "known": ", ".join(sorted(_registry))}
    )


def validate_action_config(config: dict[str, Any]) -> list[str]:
    """Problems of a `task_action` config: an unknown action, or the action's own parameter errors."""
    try:
        found = get_action(config.get("task_action"))
    except ConfigError as error:
        return error.errors
    return found.validate(config)
