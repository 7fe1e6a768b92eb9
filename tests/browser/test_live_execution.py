"""The execution page and the dashboard follow a run live, to its end, without a reload."""

from __future__ import annotations

import pytest

from scheduler_app.models import TaskExecution
from scheduler_app.services.executions import execution_terminate
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_trigger
from tests.factories import ScheduledTaskFactory

pytestmark = [pytest.mark.browser, pytest.mark.process, pytest.mark.timeout(120)]


def _text_is(page, selector: str, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "([selector, text]) => { const el = document.querySelector(selector);"
        " return !!el && !el.hidden && el.textContent.trim() === text; }",
        arg=[selector, text],
        timeout=timeout,
    )


def test_a_running_execution_page_updates_to_the_end(admin_login, scheduler):
    task = ScheduledTaskFactory(
        name="live-run", config={"task_action": "example_task", "steps": 4, "duration_seconds": 4}
    )
    execution = task_trigger(task=task, user=SYSTEM)
    page = admin_login(f"/admin/scheduler_app/taskexecution/{execution.pk}/change/")
    page.evaluate("window.__zqSameDocument = true")
    heading = "#content h2.zq-heading"
    assert page.locator(f"{heading} [data-zq-field=task_name]").inner_text() == "live-run"
    assert page.locator(f"{heading} [data-zq-status='{execution.pk}']").inner_text() == "Pending"
    assert page.locator(".field-result_pretty [data-zq-empty=result]").is_visible()

    scheduler()
    _text_is(page, f"{heading} [data-zq-status='{execution.pk}']", "Running")
    _text_is(page, f"{heading} [data-zq-status='{execution.pk}']", "Success")
    _text_is(page, f".field-status_column [data-zq-status='{execution.pk}']", "Success")
    bar = f".field-progress_detail [data-zq-progress='{execution.pk}']"
    assert page.locator(bar).get_attribute("data-zq-percent") == "100.0"
    assert page.locator(f"{bar} .zq-progress__label").inner_text() == "100%"
    result = page.locator(".field-result_pretty pre[data-zq-field=result]")
    assert result.is_visible()
    assert '"total_steps": 4' in result.inner_text()  # the final result, not the first snapshot
    assert page.locator(".field-result_pretty [data-zq-empty=result]").is_hidden()
    assert page.evaluate("window.__zqSameDocument") is True  # no reload


def test_a_terminated_run_loses_its_stopping_note(admin_login, scheduler):
    task = ScheduledTaskFactory(
        name="long-run", config={"task_action": "example_task", "steps": 60, "duration_seconds": 60}
    )
    execution = task_trigger(task=task, user=SYSTEM)
    scheduler()
    page = admin_login(f"/admin/scheduler_app/taskexecution/{execution.pk}/change/")
    page.evaluate("window.__zqSameDocument = true")
    _text_is(page, f"#content h2.zq-heading [data-zq-status='{execution.pk}']", "Running")
    execution_terminate(execution=execution, user=SYSTEM)
    _text_is(page, f"#content h2.zq-heading [data-zq-status='{execution.pk}']", "Terminated")
    _text_is(page, f".field-status_column [data-zq-status='{execution.pk}']", "Terminated")
    note = page.locator(f".field-status_column [data-zq-field=status_note][data-zq-execution='{execution.pk}']")
    page.wait_for_function(
        "(id) => document.querySelector(`.field-status_column [data-zq-field=status_note][data-zq-execution='${id}']`)"
        ".textContent === ''",
        arg=execution.pk,
    )
    assert note.inner_text() == ""
    error = page.locator(".field-error_pre pre[data-zq-field=error_message]")
    error.wait_for(state="visible")
    assert page.locator(".field-error_pre [data-zq-empty=error_message]").is_hidden()
    assert page.evaluate("window.__zqSameDocument") is True


def test_dashboard_panels_agree_when_a_run_ends(admin_login, scheduler):
    task = ScheduledTaskFactory(
        name="short-run", config={"task_action": "example_task", "steps": 3, "duration_seconds": 3}
    )
    execution = task_trigger(task=task, user=SYSTEM)
    scheduler()
    deadline_ms = 20_000
    page = admin_login("/admin/scheduler_app/")  # logged in; the dashboard opens once the run has started
    for _ in range(100):
        execution.refresh_from_db()
        if execution.status == TaskExecution.Status.RUNNING:
            break
        page.wait_for_timeout(100)
    page.goto(page.url.split("/admin/")[0] + "/admin/scheduler_app/scheduledtask/dashboard/")
    running_row = page.locator(f"#zq-running tr[data-zq-running='{execution.pk}']")
    timeline_badge = page.locator(f"#zq-timeline [data-zq-status='{execution.pk}']")
    assert running_row.is_visible()
    assert timeline_badge.inner_text() == "Running"

    running_row.wait_for(state="hidden", timeout=deadline_ms)
    _text_is(page, f"#zq-timeline [data-zq-status='{execution.pk}']", "Success")
    assert "zq-bg--success" in page.locator(f"#zq-timeline [data-zq-bar='{execution.pk}']").get_attribute("class")
    assert page.locator("#zq-running-none").is_visible()
