"""Demo data: zquant's example tasks, data pipeline steps and workflows (spec section 7).

Differences from zquant's init script, on purpose: the STEP tasks and the workflow steps are manual
tasks (they run inside their workflow, or on demand) instead of also firing on their own cron at the
same time as the workflow (weak spot 28); the data steps call actions instead of job scripts, against
the configured market-data provider (the bundled offline sample by default). The daily steps sync the
last 30 trading days (`lookback_days`), so the factor step has the history its 20-day factors need.
Creating is idempotent: a task whose name exists is left exactly as it is.

The trading-day demo task syncs the daily data at 16:30 on SSE trading days only: the calendar is
the market-data app's bundled sample (2024, published by init_scheduler through
scheduler_app.calendars), so its preview from early February 2024 skips the Spring Festival; after
June 2024 the calendar's Monday-to-Friday rule applies. Without that calendar (no market-data app)
the task is left out and reported. A lunch-break blackout window is created disabled, as an example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from scheduler_app.models import BlackoutWindow, Calendar, ScheduledTask
from scheduler_app.services import permissions
from scheduler_app.services.permissions import Actor, Work
from scheduler_app.services.state import schedule_touch

MANUAL = ScheduledTask.TaskType.MANUAL_TASK
COMMON = ScheduledTask.TaskType.COMMON_TASK
WORKFLOW = ScheduledTask.TaskType.WORKFLOW


def _example(duration: float, success_rate: float, message: str, steps: int) -> dict[str, Any]:
    return {
        "task_action": "example_task",
        "duration_seconds": duration,
        "success_rate": success_rate,
        "message": message,
        "steps": steps,
    }


# name -> model fields; workflows name their steps, resolved to ids when created.
DEMO_TASKS: dict[str, dict[str, Any]] = {
    "示例任务-快速测试": {
        "task_type": COMMON,
        "interval_seconds": 30,
        "config": _example(3, 1.0, "快速测试任务执行完成", 5),
        "description": "Example task: five quick steps every 30 seconds.",
    },
    "示例任务-每分钟": {
        "task_type": COMMON,
        "interval_seconds": 60,
        "config": _example(5, 0.9, "每分钟任务执行完成", 10),
        "max_retries": 2,
        "retry_interval": 30,
        "description": "Example task that fails one time in ten and is retried.",
    },
    "示例任务-每日18点": {
        "task_type": COMMON,
        "cron_expression": "0 18 * * *",
        "config": _example(10, 1.0, "每日任务执行完成", 20),
        "retry_interval": 300,
    },
    "示例任务-已禁用": {
        "task_type": COMMON,
        "interval_seconds": 60,
        "enabled": False,
        "config": _example(2, 1.0, "已禁用任务执行完成", 3),
    },
    "示例任务-实时进度演示": {
        "task_type": COMMON,
        "interval_seconds": 300,
        "config": _example(30, 1.0, "实时进度演示任务执行完成", 30),
        "description": "Thirty one-second steps: watch the progress bar move.",
    },
    "示例任务-命令执行": {
        "task_type": COMMON,
        "interval_seconds": 300,
        "timeout_seconds": 300,
        "config": {"command": "python -m scheduler_app.jobs.example_job --steps 5 --delay 1"},
        "description": "Runs the bundled example job script, which reports progress through the client helper.",
    },
    "示例任务-工作日9点": {
        "task_type": COMMON,
        "cron_expression": "0 9 * * 1-5",
        "config": _example(3, 1.0, "工作日任务执行完成", 3),
        "description": "Crontab weekdays: 1-5 is Monday to Friday.",
    },
    "示例任务-步骤1": {"task_type": MANUAL, "config": _example(3, 1.0, "示例任务-步骤1执行完成", 5)},
    "示例任务-步骤2": {"task_type": MANUAL, "config": _example(3, 1.0, "示例任务-步骤2执行完成", 5)},
    "示例任务-步骤3": {"task_type": MANUAL, "config": _example(3, 1.0, "示例任务-步骤3执行完成", 5)},
    "交易日16:30-同步日线数据": {
        "task_type": COMMON,
        "cron_expression": "30 16 * * *",
        "calendar": "SSE",
        "config": {"task_action": "sync_all_daily_data", "lookback_days": 1},
        "timeout_seconds": 36000,
        "retry_interval": 600,
        "description": "Daily bars at 16:30 on SSE trading days only (cron picks the time, the calendar the days).",
    },
    "STEP1-同步交易日历（当日）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_trading_calendar"},
        "timeout_seconds": 600,
        "retry_interval": 300,
    },
    "STEP2-同步股票列表（当日）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_stock_list"},
        "timeout_seconds": 600,
        "retry_interval": 300,
    },
    "STEP3-同步日线数据（当日）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_all_daily_data", "lookback_days": 30},
        "timeout_seconds": 36000,
        "retry_interval": 600,
    },
    "STEP4-同步每日指标数据（当日）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_daily_basic_data", "lookback_days": 30},
        "timeout_seconds": 36000,
        "retry_interval": 600,
    },
    "STEP8-量化因子计算（当日）": {
        "task_type": MANUAL,
        "config": {"task_action": "calculate_factor"},
        "timeout_seconds": 36000,
        "retry_interval": 600,
    },
    "同步交易日历（手动）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_trading_calendar", "start_date": "20240101"},
        "timeout_seconds": 600,
        "retry_interval": 300,
    },
    "同步日线数据（时间段）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_all_daily_data", "start_date": "20240101"},
        "timeout_seconds": 36000,
        "retry_interval": 1800,
    },
    "同步每日指标数据（时间段）": {
        "task_type": MANUAL,
        "config": {"task_action": "sync_daily_basic_data", "start_date": "20240101"},
        "timeout_seconds": 36000,
        "retry_interval": 1800,
    },
    "量化因子计算（时间段）": {
        "task_type": MANUAL,
        "config": {"task_action": "calculate_factor", "start_date": "2024-01-01"},
        "timeout_seconds": 36000,
        "retry_interval": 600,
    },
}

DEMO_WORKFLOWS: dict[str, dict[str, Any]] = {
    "编排任务-核心步骤串行执行": {
        "cron_expression": "30 18 * * *",
        "retry_interval": 600,
        "description": "The daily data pipeline: calendar → stock list → daily bars → daily basics → factors.",
        "workflow_type": "serial",
        "on_failure": "stop",
        "steps": [
            ("STEP1-同步交易日历（当日）", []),
            ("STEP2-同步股票列表（当日）", ["STEP1-同步交易日历（当日）"]),
            ("STEP3-同步日线数据（当日）", ["STEP2-同步股票列表（当日）"]),
            ("STEP4-同步每日指标数据（当日）", ["STEP3-同步日线数据（当日）"]),
            ("STEP8-量化因子计算（当日）", ["STEP4-同步每日指标数据（当日）"]),
        ],
    },
    "编排任务-串行执行示例": {
        "interval_seconds": 600,
        "workflow_type": "serial",
        "on_failure": "stop",
        "steps": [
            ("示例任务-步骤1", []),
            ("示例任务-步骤2", ["示例任务-步骤1"]),
            ("示例任务-步骤3", ["示例任务-步骤2"]),
        ],
    },
    "编排任务-并行执行示例": {
        "interval_seconds": 600,
        "workflow_type": "parallel",
        "on_failure": "continue",
        "steps": [("示例任务-快速测试", []), ("示例任务-步骤1", []), ("示例任务-步骤2", [])],
    },
    "编排任务-混合执行示例": {
        "interval_seconds": 600,
        "workflow_type": "parallel",
        "on_failure": "stop",
        "steps": [
            ("示例任务-快速测试", []),
            ("示例任务-步骤1", []),
            ("示例任务-步骤2", ["示例任务-快速测试", "示例任务-步骤1"]),
            ("示例任务-步骤3", ["示例任务-步骤2"]),
        ],
    },
}


# name -> fields of the demo blackout windows (created disabled: an example to switch on).
DEMO_BLACKOUTS: dict[str, dict[str, Any]] = {
    "午间休市（示例）": {
        "kind": BlackoutWindow.Kind.DAILY,
        "action": BlackoutWindow.Action.DEFER,
        "timezone": "Asia/Shanghai",
        "from_time": "11:30",
        "until_time": "13:00",
        "calendar": "SSE",
        "enabled": False,
        "description": "Example: enable it to defer every task's runs out of the SSE lunch break to 13:00.",
    },
}


@dataclass
class DemoReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "name: why"
    windows: list[str] = field(default_factory=list)  # blackout windows created


def _with_calendars(fields: dict[str, Any], calendars: dict[str, Calendar]) -> dict[str, Any] | None:
    """The fields with calendar names resolved; None when a calendar is missing."""
    for key in ("calendar", "event_calendar"):
        if isinstance(fields.get(key), str):
            if fields[key] not in calendars:
                return None
            fields[key] = calendars[fields[key]]
    return fields


def _workflow_fields(spec: dict[str, Any], ids: dict[str, int]) -> dict[str, Any]:
    fields = {key: value for key, value in spec.items() if key not in {"workflow_type", "on_failure", "steps"}}
    fields["task_type"] = WORKFLOW
    fields["config"] = {
        "workflow_type": spec["workflow_type"],
        "on_failure": spec["on_failure"],
        "tasks": [
            {"task_id": ids[name], "name": name, "dependencies": [ids[dep] for dep in deps]}
            for name, deps in spec["steps"]
        ],
    }
    return fields


@transaction.atomic
def demo_tasks_create(*, user: Actor) -> DemoReport:
    """Create every demo task, workflow and blackout window that does not exist yet; change nothing else.

    The rules of task_create(): TASK_ADD, and TASK_COMMAND for the command task (init_scheduler acts as SYSTEM).
    """
    permissions.TASK_ADD.check(user)
    report = DemoReport()
    existing = dict(ScheduledTask.objects.filter(name__in=[*DEMO_TASKS, *DEMO_WORKFLOWS]).values_list("name", "id"))
    calendars = {calendar.name: calendar for calendar in Calendar.objects.all()}
    ids = dict(existing)
    plans = [(name, lambda spec=spec: dict(spec)) for name, spec in DEMO_TASKS.items()]
    plans += [(name, lambda spec=spec: _workflow_fields(spec, ids)) for name, spec in DEMO_WORKFLOWS.items()]
    for name, build_fields in plans:
        if name in existing:
            report.existing.append(name)
            continue
        fields = _with_calendars(build_fields(), calendars)
        if fields is None:
            report.skipped.append(f"{name}: its calendar does not exist (the market-data app publishes SSE)")
            continue
        task = ScheduledTask(name=name, **{"max_retries": 3, **fields})
        permissions.task_work_check(actor=user, work=Work.of(task), before=None)
        task.full_clean()
        task.save()
        ids[name] = task.pk
        report.created.append(name)
    existing_windows = set(BlackoutWindow.objects.filter(name__in=DEMO_BLACKOUTS).values_list("name", flat=True))
    for name, spec in DEMO_BLACKOUTS.items():
        if name in existing_windows:
            continue
        fields = _with_calendars(dict(spec), calendars)
        if fields is None:
            report.skipped.append(f"{name}: its calendar does not exist")
            continue
        window = BlackoutWindow(name=name, **fields)
        window.full_clean()
        window.save()
        report.windows.append(name)
    if report.created or report.windows:
        schedule_touch()
    return report
