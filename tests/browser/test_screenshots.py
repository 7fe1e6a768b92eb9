"""Regenerates docs/screenshots/*.png from the demo data (skipped unless ZQ_SCREENSHOTS=1).

    ZQ_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_screenshots.py

Needs Chromium and, for the Chinese task names and pages, a CJK font (apt-get install fonts-noto-cjk).
Taken at 1440x900 with the admin's navigation sidebar open, as an operator sees the console on a laptop.
"""

from __future__ import annotations

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_trigger

pytestmark = [
    pytest.mark.browser,
    pytest.mark.process,
    pytest.mark.timeout(180),
    pytest.mark.skipif(os.environ.get("ZQ_SCREENSHOTS") != "1", reason="set ZQ_SCREENSHOTS=1 to regenerate"),
]

OUT = Path(settings.BASE_DIR) / "docs" / "screenshots"
SIZE = {"width": 1440, "height": 900}
OPEN_SIDEBAR = "window.localStorage.setItem('django.admin.navSidebarIsOpen', 'true')"


def _wait(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_screenshots(admin_login, scheduler, live_server):
    OUT.mkdir(parents=True, exist_ok=True)
    call_command("init_scheduler", stdout=StringIO())
    scheduler()
    by_name = {task.name: task for task in ScheduledTask.objects.all()}
    for name in ("示例任务-快速测试", "示例任务-每分钟", "示例任务-命令执行", "编排任务-混合执行示例"):
        task_trigger(task=by_name[name], user=SYSTEM)
    _wait(lambda: not TaskExecution.objects.filter(status__in=["pending", "running"]).exists(), 90)
    progress = task_trigger(task=by_name["示例任务-实时进度演示"], user=SYSTEM)

    page = admin_login("/admin/scheduler_app/scheduledtask/", **SIZE)
    page.context.add_init_script(OPEN_SIDEBAR)

    page.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/")
    page.wait_for_timeout(500)
    page.screenshot(path=OUT / "task-list.png")

    page.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/add/")
    page.fill("#id_name", "收盘后同步")
    page.fill("#id_cron_expression", "30 18 * * 1-5")
    page.fill("#id_config", '{"task_action": "sync_daily_data", "lookback_days": 5}')
    page.wait_for_function("() => document.querySelectorAll('#zq-schedule-preview .zq-preview__runs li').length === 5")
    page.screenshot(path=OUT / "task-form-preview.png", full_page=True)

    _wait(lambda: TaskExecution.objects.filter(pk=progress.pk, progress_percent__gte=30).exists(), 40)
    page.goto(f"{live_server.url}/admin/scheduler_app/taskexecution/{progress.pk}/change/")
    page.wait_for_timeout(2500)
    page.screenshot(path=OUT / "execution-running.png", full_page=True)
    page.goto(f"{live_server.url}/admin/scheduler_app/taskexecution/")
    page.wait_for_timeout(500)
    page.screenshot(path=OUT / "execution-list.png")

    workflow = by_name["编排任务-混合执行示例"]
    page.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/{workflow.pk}/change/")
    page.wait_for_function("() => document.getElementById('zq-dag').zqCy")
    page.wait_for_timeout(500)
    page.locator(".field-workflow_editor").screenshot(path=OUT / "workflow-dag.png")
    run = TaskExecution.objects.filter(task=workflow).order_by("-pk").first()
    page.goto(f"{live_server.url}/admin/scheduler_app/taskexecution/{run.pk}/change/")
    page.wait_for_function("() => document.getElementById('zq-run-dag') && document.getElementById('zq-run-dag').zqCy")
    page.wait_for_timeout(500)
    page.screenshot(path=OUT / "workflow-run.png", full_page=True)

    page.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/dashboard/")
    page.wait_for_function("() => window.zqDashboardChart")
    page.wait_for_timeout(500)
    page.screenshot(path=OUT / "dashboard.png", full_page=True)

    chinese = admin_login("/admin/scheduler_app/scheduledtask/dashboard/", locale="zh-CN", **SIZE)
    chinese.context.add_init_script(OPEN_SIDEBAR)
    chinese.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/")
    chinese.wait_for_timeout(500)
    chinese.screenshot(path=OUT / "task-list-zh.png")
    chinese.goto(f"{live_server.url}/admin/scheduler_app/schedulernode/")
    chinese.wait_for_timeout(300)
    chinese.screenshot(path=OUT / "processes-zh.png")
    chinese.goto(f"{live_server.url}/admin/scheduler_app/scheduledtask/dashboard/")
    chinese.wait_for_function("() => window.zqDashboardChart")
    chinese.wait_for_timeout(500)
    chinese.screenshot(path=OUT / "dashboard-zh.png", full_page=True)
    _wait(lambda: not TaskExecution.objects.filter(status__in=["pending", "running"]).exists(), 60)
