"""Executor registry: maps task types (manual_task, common_task, workflow) to executor classes."""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from django.utils.translation import gettext as _

from scheduler_app.exceptions import ExecutorNotFound
from scheduler_app.executors.base import BaseExecutor

E = TypeVar("E", bound=type[BaseExecutor])

_registry: dict[str, type[BaseExecutor]] = {}
_builtins_loaded = False
_lock = threading.Lock()


def register(cls: E) -> E:
    """Class decorator: register `cls` for `cls.task_type` (a later registration replaces it)."""
    task_type = getattr(cls, "task_type", None)
    if not isinstance(task_type, str) or not task_type:
        raise TypeError(f"{cls.__name__} needs a task_type")
    _registry[task_type] = cls
    return cls


def _load_builtins() -> None:
    # Imported on first use, not at import time: the built-in executors import the models, which are
    # not ready while Django loads its apps.
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if not _builtins_loaded:
            from scheduler_app.executors import common, workflow  # noqa: F401 - registers them

            _builtins_loaded = True


def registered_task_types() -> list[str]:
    _load_builtins()
    return sorted(_registry)


def get_executor(task_type: str) -> BaseExecutor:
    """A new executor instance for `task_type`; raises ExecutorNotFound for an unknown type."""
    _load_builtins()
    try:
        cls = _registry[task_type]
    except (KeyError, TypeError):
        raise ExecutorNotFound(
            _("No executor for task type %(type)r; known types: %(known)s.")
            % {"type": task_type, "known": ", ".join(sorted(_registry))}
        ) from None
    return cls()


def validate_config(task_type: str, config: Any, *, task_id: int | None = None) -> list[str]:
    """Every problem of `config` for a task of `task_type` (empty when it can run); for the API/admin."""
    if not isinstance(config, dict):
        return [_("The config must be a JSON object.")]
    try:
        executor = get_executor(task_type)
    except ExecutorNotFound as error:
        return [str(error)]
    return executor.validate_config(config, task_id=task_id)
