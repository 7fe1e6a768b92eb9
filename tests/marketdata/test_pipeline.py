"""The demo: every demo config is valid, and the data pipeline workflow really writes rows."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from marketdata.models import DailyBar, DailyBasic, FactorValue, Stock, TradingDay
from scheduler_app.executors import validate_config
from scheduler_app.models import ScheduledTask
from scheduler_app.runtime.runner import execution_run
from tests.executors.helpers import make_execution

pytestmark = pytest.mark.usefixtures("fast")


@pytest.mark.django_db
def test_every_demo_task_config_is_valid():
    call_command("init_scheduler", stdout=StringIO())
    for task in ScheduledTask.objects.all():
        assert validate_config(task.task_type, task.config, task_id=task.pk) == [], task.name


@pytest.mark.django_db(transaction=True)
def test_the_demo_data_pipeline_writes_rows(factors):
    call_command("init_scheduler", stdout=StringIO())
    pipeline = ScheduledTask.objects.get(name="编排任务-核心步骤串行执行")
    execution = execution_run(execution_id=make_execution(pipeline, trigger="manual").pk)
    assert execution.status == "success", execution.error_message
    assert execution.result["success_count"] == 5
    steps = {step.task.name: step for step in execution.children.select_related("task")}
    assert {step.status for step in steps.values()} == {"success"}
    assert (Stock.objects.count(), TradingDay.objects.count()) == (6, 182)
    assert DailyBar.objects.count() == DailyBasic.objects.count() == 6 * 30
    assert FactorValue.objects.count() == 6 * 3  # three factors for each stock on the latest day
    assert steps["STEP3-同步日线数据（当日）"].result["insert_count"] == 180
    assert steps["STEP8-量化因子计算（当日）"].result["invalid_count"] == 0
