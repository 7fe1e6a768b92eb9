"""The example action: progress from 0 to 100, validation, simulated failure, terminate."""

from __future__ import annotations

import pytest

from scheduler_app.models import TaskExecution
from scheduler_app.runtime.context import ExecutionContext
from tests.executors.helpers import Runner, make_execution, make_task, request, row, run_config, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast")]


def test_example_progress_moves_from_0_to_100(monkeypatch):
    written: list[tuple[float, int | None, str]] = []
    original = ExecutionContext.flush

    def spy(self):
        if self._dirty:
            written.append((self.percent, self.processed, self.current_item))
        original(self)

    monkeypatch.setattr(ExecutionContext, "flush", spy)
    # Long enough for the monitor's 0.5 s polls to meet it at least twice, also on a loaded machine.
    execution = run_config({"task_action": "example_task", "steps": 4, "duration_seconds": 2.4})
    assert execution.status == "success"
    # The monitor writes what it finds at each poll: rising percents of named steps, while it runs.
    percents = [percent for percent, _, _ in written]
    assert len(percents) >= 2
    assert percents == sorted(percents)
    assert {item for _, _, item in written} <= {"", "step_1", "step_2", "step_3", "step_4"}
    assert execution.progress_percent == 100
    assert execution.processed_items == execution.total_items == 4
    assert execution.current_item == "step_4"
    assert execution.result == {
        "success": True,
        "message": "示例任务执行完成",
        "duration_seconds": 2.4,
        "current_step": 4,
        "total_steps": 4,
        "processed_items": 4,
        "total_items": 4,
    }


def test_example_progress_is_visible_while_running():
    task = make_task({"task_action": "example_task", "steps": 5, "duration_seconds": 1.5})
    execution = make_execution(task)
    runner = Runner(execution.pk)
    seen = wait_for(lambda: 0 < row(execution.pk).progress_percent < 100 and row(execution.pk))
    assert seen.status == "running"
    assert seen.estimated_end_time is not None
    assert seen.result["message"].startswith("正在执行步骤")
    assert runner.join().progress_percent == 100


def test_steps_zero_is_a_validation_error_not_a_crash():
    execution = run_config({"task_action": "example_task", "steps": 0}, max_retries=0)
    assert execution.status == "failed"
    assert execution.error_message == "Invalid config: steps must be at least 1."


def test_simulated_failure_fails_and_is_retried():
    execution = run_config({"task_action": "example_task", "steps": 2, "duration_seconds": 0, "success_rate": 0})
    assert execution.status == "failed"
    assert execution.error_message == "示例任务执行失败（模拟失败场景）"
    retry = TaskExecution.objects.get(parent=execution)
    assert (retry.status, retry.trigger, retry.retry_count) == ("pending", "retry", 1)


def test_terminate_stops_the_example_within_a_second():
    task = make_task({"task_action": "example_task", "steps": 100, "duration_seconds": 50})
    execution = make_execution(task)
    runner = Runner(execution.pk)
    wait_for(lambda: row(execution.pk).processed_items >= 1)
    request(execution.pk, terminate_requested=True)
    final = runner.join(timeout=5)
    assert final.status == "terminated"
    assert final.processed_items < 100
    assert final.error_message == "terminated on request"
    assert not TaskExecution.objects.filter(parent=final).exists()


def test_unknown_action_fails_the_run_cleanly():
    execution = run_config({"task_action": "nope"}, max_retries=0)
    assert execution.status == "failed"
    assert "Unsupported task_action 'nope'" in execution.error_message
