"""Workflows: zquant's serial, parallel and mixed examples, with stop and continue, control and resume."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from scheduler_app.models import ScheduledTask, TaskExecution
from tests.executors.helpers import Runner, make_execution, make_task, request, row, run_config, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast")]


def example(name: str, *, seconds: float = 0.2, ok: bool = True, steps: int = 2) -> ScheduledTask:
    config = {
        "task_action": "example_task",
        "steps": steps,
        "duration_seconds": seconds,
        "success_rate": 1 if ok else 0,
    }
    return make_task(config, name=name)


def workflow(steps: list[tuple[ScheduledTask, list[ScheduledTask]]], **options: Any) -> dict[str, Any]:
    return {
        **options,
        "tasks": [
            {"task_id": task.pk, "name": task.name, "dependencies": [dep.pk for dep in deps]} for task, deps in steps
        ],
    }


def run_workflow(config: dict[str, Any], **fields: Any) -> TaskExecution:
    fields.setdefault("max_retries", 0)
    return run_config(config, task_type="workflow", interval_seconds=600, **fields)


def steps_of(execution: TaskExecution) -> dict[str, TaskExecution]:
    return {step.task.name: step for step in execution.children.select_related("task")}


def by_name(execution: TaskExecution) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in execution.result["task_results"]}


def test_serial_example_runs_steps_one_after_another():
    one, two, three = example("步骤1"), example("步骤2"), example("步骤3")
    config = workflow([(one, []), (two, [one]), (three, [two])], workflow_type="serial", on_failure="stop")
    execution = run_workflow(config)
    assert execution.status == "success", execution.error_message
    steps = steps_of(execution)
    assert {step.status for step in steps.values()} == {"success"}
    assert {step.trigger for step in steps.values()} == {"workflow"}
    assert {step.scheduled_for for step in steps.values()} == {None}
    assert steps["步骤1"].end_time <= steps["步骤2"].start_time
    assert steps["步骤2"].end_time <= steps["步骤3"].start_time
    assert execution.progress_percent == 100
    assert (execution.processed_items, execution.total_items) == (3, 3)
    result = execution.result
    assert (result["workflow_type"], result["total_tasks"], result["success_count"], result["failed_count"]) == (
        "serial",
        3,
        3,
        0,
    )
    assert result["task_results"] == [
        {"task_id": task.pk, "name": task.name, "execution_id": steps[task.name].pk, "status": "success"}
        for task in (one, two, three)
    ]


def test_serial_stop_skips_the_rest_after_a_failure():
    one, two, three = example("s1"), example("s2", ok=False), example("s3")
    config = workflow([(one, []), (two, [one]), (three, [two])], workflow_type="serial", on_failure="stop")
    execution = run_workflow(config, max_retries=1)
    assert execution.status == "failed"
    steps = steps_of(execution)
    assert [steps[name].status for name in ("s1", "s2", "s3")] == ["success", "failed", "skipped"]
    assert "dependency did not succeed" in steps["s3"].error_message
    assert execution.result["failed_task_ids"] == [two.pk]
    assert "s2" in execution.error_message
    # steps are not retried one by one; the workflow is
    assert not TaskExecution.objects.filter(trigger="retry", task__in=[one, two, three]).exists()
    assert TaskExecution.objects.get(parent=execution, trigger="retry").task_id == execution.task_id


def test_serial_continue_skips_only_dependents_of_a_failure():
    one, two, three, four = example("a"), example("b", ok=False), example("c"), example("d")
    config = workflow([(one, []), (two, [one]), (three, [two]), (four, [one])], on_failure="continue")
    execution = run_workflow({**config, "workflow_type": "serial"})
    assert execution.status == "completed"
    statuses = {name: step.status for name, step in steps_of(execution).items()}
    assert statuses == {"a": "success", "b": "failed", "c": "skipped", "d": "success"}
    assert execution.result["success_count"] == 2
    assert execution.result["skipped_count"] == 1


def test_parallel_example_with_continue_runs_steps_together():
    quick, one, two = example("快速测试", seconds=0.6), example("步骤1", seconds=0.6), example("步骤2", seconds=0.6)
    config = workflow([(quick, []), (one, []), (two, [])], workflow_type="parallel", on_failure="continue")
    execution = run_workflow(config)
    assert execution.status == "success"
    steps = list(steps_of(execution).values())
    latest_start = max(step.start_time for step in steps)
    earliest_end = min(step.end_time for step in steps)
    assert latest_start < earliest_end  # all three ran at the same time


def test_parallel_continue_with_a_failure_ends_completed():
    quick, one, two = example("q"), example("one", ok=False), example("two")
    config = workflow([(quick, []), (one, []), (two, [])], workflow_type="parallel", on_failure="continue")
    execution = run_workflow(config)
    assert execution.status == "completed"
    assert {name: entry["status"] for name, entry in by_name(execution).items()} == {
        "q": "success",
        "one": "failed",
        "two": "success",
    }
    assert execution.result["success"] is False
    assert execution.progress_percent == 100


def test_max_parallel_bounds_the_steps_running_at_once():
    tasks = [example(f"p{index}", seconds=0.3) for index in range(3)]
    config = workflow([(task, []) for task in tasks], workflow_type="parallel", max_parallel=1)
    execution = run_workflow(config)
    steps = sorted(steps_of(execution).values(), key=lambda step: step.start_time)
    assert all(a.end_time <= b.start_time for a, b in itertools.pairwise(steps))


def mixed(fail: str = "", on_failure: str = "stop") -> tuple[dict[str, Any], dict[str, ScheduledTask]]:
    names = ["快速测试", "步骤1", "步骤2", "步骤3"]
    tasks = {name: example(name, ok=name != fail, seconds=0.3 if name == "快速测试" else 0.1) for name in names}
    config = workflow(
        [
            (tasks["快速测试"], []),
            (tasks["步骤1"], []),
            (tasks["步骤2"], [tasks["快速测试"], tasks["步骤1"]]),
            (tasks["步骤3"], [tasks["步骤2"]]),
        ],
        workflow_type="parallel",
        on_failure=on_failure,
    )
    return config, tasks


def test_mixed_example_follows_the_dependencies():
    config, _ = mixed()
    execution = run_workflow(config)
    assert execution.status == "success"
    steps = steps_of(execution)
    assert steps["快速测试"].start_time < steps["步骤1"].end_time  # the two roots ran together
    assert steps["步骤2"].start_time >= max(steps["快速测试"].end_time, steps["步骤1"].end_time)
    assert steps["步骤3"].start_time >= steps["步骤2"].end_time


def test_mixed_example_stop_lets_running_steps_finish_and_skips_the_rest():
    config, _ = mixed(fail="步骤1", on_failure="stop")
    execution = run_workflow(config)
    assert execution.status == "failed"
    statuses = {name: step.status for name, step in steps_of(execution).items()}
    assert statuses == {"快速测试": "success", "步骤1": "failed", "步骤2": "skipped", "步骤3": "skipped"}


def test_mixed_example_stop_starts_nothing_new_after_a_failure():
    # The failing root ends first; the other root keeps running; independent steps never start.
    slow, failing, independent = example("slow", seconds=0.8), example("failing", ok=False), example("independent")
    config = workflow([(slow, []), (failing, []), (independent, [slow])], workflow_type="parallel", on_failure="stop")
    execution = run_workflow(config)
    statuses = {name: step.status for name, step in steps_of(execution).items()}
    assert statuses == {"slow": "success", "failing": "failed", "independent": "skipped"}
    assert "on_failure=stop" in steps_of(execution)["independent"].error_message
    assert steps_of(execution)["independent"].start_time is None


def test_mixed_example_continue_skips_only_the_blocked_branch():
    config, _ = mixed(fail="快速测试", on_failure="continue")
    execution = run_workflow(config)
    assert execution.status == "completed"
    statuses = {name: step.status for name, step in steps_of(execution).items()}
    assert statuses == {"快速测试": "failed", "步骤1": "success", "步骤2": "skipped", "步骤3": "skipped"}


def test_progress_is_finished_steps_over_total():
    one, two, three = example("x1", seconds=0.1), example("x2", seconds=1.0), example("x3", seconds=0.1)
    config = workflow([(one, []), (two, [one]), (three, [two])], workflow_type="serial")
    task = make_task(config, task_type="workflow", interval_seconds=600)
    execution = make_execution(task)
    runner = Runner(execution.pk)
    seen = wait_for(lambda: row(execution.pk).processed_items == 1 and row(execution.pk))
    assert round(seen.progress_percent, 2) == 33.33
    assert seen.current_item == "x2"
    assert runner.join().progress_percent == 100


def test_terminating_the_workflow_terminates_its_steps():
    long_one = example("long-1", seconds=30, steps=300)
    long_two = example("long-2", seconds=30, steps=300)
    after = example("after")
    command = make_task({"command": "sleep 30"}, name="sleeper")
    config = workflow(
        [(long_one, []), (long_two, []), (command, []), (after, [long_one])], workflow_type="parallel", max_parallel=3
    )
    task = make_task(config, task_type="workflow", interval_seconds=600)
    execution = make_execution(task)
    runner = Runner(execution.pk)
    wait_for(lambda: execution.children.filter(status="running").count() == 3)
    request(execution.pk, terminate_requested=True)
    final = runner.join(timeout=15)
    assert final.status == "terminated"
    statuses = {name: step.status for name, step in steps_of(final).items()}
    assert statuses == {"long-1": "terminated", "long-2": "terminated", "sleeper": "terminated", "after": "skipped"}
    assert "workflow was stopped" in steps_of(final)["after"].error_message
    assert not TaskExecution.objects.filter(trigger="retry").exists()
    assert {entry["status"] for entry in final.result["task_results"]} == {"terminated", "skipped"}


def test_a_workflow_timeout_stops_its_steps_and_fails():
    slow = example("slow", seconds=30, steps=300)
    execution = run_workflow(workflow([(slow, [])]), timeout_seconds=1)
    assert execution.status == "failed"
    assert "timed out after 1 s" in execution.error_message
    assert steps_of(execution)["slow"].status == "terminated"


def test_pausing_the_workflow_pauses_its_running_step():
    slow = example("slow", seconds=2, steps=20)
    task = make_task(workflow([(slow, [])]), task_type="workflow", interval_seconds=600)
    execution = make_execution(task)
    runner = Runner(execution.pk)
    wait_for(lambda: execution.children.filter(status="running").exists())
    request(execution.pk, is_paused=True)
    step = wait_for(lambda: execution.children.filter(status="paused").first())
    assert row(execution.pk).status == "paused"
    request(execution.pk, is_paused=False)
    wait_for(lambda: row(step.pk).status in ("running", "success"))
    assert runner.join().status == "success"


def test_a_step_terminated_on_its_own_counts_as_failed():
    slow, after, other = example("slow", seconds=30, steps=300), example("after"), example("other", seconds=0.1)
    config = workflow([(slow, []), (after, [slow]), (other, [])], workflow_type="parallel", on_failure="continue")
    task = make_task(config, task_type="workflow", interval_seconds=600)
    execution = make_execution(task)
    runner = Runner(execution.pk)
    step = wait_for(lambda: execution.children.filter(task=slow, status="running").first())
    request(step.pk, terminate_requested=True)
    final = runner.join()
    assert final.status == "completed"
    statuses = {name: entry["status"] for name, entry in by_name(final).items()}
    assert statuses == {"slow": "terminated", "after": "skipped", "other": "success"}


def test_resume_skips_the_steps_that_succeeded():
    one, two, three = example("r1"), example("r2", ok=False), example("r3")
    config = workflow([(one, []), (two, [one]), (three, [two])], workflow_type="serial", on_failure="stop")
    first = run_workflow(config)
    assert first.status == "failed"
    ScheduledTask.objects.filter(pk=two.pk).update(config={**two.config, "success_rate": 1})
    resumed = make_execution(first.task, trigger="resume", parent=first, result={"resume_from_execution_id": first.pk})
    from scheduler_app.runtime.runner import execution_run

    second = execution_run(execution_id=resumed.pk)
    assert second.status == "success"
    assert set(steps_of(second)) == {"r2", "r3"}  # r1 did not run again
    entries = by_name(second)
    assert entries["r1"] == {
        "task_id": one.pk,
        "name": "r1",
        "execution_id": steps_of(first)["r1"].pk,
        "status": "success",
        "reused": True,
    }
    assert second.result["resume_from_execution_id"] == first.pk
    assert second.result["success_count"] == 3
    # a resume of the resume still knows r1 (from task_results): nothing runs twice
    third_row = make_execution(first.task, trigger="resume", result={"resume_from_execution_id": second.pk})
    third = execution_run(execution_id=third_row.pk)
    assert third.status == "success"
    assert not third.children.exists()


def test_invalid_workflow_config_fails_the_run():
    execution = run_workflow({"workflow_type": "serial", "tasks": [{"task_id": 424242}]})
    assert execution.status == "failed"
    assert "do not exist" in execution.error_message


def test_no_step_row_waits_pending_while_the_workflow_runs():
    """Steps are written when they start or are skipped: a crash can strand none of them."""
    one, two, three = example("s1", seconds=0.6, steps=3), example("s2", seconds=0.6, steps=3), example("s3")
    config = workflow([(one, []), (two, [one]), (three, [two])], workflow_type="serial", on_failure="stop")
    task = make_task(config, task_type="workflow", interval_seconds=600)
    execution = make_execution(task)
    runner = Runner(execution.pk)
    seen_pending = []
    while runner.thread.is_alive():
        seen_pending.extend(execution.children.filter(status="pending").values_list("pk", flat=True))
        runner.thread.join(0.05)
    assert runner.join().status == "success"
    assert seen_pending == []
    assert [step.task_id for step in execution.children.order_by("pk")] == [one.pk, two.pk, three.pk]


def test_a_retried_workflow_reuses_the_steps_that_succeeded():
    one, two, three = example("t1"), example("t2", ok=False), example("t3")
    config = workflow([(one, []), (two, [one]), (three, [two])], workflow_type="serial", on_failure="stop")
    first = run_workflow(config, max_retries=1, retry_interval=0)
    assert first.status == "failed"
    assert by_name(first)["t3"]["status"] == "skipped"
    assert steps_of(first)["t3"].error_message.startswith("not run: its dependency did not succeed")
    ScheduledTask.objects.filter(pk=two.pk).update(config={**two.config, "success_rate": 1})
    retry = TaskExecution.objects.get(parent=first, trigger="retry")
    from scheduler_app.runtime.runner import execution_run

    second = execution_run(execution_id=retry.pk)
    assert second.status == "success", second.error_message
    assert set(steps_of(second)) == {"t2", "t3"}  # t1 succeeded in the failed attempt: not run again
    assert by_name(second)["t1"]["reused"] is True
