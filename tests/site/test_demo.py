"""init_scheduler creates zquant's demo tasks and workflows, and a second run changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from scheduler_app.models import ScheduledTask
from zquant_site.demo import DEMO_TASKS, DEMO_WORKFLOWS

pytestmark = pytest.mark.django_db


def snapshot() -> list[tuple]:
    return list(ScheduledTask.objects.order_by("name").values_list("name", "job_id", "config", "updated_at", "enabled"))


def test_creates_every_demo_task_and_workflow():
    out = StringIO()
    call_command("init_scheduler", stdout=out)
    assert ScheduledTask.objects.count() == len(DEMO_TASKS) + len(DEMO_WORKFLOWS)
    assert f"{len(DEMO_TASKS) + len(DEMO_WORKFLOWS)} tasks created" in out.getvalue()
    for task in ScheduledTask.objects.all():
        task.full_clean()  # every demo row satisfies the model's invariants


def test_second_run_changes_and_duplicates_nothing():
    call_command("init_scheduler", stdout=StringIO())
    before = snapshot()
    out = StringIO()
    call_command("init_scheduler", stdout=out)
    assert snapshot() == before
    assert "0 tasks created" in out.getvalue()


def test_operator_edits_are_kept():
    call_command("init_scheduler", stdout=StringIO())
    ScheduledTask.objects.filter(name="示例任务-快速测试").update(interval_seconds=45)
    call_command("init_scheduler", stdout=StringIO())
    assert ScheduledTask.objects.get(name="示例任务-快速测试").interval_seconds == 45


def test_workflows_reference_their_steps_by_id_in_order():
    call_command("init_scheduler", stdout=StringIO())
    ids = dict(ScheduledTask.objects.values_list("name", "id"))
    mixed = ScheduledTask.objects.get(name="编排任务-混合执行示例")
    assert mixed.task_type == "workflow"
    assert mixed.config["workflow_type"] == "parallel"
    assert mixed.config["on_failure"] == "stop"
    steps = {step["name"]: step for step in mixed.config["tasks"]}
    assert steps["示例任务-步骤2"]["dependencies"] == [ids["示例任务-快速测试"], ids["示例任务-步骤1"]]
    assert steps["示例任务-步骤2"]["task_id"] == ids["示例任务-步骤2"]
    pipeline = ScheduledTask.objects.get(name="编排任务-核心步骤串行执行")
    actions = [ScheduledTask.objects.get(pk=step["task_id"]).config["task_action"] for step in pipeline.config["tasks"]]
    assert actions == [
        "sync_trading_calendar",
        "sync_stock_list",
        "sync_all_daily_data",
        "sync_daily_basic_data",
        "calculate_factor",
    ]


def test_workflow_steps_do_not_also_fire_on_their_own():
    """zquant scheduled its STEP tasks at 18:00 and ran them again in the 18:30 workflow."""
    call_command("init_scheduler", stdout=StringIO())
    step_ids = {
        step["task_id"]
        for workflow in ScheduledTask.objects.filter(name__startswith="编排任务-核心")
        for step in workflow.config["tasks"]
    }
    assert set(ScheduledTask.objects.filter(pk__in=step_ids).values_list("task_type", flat=True)) == {"manual_task"}


def test_demo_admin_keeps_its_first_password_and_prints_it_each_time(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    first, second = StringIO(), StringIO()
    call_command("demo_admin", stdout=first)
    password = first.getvalue().split("password=")[1].split()[0]
    call_command("demo_admin", stdout=second)
    assert f"Demo admin kept: username=admin password={password}" in second.getvalue()
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username="admin").check_password(password)
    third = StringIO()
    call_command("demo_admin", "--reset", stdout=third)
    assert "Demo admin reset" in third.getvalue()
    assert password not in third.getvalue()


def test_demo_admin_prints_password(rf, settings, tmp_path):
    from django.contrib.auth import authenticate

    settings.BASE_DIR = tmp_path
    out = StringIO()
    call_command("demo_admin", "--password", "s3cret-demo", stdout=out)
    assert "username=admin password=s3cret-demo" in out.getvalue()
    # a login, as the admin's form makes it: the lockout backend needs the request
    assert authenticate(rf.post("/admin/login/"), username="admin", password="s3cret-demo").is_superuser


def test_the_trading_day_task_runs_on_the_sample_calendar_and_its_preview_skips_the_spring_festival():
    from datetime import UTC, datetime

    from scheduler_app.models import BlackoutWindow, Calendar
    from scheduler_app.selectors import task_next_runs

    out = StringIO()
    call_command("init_scheduler", stdout=out)
    assert "calendar SSE published" in out.getvalue()
    calendar = Calendar.objects.get(name="SSE")
    assert calendar.source == "marketdata.trading_calendar"
    task = ScheduledTask.objects.get(name="交易日16:30-同步日线数据")
    assert (task.cron_expression, task.calendar, task.calendar_rule) == ("30 16 * * *", calendar, "open_days")
    answer = task_next_runs(task=task, count=5, now=datetime(2024, 2, 5, tzinfo=UTC))
    assert answer["description"] == "At 16:30, only on open days of SSE"
    assert answer["next_runs"][-1].isoformat() == "2024-02-19T16:30:00+08:00"
    removed = [entry["planned"].date().isoformat() for entry in answer["removed"]]
    assert removed == ["2024-02-09", "2024-02-12", "2024-02-13", "2024-02-14", "2024-02-15", "2024-02-16"]
    window = BlackoutWindow.objects.get(name="午间休市（示例）")
    assert (window.enabled, window.action, window.calendar) == (False, "defer", calendar)
    again = StringIO()
    call_command("init_scheduler", stdout=again)
    assert "calendar SSE published" not in again.getvalue()  # the same days: nothing published anew
    assert BlackoutWindow.objects.count() == 1
