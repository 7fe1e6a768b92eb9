"""Workflow config parsing and validation: every mistake zquant let through is refused."""

from __future__ import annotations

import pytest

from scheduler_app.workflows import WorkflowConfigError, parse_workflow_config, validate_workflow_config
from tests.factories import ScheduledTaskFactory


def config(*steps, **extra):
    return {"workflow_type": "parallel", "on_failure": "stop", "tasks": list(steps), **extra}


def step(task_id, *deps, name=""):
    return {"task_id": task_id, "name": name or f"s{task_id}", "dependencies": list(deps)}


def errors_of(cfg, *, db: bool = False, workflow_id: int | None = None) -> str:
    check = (
        (lambda: validate_workflow_config(cfg, workflow_id=workflow_id)) if db else (lambda: parse_workflow_config(cfg))
    )
    with pytest.raises(WorkflowConfigError) as caught:
        check()
    return " | ".join(caught.value.errors)


class TestParse:
    def test_valid_mixed_workflow_and_its_order(self):
        plan = parse_workflow_config(config(step(3), step(1), step(2, 3, 1), step(4, 2)))
        assert plan.order() == [3, 1, 2, 4]
        assert plan.dependents(1) == {2, 4}
        assert plan.max_parallel == 4

    def test_serial_order_follows_config_order_for_ties(self):
        plan = parse_workflow_config(config(step(9), step(2), step(5), workflow_type="serial"))
        assert plan.order() == [9, 2, 5]

    @pytest.mark.parametrize(
        ("cfg", "message"),
        [
            ([], "must be a JSON object"),
            (config(step(1), workflow_type="loop"), "Unsupported workflow_type 'loop'"),
            (config(step(1), on_failure="explode"), "Unsupported on_failure 'explode'"),
            (config(step(1), max_parallel=0), "max_parallel"),
            (config(step(1), max_parallel=True), "max_parallel"),
            (config(), "at least one step"),
            ({"workflow_type": "serial"}, "at least one step"),
            (config("x"), "Step 1 must be an object"),
            (config({"name": "no id"}), "Step 1 has no valid task_id"),
            (config({"task_id": "7"}), "Step 1 has no valid task_id"),
            (config(step(1), step(1)), "Task 1 is listed more than once"),
            (config(step(1, 1)), "Step 1 depends on itself"),
            (config(step(1, 2)), "depends on [2], which are not steps"),
            (config({"task_id": 1, "dependencies": "2"}), "must be a list of task ids"),
            (config(step(1, 3), step(2, 1), step(3, 2)), "cycle"),
        ],
    )
    def test_refused(self, cfg, message):
        assert message in errors_of(cfg)

    def test_all_problems_are_reported_at_once(self):
        text = errors_of(config(step(1), step(1), workflow_type="x", on_failure="y"))
        for part in ("workflow_type", "on_failure", "more than once"):
            assert part in text


@pytest.mark.django_db
class TestValidateWithDatabase:
    def test_valid(self):
        a, b = ScheduledTaskFactory(), ScheduledTaskFactory()
        plan = validate_workflow_config(config(step(a.pk), step(b.pk, a.pk)))
        assert plan.task_ids == [a.pk, b.pk]

    def test_unknown_and_disabled_tasks(self):
        off = ScheduledTaskFactory(enabled=False)
        text = errors_of(config(step(off.pk), step(999999)), db=True)
        assert "do not exist: [999999]" in text
        assert f"disabled: [{off.pk}]" in text

    def test_self_reference(self):
        wf = ScheduledTaskFactory(task_type="workflow")
        assert "cannot list itself" in errors_of(config(step(wf.pk)), db=True, workflow_id=wf.pk)

    def test_nesting_that_reaches_itself(self):
        outer = ScheduledTaskFactory(task_type="workflow")
        leaf = ScheduledTaskFactory()
        inner = ScheduledTaskFactory(task_type="workflow", config=config(step(leaf.pk), step(outer.pk)))
        text = errors_of(config(step(inner.pk)), db=True, workflow_id=outer.pk)
        assert f"Step {inner.pk} ({inner.name}) is a workflow that runs this workflow again" in text

    def test_nesting_without_loop_is_fine(self):
        leaf = ScheduledTaskFactory()
        inner = ScheduledTaskFactory(task_type="workflow", config=config(step(leaf.pk)))
        outer = ScheduledTaskFactory(task_type="workflow")
        validate_workflow_config(config(step(inner.pk)), workflow_id=outer.pk)
