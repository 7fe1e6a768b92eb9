"""Declared action parameters: each type's check, the defaults an action without a parse function receives,
and the refusal of a declaration that could not work."""

from __future__ import annotations

import pytest

from scheduler_app.actions import BOOLEAN, CODES, DATE, NUMBER, STRING, Param, action, get_action, unregister_action
from scheduler_app.executors.registry import validate_config

CASES = [
    (Param("x", NUMBER), True, "x must be a number."),
    (Param("x", NUMBER), 1, None),
    (Param("x", BOOLEAN), "yes", "x must be true or false."),
    (Param("x", BOOLEAN), False, None),
    (Param("x", STRING), 3, "x must be text."),
    (Param("x", STRING, max_length=2), "abc", "x is longer than 2 characters."),
    (Param("x", DATE), "2024-13-01", "x must be a date as YYYYMMDD or YYYY-MM-DD, not '2024-13-01'."),
    (Param("x", DATE), "20240131", None),
    (Param("x", CODES), [1], "x must be a list of codes or a comma-separated string."),
    (Param("x", CODES), "A,B", None),
    (Param("x", NUMBER, maximum=1), 1.5, "x must be at most 1."),
    (Param("x", STRING, required=True), "", "x is required."),
    (Param("x", STRING), None, None),
]


@pytest.mark.parametrize(("param", "value", "message"), CASES)
def test_each_type_is_checked(param, value, message):
    assert param.errors({"x": value}) == ([message] if message else [])


@pytest.fixture
def plain_action():
    @action("tests_plain", parameters=[Param("days", "integer", default=7), Param("label", default="a")])
    def run(ctx, params):
        return params

    yield get_action("tests_plain")
    unregister_action("tests_plain")


def test_an_action_without_a_parse_function_gets_the_defaults(plain_action):
    assert plain_action.parse({"task_action": "tests_plain", "label": "b"}) == {
        "task_action": "tests_plain",
        "label": "b",
        "days": 7,
    }


def test_the_task_validator_checks_the_declarations(plain_action):
    config = {"task_action": "tests_plain", "days": "many"}
    assert validate_config("manual_task", config) == ["days must be a whole number."]


def test_a_parse_function_sees_only_configs_the_declarations_accept():
    """example_task's own reader would say the same; the declaration answers first, once."""
    assert validate_config("common_task", {"task_action": "example_task", "steps": 0}) == ["steps must be at least 1."]


def test_declarations_are_checked_when_registered():
    with pytest.raises(TypeError):
        Param("x", "decimal")
    with pytest.raises(TypeError):
        action("tests_twice", parameters=[Param("a"), Param("a")])
    with pytest.raises(TypeError):
        action("tests_reserved", parameters=[Param("task_action")])
