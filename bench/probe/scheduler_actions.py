"""`bench_probe`: does nothing but note, in its result's message, the wall-clock instant (Unix seconds)
at which its body began, so a benchmark can measure lateness where the task's code really starts."""

import time

from scheduler_app.actions import action


@action("bench_probe", description="Benchmark probe: records when its body began.")
def bench_probe(ctx, params) -> dict:
    return {"success": True, "message": f"{time.time():.6f}"}
