"""Executors: what runs when a task fires (commands, actions, workflows), behind one registry."""

from scheduler_app.executors.base import (
    BaseExecutor,
    ConfigError,
    ExecutionFailed,
    ExecutionStopped,
    ExecutionTerminated,
    ExecutionTimedOut,
    ExecutorNotFound,
)
from scheduler_app.executors.registry import get_executor, register, registered_task_types, validate_config

__all__ = [
    "BaseExecutor",
    "ConfigError",
    "ExecutionFailed",
    "ExecutionStopped",
    "ExecutionTerminated",
    "ExecutionTimedOut",
    "ExecutorNotFound",
    "get_executor",
    "register",
    "registered_task_types",
    "validate_config",
]
