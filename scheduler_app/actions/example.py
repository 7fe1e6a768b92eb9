"""`example_task`: zquant's example task, a few timed steps with progress (and optional failure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from scheduler_app.actions import INTEGER, NUMBER, STRING, ConfigReader, ExecutionFailed, Param, RunContext, action

DEFAULT_MESSAGE = "示例任务执行完成"
FAILURE_MESSAGE = "示例任务执行失败（模拟失败场景）"


@dataclass(frozen=True)
class ExampleParams:
    duration_seconds: float
    success_rate: float
    message: str
    steps: int


def parse_example(config: dict[str, Any]) -> ExampleParams:
    reader = ConfigReader(config)
    params = ExampleParams(
        duration_seconds=reader.number("duration_seconds", default=3.0, minimum=0, maximum=86_400),
        success_rate=reader.number("success_rate", default=1.0, minimum=0, maximum=1),
        message=reader.text("message", default=DEFAULT_MESSAGE),
        steps=reader.integer("steps", default=5, minimum=1, maximum=100_000),  # zquant divided by zero at 0
    )
    reader.raise_if_errors()
    return params


EXAMPLE_PARAMETERS = (
    Param("duration_seconds", NUMBER, default=3.0, minimum=0, maximum=86_400, help="Total run time in seconds."),
    Param("success_rate", NUMBER, default=1.0, minimum=0, maximum=1, help="Chance of success, 0 to 1."),
    Param("message", STRING, default=DEFAULT_MESSAGE, max_length=1000, help="The message of a successful run."),
    Param("steps", INTEGER, default=5, minimum=1, maximum=100_000, help="Progress steps the time is split into."),
)


@action(
    "example_task",
    params=parse_example,
    description="Timed steps with progress; fails at random.",
    parameters=EXAMPLE_PARAMETERS,
)
def example_task(ctx: RunContext, params: ExampleParams) -> dict[str, Any]:
    step_seconds = params.duration_seconds / params.steps
    ctx.progress(processed=0, total=params.steps, message=f"正在执行步骤 0/{params.steps}")
    for step in range(1, params.steps + 1):
        ctx.sleep(step_seconds)
        ctx.progress(
            processed=step,
            total=params.steps,
            current_item=f"step_{step}",
            message=f"正在执行步骤 {step}/{params.steps}",
            current_step=step,
            total_steps=params.steps,
        )
    if params.success_rate < 1 and random.random() >= params.success_rate:
        raise ExecutionFailed(FAILURE_MESSAGE, result={"success": False, "total_steps": params.steps})
    return {
        "success": True,
        "message": params.message,
        "duration_seconds": params.duration_seconds,
        "total_steps": params.steps,
        "current_step": params.steps,
        "processed_items": params.steps,
        "total_items": params.steps,
    }
