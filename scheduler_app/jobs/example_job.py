"""Example job script (zquant's example_scheduled_job.py): timed steps reporting progress.

    python -m scheduler_app.jobs.example_job --steps 5 --delay 1

Each step waits `--delay` seconds, then reports progress with current_item "step_i" through the
client helper (scheduler_app.client). A terminate request ends it with exit code 130; `--fail-at N`
exits with code 1 after step N (to try failures and retries). Runs by hand too.
"""

from __future__ import annotations

import argparse
import sys

from scheduler_app.client import EXIT_TERMINATED, TerminateRequested, get_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scheduler_app.jobs.example_job", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--steps", type=int, default=5, help="number of steps (at least 1; default 5)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds per step (default 1)")
    parser.add_argument("--fail-at", type=int, default=0, help="exit with code 1 after this step")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    if args.delay < 0:
        parser.error("--delay must not be negative")

    client = get_client()
    print(f"example job: {args.steps} steps of {args.delay:g} s (execution {client.execution_id})", flush=True)
    client.progress(processed=0, total=args.steps, message=f"开始执行 {args.steps} 个步骤")
    try:
        for step in range(1, args.steps + 1):
            client.sleep(args.delay)
            client.progress(
                processed=step, total=args.steps, current_item=f"step_{step}", message=f"步骤 {step}/{args.steps} 完成"
            )
            print(f"step {step}/{args.steps} done", flush=True)
            if step == args.fail_at:
                print(f"simulated failure after step {step}", file=sys.stderr, flush=True)
                return 1
    except TerminateRequested:
        print("terminate requested: stopping", flush=True)
        return EXIT_TERMINATED
    client.result(message=f"示例脚本执行完成: {args.steps} 个步骤", total_steps=args.steps)
    print("example job finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
