"""The action registry: named in-process tasks (`config.task_action`), registered with `@action`.

Apps register actions by defining them in a module named `scheduler_actions` (found when Django
starts, see SchedulerAppConfig.ready) or by importing their module from their own `ready()`. The
public way to write one is `scheduler_app.actions` (the decorator, ConfigReader, RunContext).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from scheduler_app.exceptions import ConfigError
from scheduler_app.executors.base import RunContext
from scheduler_app.executors.parameters import Param, absent, parameters_errors, parameters_schema

ActionFunc = Callable[[RunContext, Any], dict[str, Any]]
ParamsFunc = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Action:
    name: str
    func: ActionFunc
    params: ParamsFunc | None = None
    description: str = ""
    parameters: tuple[Param, ...] = ()

    def parse(self, config: dict[str, Any]) -> Any:
        """The action's parameters from the task config; raises ConfigError.

        The declared parameters are checked first; then the action's parse function converts them,
        or, without one, the config comes with each absent declared parameter at its default."""
        errors = parameters_errors(self.parameters, config)
        if errors:
            raise ConfigError(errors)
        if self.params is not None:
            return self.params(config)
        defaults = {param.name: param.default for param in self.parameters if absent(config.get(param.name))}
        return {**config, **defaults}

    def validate(self, config: dict[str, Any]) -> list[str]:
        try:
            self.parse(config)
        except ConfigError as error:
            return error.errors
        return []

    def config_schema(self) -> dict[str, Any]:
        """The JSON schema of a task config that runs this action."""
        return parameters_schema(self.parameters, const={"task_action": self.name})


_registry: dict[str, Action] = {}


def action(
    name: str,
    *,
    params: ParamsFunc | None = None,
    description: str = "",
    parameters: Sequence[Param] = (),
) -> Callable[[ActionFunc], ActionFunc]:
    """Register the decorated function as the action `name`: `func(ctx, params) -> dict`.

    `parameters` declares the config keys the action reads (checked on every validation, listed in the
    action catalogue); `params` converts the config into what `func` receives."""
    names = [param.name for param in parameters]
    if len(set(names)) != len(names) or "task_action" in names:
        raise TypeError(f"action {name!r}: parameter names must be unique and not task_action")

    def decorator(func: ActionFunc) -> ActionFunc:
        _registry[name] = Action(
            name=name,
            func=func,
            params=params,
            description=description or (func.__doc__ or "").strip(),
            parameters=tuple(parameters),
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
