"""The task form's action picker in a real browser: pick an action, fill a declared parameter, save."""

from __future__ import annotations

import json

import pytest

from scheduler_app.models import ScheduledTask

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

ADD = "/admin/scheduler_app/scheduledtask/add/"
LIST = "/admin/scheduler_app/scheduledtask/"


def config_of(page) -> dict:
    return json.loads(page.input_value("#id_config"))


def test_the_picker_creates_an_example_task_with_a_parameter(admin_login, live_server):
    page = admin_login(ADD)
    page.fill("#id_name", "picked")
    page.select_option("#id_task_type", "manual_task")

    page.select_option("#zq-action-picker select", "example_task")
    steps = page.locator("#zq-param-steps")
    steps.wait_for()
    assert steps.get_attribute("placeholder") == "5"  # the declared default
    assert "steps" in page.inner_text("#zq-action-picker")
    assert config_of(page) == {"task_action": "example_task"}

    steps.fill("0")
    assert config_of(page) == {"task_action": "example_task", "steps": 0}
    page.click("input[name=_save]")
    error = page.locator(".field-config .errorlist")
    error.wait_for()
    assert "steps must be at least 1." in error.inner_text()  # the validator the API uses
    assert not ScheduledTask.objects.filter(name="picked").exists()

    # The form comes back with the picker showing the config's action and value.
    page.locator("#zq-param-steps").wait_for()
    assert page.input_value("#zq-action-picker select") == "example_task"
    page.fill("#zq-param-steps", "3")
    page.fill("#zq-param-message", "done by the picker")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}{LIST}")
    task = ScheduledTask.objects.get(name="picked")
    assert task.config == {"task_action": "example_task", "steps": 3, "message": "done by the picker"}


def test_raw_json_stays_editable_and_the_picker_follows_it(admin_login):
    page = admin_login(ADD)
    page.fill("#id_config", json.dumps({"task_action": "example_task", "duration_seconds": 1.5, "extra": 1}))
    page.locator("#zq-param-duration_seconds").wait_for()
    assert page.input_value("#zq-param-duration_seconds") == "1.5"
    page.select_option("#zq-action-picker select", "")
    assert config_of(page) == {"extra": 1}
    page.fill("#id_config", "{not json")
    page.locator(".zq-action-picker__invalid").wait_for()
