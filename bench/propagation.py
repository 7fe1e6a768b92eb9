"""Propagation: from an edit through the API to the first run on the new schedule, on MariaDB (the
scheduler polls the schedule version, every SCHEDULER_POLL_SECONDS = 0.2 s by default) and on
PostgreSQL (LISTEN/NOTIFY), in one invocation, at the defaults.

Each edit turns a task that runs hourly into one that runs every second (PATCH tasks/{id}/
{"interval_seconds": 1}) at a random instant; the new schedule counts from the edit's commit, so its
first occurrence is the first whole second after the edit. Measured per edit:
- applied: when the job's row shows the new schedule (the scheduler writes a rebuilt job through at
  once; read every 2 ms), minus when the edit's response arrived (the commit is before that);
- first run late: when the first run's own code began (bench/probe's `bench_probe` action records it)
  minus the occurrence it ran for: what an operator sees of the propagation, if anything.
The task is disabled again after its first run (another edit, not measured).

Usage: python bench/propagation.py [edits=50]
(BENCH_MYSQL_URL, default mysql://root@127.0.0.1:3306/zq_bench_propagation;
 BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/zq_bench_propagation; either may be "-".)
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

from _common import percentile, setup, start_scheduler, stop_scheduler, table, wait_leader

EDITS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
DATABASES = {
    "MariaDB (poll)": os.environ.get("BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/zq_bench_propagation"),
    "PostgreSQL (LISTEN/NOTIFY)": os.environ.get(
        "BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/zq_bench_propagation"
    ),
}


def measure(url: str) -> dict[str, list[float]]:
    """One database, in this process: the delays of each edit, in ms."""
    setup(url, probe=True)
    from django.contrib.auth.models import Permission
    from django_apscheduler.models import DjangoJob
    from rest_framework.test import APIClient

    from scheduler_app.models import ScheduledTask, TaskExecution
    from tests.factories import user_with

    tasks = ScheduledTask.objects.bulk_create(
        [
            ScheduledTask(
                name=f"propagation-{i}",
                interval_seconds=3600,
                config={"task_action": "bench_probe"},
                timezone="UTC",
                max_retries=0,
            )
            for i in range(EDITS)
        ]
    )
    assert Permission.objects.filter(codename="change_scheduledtask").exists()
    client = APIClient()
    client.force_authenticate(user_with("bench", "change_scheduledtask", "view_scheduledtask"))
    proc = start_scheduler("--log-level", "WARNING")
    delays: dict[str, list[float]] = {"applied": [], "late": []}
    try:
        wait_leader(proc)
        time.sleep(1)  # the listener is in place (PostgreSQL)
        for task in tasks:
            time.sleep(random.uniform(0.2, 1.2))  # edits at every phase of the second
            hourly = DjangoJob.objects.get(id=task.job_id).next_run_time
            response = client.patch(f"/api/v1/scheduler/tasks/{task.pk}/", {"interval_seconds": 1}, format="json")
            answered = time.time()
            assert response.status_code == 200, response.content
            deadline = time.monotonic() + 10
            while DjangoJob.objects.get(id=task.job_id).next_run_time == hourly:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the edit was not applied within 10 s: {url}")
                time.sleep(0.002)
            delays["applied"].append((time.time() - answered) * 1000)
            while not (run := TaskExecution.objects.filter(task=task, status="success").order_by("id").first()):
                if time.monotonic() > deadline:
                    raise SystemExit(f"no run on the new schedule within 10 s: {url}")
                time.sleep(0.005)
            client.patch(f"/api/v1/scheduler/tasks/{task.pk}/", {"enabled": False}, format="json")
            began = float(run.result["message"])
            delays["late"].append((began - run.scheduled_for.timestamp()) * 1000)
    finally:
        stop_scheduler(proc)
    return delays


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[2] == "--one":
        print(json.dumps(measure(sys.argv[3])))
        return
    print(f"$ {' '.join(sys.argv)}   (load average before: {os.getloadavg()[0]:.2f})")
    rows = []
    for name, url in DATABASES.items():
        if url == "-":
            continue
        out = subprocess.run(
            [sys.executable, __file__, str(EDITS), "--one", url], capture_output=True, text=True, check=False
        )
        if out.returncode:
            raise SystemExit(f"{name}: {out.stderr[-2000:]}")
        delays = json.loads(out.stdout.strip().splitlines()[-1])
        applied, late = delays["applied"], delays["late"]
        rows.append(
            [
                name,
                len(late),
                f"{percentile(applied, 50):.0f}",
                f"{percentile(applied, 99):.0f}",
                f"{percentile(late, 50):.0f}",
                f"{percentile(late, 99):.0f}",
                f"{max(late):.0f}",
            ]
        )
    print(f"{EDITS} edits each through PATCH /api/v1/scheduler/tasks/{{id}}/, defaults (poll 0.2 s)")
    headers = ["database", "edits", "applied p50 ms", "applied p99 ms", "first run late p50", "p99 ms", "max ms"]
    print(table(headers, rows))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
