"""Action registry: named in-process tasks (`config.task_action`), registered with a decorator.

    from scheduler_app.actions import action, ConfigReader

    def parse(config):                      # optional: check the config, return the parameters
        reader = ConfigReader(config)
        days = reader.integer("days", default=1, minimum=1)
        reader.raise_if_errors()            # ConfigError listing every problem
        return {"days": days}

    @action("cleanup_reports", params=parse, description="Delete old reports.")
    def cleanup_reports(ctx, params):       # ctx: ExecutionContext; returns the result dict
        ...

A Django app registers its actions by defining them in a module named `scheduler_actions` (found
automatically) or by importing its module from `AppConfig.ready()`. The built-in actions are
`example_task`, the data-sync strategies and `calculate_factor`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _

from scheduler_app.actions.params import ConfigReader, parse_date
from scheduler_app.executors.base import ConfigError

if TYPE_CHECKING:
    from scheduler_app.executors.context import ExecutionContext

__all__ = [
    "Action",
    "ConfigError",
    "ConfigReader",
    "action",
    "get_action",
    "parse_date",
    "registered_actions",
    "validate_action_config",
]

ActionFunc = Callable[["ExecutionContext", Any], dict[str, Any]]
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
_loaded = False
_lock = threading.Lock()


def action(name: str, *, params: ParamsFunc | None = None, description: str = "") -> Callable[[ActionFunc], ActionFunc]:
    """Register the decorated function as the action `name`: `func(ctx, params) -> dict`."""

    def decorator(func: ActionFunc) -> ActionFunc:
        _registry[name] = Action(
            name=name, func=func, params=params, description=description or (func.__doc__ or "").strip()
        )
        return func

    return decorator


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        from scheduler_app.actions import example  # noqa: F401 - registers example_task

        if apps.is_installed("marketdata"):
            from scheduler_app.actions import datasync, factors  # noqa: F401 - registers the data actions
        autodiscover_modules("scheduler_actions")
        _loaded = True


def registered_actions() -> list[str]:
    _load()
    return sorted(_registry)


def get_action(name: Any) -> Action:
    """The action registered as `name`; raises ConfigError naming the supported ones."""
    _load()
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
