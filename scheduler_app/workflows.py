"""Workflow configs: parse and validate a DAG of steps; used by the API, the admin and the executor.

Config shape: {"workflow_type": "serial" | "parallel", "on_failure": "stop" | "continue",
"max_parallel": 1..100 (parallel only, default 4), "tasks": [{"task_id": int, "name": str,
"dependencies": [task_id, ...]}, ...]}.

zquant checked only some of this, and only sometimes (spec 4.9, weak spot 29); every check here runs
on every save: types and values, duplicate ids, unknown dependencies, self-dependency, cycles, steps
that do not exist or are disabled, a workflow listing itself, and nesting that reaches back to it.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from scheduler_app.models import MAX_ID, ScheduledTask

WORKFLOW_TYPES = ("serial", "parallel")
ON_FAILURE_CHOICES = ("stop", "continue")
DEFAULT_MAX_PARALLEL = 4
MAX_PARALLEL_LIMIT = 100
MAX_NESTING_DEPTH = 10


class WorkflowConfigError(ValueError):
    """A workflow config that cannot run; `errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class WorkflowStep:
    task_id: int
    name: str
    dependencies: tuple[int, ...]


@dataclass(frozen=True)
class WorkflowPlan:
    workflow_type: str
    on_failure: str
    max_parallel: int
    steps: tuple[WorkflowStep, ...]

    @property
    def task_ids(self) -> list[int]:
        return [step.task_id for step in self.steps]

    def step(self, task_id: int) -> WorkflowStep:
        return next(step for step in self.steps if step.task_id == task_id)

    def order(self) -> list[int]:
        """Topological order; among steps that are ready together, config order decides."""
        position = {step.task_id: index for index, step in enumerate(self.steps)}
        sorter = graphlib.TopologicalSorter({step.task_id: step.dependencies for step in self.steps})
        sorter.prepare()
        order: list[int] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=position.__getitem__)
            order.extend(ready)
            sorter.done(*ready)
        return order

    def dependents(self, task_id: int) -> set[int]:
        """Every step that depends on `task_id`, directly or through other steps."""
        found: set[int] = set()
        frontier = [task_id]
        while frontier:
            current = frontier.pop()
            for step in self.steps:
                if current in step.dependencies and step.task_id not in found:
                    found.add(step.task_id)
                    frontier.append(step.task_id)
        return found


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_workflow_config(config: Any) -> WorkflowPlan:
    """The plan of a workflow config, checked without the database; raises WorkflowConfigError."""
    if not isinstance(config, dict):
        raise WorkflowConfigError([_("The workflow config must be a JSON object.")])
    errors: list[str] = []
    workflow_type = config.get("workflow_type", "serial")
    if workflow_type not in WORKFLOW_TYPES:
        errors.append(_("Unsupported workflow_type %(value)r; use serial or parallel.") % {"value": workflow_type})
    on_failure = config.get("on_failure", "stop")
    if on_failure not in ON_FAILURE_CHOICES:
        errors.append(_("Unsupported on_failure %(value)r; use stop or continue.") % {"value": on_failure})
    max_parallel = config.get("max_parallel", DEFAULT_MAX_PARALLEL)
    if not _is_int(max_parallel) or not 1 <= max_parallel <= MAX_PARALLEL_LIMIT:
        errors.append(_("max_parallel must be a whole number from 1 to %(limit)s.") % {"limit": MAX_PARALLEL_LIMIT})
    items = config.get("tasks")
    if not isinstance(items, list) or not items:
        errors.append(_("A workflow needs at least one step in 'tasks'."))
        raise WorkflowConfigError(errors)

    steps: list[WorkflowStep] = []
    seen: set[int] = set()
    for index, item in enumerate(items, 1):
        if not isinstance(item, dict):
            errors.append(_("Step %(index)s must be an object with a task_id.") % {"index": index})
            continue
        task_id = item.get("task_id")
        if not _is_int(task_id):
            errors.append(_("Step %(index)s has no valid task_id.") % {"index": index})
            continue
        if not 1 <= task_id <= MAX_ID:
            errors.append(
                _("Step %(index)s: task ids are whole numbers from 1 to %(max)s.") % {"index": index, "max": MAX_ID}
            )
            continue
        if task_id in seen:
            errors.append(_("Task %(id)s is listed more than once.") % {"id": task_id})
            continue
        seen.add(task_id)
        name = item.get("name", "")
        if not isinstance(name, str):
            errors.append(_("The name of step %(id)s must be text.") % {"id": task_id})
            name = ""
        dependencies = item.get("dependencies", [])
        if not isinstance(dependencies, list) or not all(_is_int(dep) for dep in dependencies):
            errors.append(_("The dependencies of step %(id)s must be a list of task ids.") % {"id": task_id})
            dependencies = []
        if task_id in dependencies:
            errors.append(_("Step %(id)s depends on itself.") % {"id": task_id})
        steps.append(WorkflowStep(task_id=task_id, name=name, dependencies=tuple(dict.fromkeys(dependencies))))

    for step in steps:
        unknown = sorted(set(step.dependencies) - seen)
        if unknown:
            errors.append(
                _("Step %(id)s depends on %(unknown)s, which are not steps of this workflow.")
                % {"id": step.task_id, "unknown": unknown}
            )
    if not errors:
        try:
            graphlib.TopologicalSorter({step.task_id: step.dependencies for step in steps}).prepare()
        except graphlib.CycleError as cycle:
            path = " → ".join(str(task_id) for task_id in reversed(cycle.args[1]))
            errors.append(_("The dependencies form a cycle: %(path)s.") % {"path": path})
    if errors:
        raise WorkflowConfigError(errors)
    return WorkflowPlan(
        workflow_type=workflow_type, on_failure=on_failure, max_parallel=max_parallel, steps=tuple(steps)
    )


def validate_workflow_config(config: Any, *, workflow_id: int | None = None) -> WorkflowPlan:
    """parse_workflow_config plus the checks that need the database; raises WorkflowConfigError."""
    plan = parse_workflow_config(config)
    errors: list[str] = []
    if workflow_id is not None and workflow_id in plan.task_ids:
        errors.append(_("A workflow cannot list itself as a step."))
    tasks = {task.pk: task for task in ScheduledTask.objects.filter(pk__in=plan.task_ids)}
    missing = [task_id for task_id in plan.task_ids if task_id not in tasks]
    if missing:
        errors.append(_("These tasks do not exist: %(ids)s.") % {"ids": missing})
    disabled = [task.pk for task in tasks.values() if not task.enabled]
    if disabled:
        errors.append(_("These tasks are disabled: %(ids)s.") % {"ids": sorted(disabled)})
    if workflow_id is not None:
        nested = [task for task in tasks.values() if task.task_type == ScheduledTask.TaskType.WORKFLOW]
        for task in nested:
            if task.pk != workflow_id and _reaches(task, workflow_id, depth=1):
                errors.append(
                    _("Step %(id)s (%(name)s) is a workflow that runs this workflow again.")
                    % {"id": task.pk, "name": task.name}
                )
    if errors:
        raise WorkflowConfigError(errors)
    return plan


def _reaches(workflow, target_id: int, *, depth: int) -> bool:
    """Whether `workflow`'s steps, followed through nested workflows, include `target_id`."""
    if depth > MAX_NESTING_DEPTH:
        return True  # deeper than any sane design; treat as a loop rather than recurse forever
    items = workflow.config.get("tasks") if isinstance(workflow.config, dict) else None
    step_ids = [item.get("task_id") for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    if target_id in step_ids:
        return True
    children = ScheduledTask.objects.filter(pk__in=[i for i in step_ids if _is_int(i)], task_type="workflow")
    return any(_reaches(child, target_id, depth=depth + 1) for child in children)
