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


def test_demo_admin_prints_password(rf):
    from django.contrib.auth import authenticate

    out = StringIO()
    call_command("demo_admin", "--password", "s3cret-demo", stdout=out)
    assert "username=admin password=s3cret-demo" in out.getvalue()
    # a login, as the admin's form makes it: the lockout backend needs the request
    assert authenticate(rf.post("/admin/login/"), username="admin", password="s3cret-demo").is_superuser
