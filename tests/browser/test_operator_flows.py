"""An operator in a real browser: create a task, preview it, run it, watch it, stop a run, read the dashboard."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import ScheduledTask, TaskExecution
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.process, pytest.mark.timeout(120)]

ADD = "/admin/scheduler_app/scheduledtask/add/"
LIST = "/admin/scheduler_app/scheduledtask/"


def test_create_with_preview_run_now_and_watch_progress(admin_login, scheduler, live_server):
    process = scheduler(wait=False)  # starts while the browser works
    page = admin_login(ADD)

    # An invalid cron: the live preview says why, and so does the form after saving.
    page.fill("#id_name", "browser-task")
    page.fill("#id_cron_expression", "61 * * * *")
    error = page.locator("#zq-schedule-preview .zq-preview__error")
    error.wait_for(state="visible")
    assert "out of range" in error.inner_text()
    page.fill("#id_config", json.dumps({"task_action": "example_task", "steps": 5, "duration_seconds": 3}))
    page.click("input[name=_save]")
    field_error = page.locator(".field-cron_expression .errorlist")
    field_error.wait_for()
    assert "minute" in field_error.inner_text()
    assert not ScheduledTask.objects.filter(name="browser-task").exists()

    # A valid one: description and the next five runs, in the task's timezone.
    page.fill("#id_cron_expression", "*/5 * * * *")
    page.wait_for_function(
        "() => document.querySelectorAll('#zq-schedule-preview .zq-preview__runs li').length === 5"
        " && document.querySelector('#zq-schedule-preview .zq-preview__error').hidden"
    )
    assert "5 minutes" in page.inner_text("#zq-schedule-preview .zq-preview__description")
    runs = page.locator("#zq-schedule-preview .zq-preview__runs li").all_inner_texts()
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d[05]:00 \+08:00 \w+", run) for run in runs), runs
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_server.url}{LIST}")
    task = ScheduledTask.objects.get(name="browser-task")

    # Run now from the list; the message links the queued execution.
    process.wait_leader()
    page.click(f"button[formaction='/admin/scheduler_app/scheduledtask/{task.pk}/run/']")
    link = page.locator(".messagelist a", has_text="execution #")
    link.click()
    execution = TaskExecution.objects.get(task=task)
    page.wait_for_url(f"**/admin/scheduler_app/taskexecution/{execution.pk}/change/")

    # The progress bar reaches 100 % while the page stays the same document (no reload).
    page.evaluate("window.__zqSameDocument = true")
    bar = page.locator(f".field-progress_detail [data-zq-progress='{execution.pk}']")
    page.wait_for_function(
        f"() => document.querySelector(\".field-progress_detail [data-zq-progress='{execution.pk}']\")"
        ".getAttribute('data-zq-percent') === '100.0'",
        timeout=30_000,
    )
    assert bar.locator(".zq-progress__label").inner_text() == "100%"
    page.locator(f".field-status_column [data-zq-status='{execution.pk}']", has_text="Success").wait_for()
    assert page.evaluate("window.__zqSameDocument") is True
    execution.refresh_from_db()
    assert execution.status == TaskExecution.Status.SUCCESS


def test_terminate_a_long_run(admin_login, scheduler):
    task = ScheduledTaskFactory(
        name="long", config={"task_action": "example_task", "steps": 60, "duration_seconds": 60}
    )
    scheduler()
    page = admin_login(f"/admin/scheduler_app/scheduledtask/{task.pk}/change/")
    page.click("button[data-zq-verb=run]")
    page.locator(".messagelist a", has_text="execution #").click()
    execution = TaskExecution.objects.get(task=task)
    badge = page.locator(f".field-status_column [data-zq-status='{execution.pk}']")
    badge.locator("text=Running").wait_for(timeout=20_000)

    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f".object-tools button[data-zq-action=terminate][data-zq-execution='{execution.pk}']")
    page.locator(".messagelist", has_text="asked to stop").wait_for()
    badge.locator("text=Terminated").wait_for(timeout=20_000)
    assert page.locator(f".object-tools button[data-zq-action=rerun][data-zq-execution='{execution.pk}']").is_visible()
    execution.refresh_from_db()
    assert execution.status == TaskExecution.Status.TERMINATED


def test_dashboard_chart_and_workflow_graph(admin_login, live_server):
    now = timezone.now()
    step_a = ScheduledTaskFactory(name="step-a", task_type="manual_task", interval_seconds=None)
    step_b = ScheduledTaskFactory(name="step-b", task_type="manual_task", interval_seconds=None)
    for index, status in enumerate(["success", "success", "failed"]):
        TaskExecutionFactory(
            task=step_a,
            status=status,
            scheduled_for=now - timedelta(minutes=index + 1),
            start_time=now - timedelta(minutes=index + 1),
            end_time=now - timedelta(minutes=index),
            duration_seconds=60,
        )
    workflow = ScheduledTaskFactory(
        name="flow",
        task_type="workflow",
        config={
            "workflow_type": "serial",
            "tasks": [
                {"task_id": step_a.pk, "name": "step-a", "dependencies": []},
                {"task_id": step_b.pk, "name": "step-b", "dependencies": [step_a.pk]},
            ],
        },
    )

    page = admin_login("/admin/scheduler_app/scheduledtask/dashboard/")
    page.wait_for_function("() => window.zqDashboardChart && window.zqDashboardChart.data.datasets.length === 3")
    today = page.evaluate("window.zqDashboardChart.data.datasets.map(d => d.data[d.data.length - 1])")
    assert today == [2, 1, 0]
    box = page.locator("#zq-runs-chart").bounding_box()
    assert box["width"] > 300
    assert box["height"] > 100
    painted = page.evaluate(
        "(() => { const c = document.getElementById('zq-runs-chart');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return n; })()"
    )
    assert painted > 1000

    page.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/{workflow.pk}/change/")
    cy = "document.getElementById('zq-dag').zqCy"
    page.wait_for_function(f"() => {cy} && {cy}.nodes().length === 2")
    assert page.evaluate(f"{cy}.edges().length") == 1
    assert page.evaluate(f"{cy}.getElementById('{step_a.pk}').data('status')") == "failed"
    # the step editor writes the JSON config: removing the dependency updates the textarea and the graph
    page.select_option("tr[data-index='1'] .zq-step-deps", [])
    page.wait_for_function(f"() => {cy}.edges().length === 0")
    assert json.loads(page.input_value("#id_config"))["tasks"][1]["dependencies"] == []


def test_the_preview_follows_the_chosen_calendar_and_lists_its_holidays(admin_login, live_server):
    from tests.factories import CalendarFactory

    tomorrow = timezone.localdate() + timedelta(days=1)
    CalendarFactory(name="Ops", weekdays="*", days=[(tomorrow, "closed", "Maintenance")])
    page = admin_login(ADD)
    page.fill("#id_name", "calendar-task")
    page.fill("#id_cron_expression", "0 3 * * *")
    page.wait_for_function("() => document.querySelectorAll('#zq-schedule-preview .zq-preview__runs li').length === 5")
    page.select_option("#id_calendar", label="Ops")
    page.wait_for_function(
        "() => document.querySelectorAll('#zq-schedule-preview .zq-preview__removed li').length === 1"
    )
    assert page.inner_text("#zq-schedule-preview .zq-preview__description") == "At 03:00, only on open days of Ops"
    removed = page.inner_text("#zq-schedule-preview .zq-preview__removed")
    assert f"{tomorrow.isoformat()} 03:00:00 +08:00" in removed
    assert "Ops is closed: Maintenance" in removed
    assert page.is_visible("#zq-schedule-preview .zq-preview__removed-heading")
    runs = page.locator("#zq-schedule-preview .zq-preview__runs li").all_inner_texts()
    assert f"{tomorrow.isoformat()} 03:00" not in " ".join(runs)
