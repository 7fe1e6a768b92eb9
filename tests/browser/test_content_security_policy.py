"""Every scheduler admin page, and Swagger UI, works under the site's Content-Security-Policy.

The browser reports each refused script, style or image as a `securitypolicyviolation` event and a
console error; both are collected from the first document on, and every page must show neither while
its scripts do their work (chart drawn, graphs laid out, preview listed, bars sized).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app.models import SchedulerNode, TaskExecution
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Runs in every document before its own scripts (Playwright's init scripts are not subject to the CSP).
RECORD_VIOLATIONS = """
window.__zqViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__zqViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || ""}:${event.lineNumber || ""} ${event.sample || ""}`);
});
"""


class PolicyWatch:
    """Collects CSP violations and console errors of one browser context; checks the header on each page."""

    def __init__(self, page) -> None:
        self.page = page
        self.console_errors: list[str] = []
        page.context.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))

    def open(self, url: str, *, policy_has: str = "script-src 'self'") -> None:
        response = self.page.goto(url)
        assert response.ok, (url, response.status)
        policy = response.headers.get("content-security-policy", "")
        assert policy_has in policy, (url, policy)

    def assert_clean(self) -> None:
        violations = self.page.evaluate("window.__zqViolations")
        assert violations == [], violations
        assert [text for text in self.console_errors if "Content Security Policy" in text] == []
        assert self.console_errors == []


@pytest.fixture
def scheduler_data(db):
    """A workflow of two steps with a run in progress, a plain task with a running execution, a live node."""
    now = timezone.now()
    step_a = ScheduledTaskFactory(name="step-a", task_type="manual_task", interval_seconds=None)
    step_b = ScheduledTaskFactory(name="step-b", task_type="manual_task", interval_seconds=None)
    flow = ScheduledTaskFactory(
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
    flow_run = TaskExecutionFactory(
        task=flow, status="running", scheduled_for=now - timedelta(minutes=2), start_time=now - timedelta(minutes=2)
    )
    TaskExecutionFactory(
        task=step_a,
        parent=flow_run,
        status="success",
        scheduled_for=now - timedelta(minutes=2),
        start_time=now - timedelta(minutes=2),
        end_time=now - timedelta(minutes=1),
        duration_seconds=60,
    )
    running = TaskExecutionFactory(
        task=ScheduledTaskFactory(name="plain"),
        status="running",
        scheduled_for=now - timedelta(seconds=30),
        start_time=now - timedelta(seconds=30),
        progress_percent=42.5,
    )
    SchedulerNode.objects.create(
        node_id="browser-node", host="testhost", pid=4242, started_at=now - timedelta(minutes=5), last_heartbeat=now
    )
    return {"flow": flow, "flow_run": flow_run, "running": running}


def test_scheduler_admin_pages_have_no_policy_violation(admin_login, live_server, scheduler_data):
    page = admin_login("/admin/")
    watch = PolicyWatch(page)
    admin = f"{live_server.url}/admin/scheduler_app"
    running: TaskExecution = scheduler_data["running"]
    bar_width = (
        f"() => document.querySelector(\"[data-zq-progress='{running.pk}'] .zq-progress__bar\").style.width === '42.5%'"
    )

    watch.open(f"{admin}/scheduledtask/")
    page.wait_for_function(bar_width)
    watch.assert_clean()

    watch.open(f"{admin}/scheduledtask/add/")
    page.fill("#id_cron_expression", "*/5 * * * *")
    page.wait_for_function("() => document.querySelectorAll('#zq-schedule-preview .zq-preview__runs li').length === 5")
    watch.assert_clean()

    watch.open(f"{admin}/scheduledtask/{scheduler_data['flow'].pk}/change/")
    page.wait_for_function(
        "() => { const cy = document.getElementById('zq-dag').zqCy; return cy && cy.nodes().length === 2; }"
    )
    watch.assert_clean()

    watch.open(f"{admin}/taskexecution/{scheduler_data['flow_run'].pk}/change/")
    page.wait_for_function(
        "() => { const cy = document.getElementById('zq-run-dag').zqCy; return cy && cy.nodes().length === 2; }"
    )
    watch.assert_clean()

    watch.open(f"{admin}/taskexecution/")
    page.wait_for_function(bar_width)
    watch.assert_clean()

    watch.open(f"{admin}/scheduledtask/dashboard/")
    page.wait_for_function("() => window.zqDashboardChart && window.zqDashboardChart.data.datasets.length === 3")
    page.wait_for_function(bar_width)
    page.wait_for_function("() => document.querySelector('.zq-timeline__bar').style.width !== ''")
    watch.assert_clean()

    watch.open(f"{admin}/schedulernode/")
    page.locator("text=browser-node").wait_for()
    watch.assert_clean()


def test_login_page_has_no_policy_violation(browser, live_server):
    context = browser.new_context()
    try:
        page = context.new_page()
        watch = PolicyWatch(page)
        watch.open(f"{live_server.url}/admin/login/")
        page.locator("#id_username").wait_for()
        watch.assert_clean()
    finally:
        context.close()


def test_swagger_ui_works_under_its_own_policy(browser, live_server):
    context = browser.new_context()
    try:
        page = context.new_page()
        watch = PolicyWatch(page)
        watch.open(f"{live_server.url}/api/docs/")
        page.locator(".opblock-summary-path", has_text="/api/v1/scheduler/tasks/").first.wait_for()
        watch.assert_clean()
    finally:
        context.close()
