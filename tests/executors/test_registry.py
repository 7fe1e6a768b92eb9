"""The executor registry and config validation (what the API and admin call before saving)."""

from __future__ import annotations

import pytest

from scheduler_app.actions import action, registered_actions, unregister_action
from scheduler_app.executors import ExecutorNotFound, get_executor, registered_task_types, validate_config
from scheduler_app.executors.command import CommandSpec, parse_command
from scheduler_app.executors.common import CommonTaskExecutor, ManualTaskExecutor
from scheduler_app.executors.workflow import WorkflowExecutor
from tests.executors.helpers import make_task, run_config


def test_every_task_type_has_an_executor():
    assert registered_task_types() == ["common_task", "manual_task", "workflow"]
    assert isinstance(get_executor("common_task"), CommonTaskExecutor)
    assert isinstance(get_executor("manual_task"), ManualTaskExecutor)
    assert isinstance(get_executor("workflow"), WorkflowExecutor)


def test_unknown_task_type_fails_loudly():
    with pytest.raises(ExecutorNotFound, match="script"):
        get_executor("script")
    assert validate_config("script", {}) == [
        "No executor for task type 'script'; known types: common_task, manual_task, workflow."
    ]


def test_builtin_actions_are_registered():
    assert set(registered_actions()) >= {
        "example_task",
        "sync_stock_list",
        "sync_trading_calendar",
        "sync_daily_data",
        "sync_all_daily_data",
        "sync_daily_basic_data",
        "calculate_factor",
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, 'needs a "command" or a "task_action"'),
        ([], "must be a JSON object"),
        ({"command": "echo hi", "task_action": "example_task"}, "not both"),
        ({"task_action": "no_such_action"}, "Unsupported task_action 'no_such_action'"),
        ({"task_action": "example_task", "steps": 0}, "steps must be at least 1"),
        ({"task_action": "example_task", "steps": "five"}, "steps must be a whole number"),
        ({"task_action": "example_task", "success_rate": 2}, "success_rate must be at most 1"),
        ({"task_action": "sync_daily_data"}, "ts_code (or symbol) is required"),
        ({"task_action": "sync_all_daily_data", "start_date": "2024-13-01"}, "start_date must be a date"),
        ({"task_action": "sync_all_daily_data", "start_date": "20240301", "end_date": "20240101"}, "is after"),
        ({"task_action": "sync_all_daily_data", "codelist": 5}, "codelist must be a list"),
        ({"task_action": "calculate_factor", "factor_id": "x"}, "factor_id must be a whole number"),
        ({"command": ""}, 'needs a "command" or a "task_action"'),
        ({"command": "echo 'open"}, "cannot be parsed"),
        ({"command": "echo", "timeout_seconds": 0}, "timeout_seconds must be a positive number"),
        ({"command": "echo", "env": {"1BAD": "x"}}, "not a valid variable name"),
        ({"command": "echo", "env": {"ZQUANT_EXECUTION_ID": "1"}}, "is set by the scheduler"),
        ({"command": "echo", "env": {"N": 5}}, "must be text"),
        ({"command": "echo", "work_dir": "/no/such/dir"}, "not an existing directory"),
        ({"command": 42}, "command must be a command line"),
    ],
)
@pytest.mark.parametrize("task_type", ["common_task", "manual_task"])
def test_config_problems_are_reported(task_type, config, expected):
    errors = validate_config(task_type, config)
    assert any(expected in error for error in errors), errors


@pytest.mark.parametrize(
    "config",
    [
        {"command": "python -m scheduler_app.jobs.example_job --steps 5 --delay 1"},
        {"command": ["echo", "a b"], "timeout_seconds": 10, "env": {"A": "1"}},
        {"task_action": "example_task", "steps": 3},
        {"task_action": "sync_daily_data", "ts_code": "000001.SZ", "start_date": "2024-01-01"},
        {"task_action": "sync_all_daily_data", "codelist": "000001.SZ,600000.SH", "lookback_days": 30},
        {"task_action": "calculate_factor", "factor_id": 1, "codes": ["000001.SZ"], "start_date": "2024-06-03"},
    ],
)
def test_valid_configs_have_no_problems(config):
    assert validate_config("common_task", config) == []


@pytest.mark.django_db
def test_workflow_configs_are_checked_against_the_database():
    step = make_task({"task_action": "example_task"})
    good = {"workflow_type": "serial", "tasks": [{"task_id": step.pk, "name": "a", "dependencies": []}]}
    assert validate_config("workflow", good) == []
    assert validate_config("workflow", {"tasks": [{"task_id": 987654}]}) == ["These tasks do not exist: [987654]."]
    assert any("itself" in error for error in validate_config("workflow", good, task_id=step.pk))


def test_a_list_command_is_an_argv_and_python_is_this_interpreter():
    import sys

    spec = parse_command({"command": ["python", "-c", "print(1)"]})
    assert isinstance(spec, CommandSpec)
    assert spec.executable == sys.executable
    assert spec.argv == ("python", "-c", "print(1)")
    assert spec.text == "python -c 'print(1)'"


def test_apps_register_actions_with_the_decorator(db):
    from scheduler_app.executors.base import ConfigError

    def parse(config):
        if "name" not in config:
            raise ConfigError("name is required")
        return config["name"]

    @action("tests_greet", params=parse)
    def greet(ctx, name):
        return {"success": True, "message": f"hello {name}"}

    try:
        assert "tests_greet" in registered_actions()
        assert validate_config("common_task", {"task_action": "tests_greet"}) == ["name is required"]
        execution = run_config({"task_action": "tests_greet", "name": "zquant"})
        assert execution.status == "success"
        assert execution.result["message"] == "hello zquant"
    finally:
        unregister_action("tests_greet")
