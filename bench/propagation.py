"""Propagation: time from an API edit (PATCH tasks/{id}/) to the new schedule being in effect.

"In effect" = the scheduler has rebuilt the task's job: its next run time in the job store reflects
the new interval. Each edit waits a random 0-300 ms first, so the edits do not fall into step with
the scheduler's polling (which would show the same delay every time).
Usage: python bench/propagation.py [edits] (BENCH_DATABASE_URL, default MariaDB zq_bench_propagation).
"""

from __future__ import annotations

import random
import sys
import time

from _common import percentile, setup, start_scheduler, stop_scheduler, table, wait_leader

EDITS = int(sys.argv[1]) if len(sys.argv) > 1 else 50


def main() -> None:
    url = setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django_apscheduler.models import DjangoJob
    from rest_framework.test import APIClient

    from scheduler_app.models import ScheduledTask

    task = ScheduledTask.objects.create(
        name="propagation", interval_seconds=3600, config={"task_action": "example_task", "steps": 1}, timezone="UTC"
    )
    user = get_user_model().objects.create(username="bench")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="scheduler_app", codename="change_scheduledtask")
    )
    client = APIClient()
    client.force_authenticate(user)
    proc = start_scheduler("--log-level", "WARNING")
    wait_leader(proc)
    delays = []
    for i in range(EDITS):
        previous = DjangoJob.objects.get(id=task.job_id).next_run_time
        interval = 3000 + i  # a new interval every time, so the next run time always changes
        time.sleep(random.uniform(0, 0.3))
        sent = time.monotonic()
        response = client.patch(f"/api/v1/scheduler/tasks/{task.pk}/", {"interval_seconds": interval}, format="json")
        assert response.status_code == 200, response.content
        while DjangoJob.objects.get(id=task.job_id).next_run_time == previous:
            if time.monotonic() - sent > 10:
                raise SystemExit("the edit did not reach the scheduler within 10 s")
            time.sleep(0.002)
        delays.append((time.monotonic() - sent) * 1000)
    stop_scheduler(proc)
    print(f"database: {url.split('@')[-1]}; {EDITS} edits through PATCH /api/v1/scheduler/tasks/{{id}}/")
    print(
        table(
            ["edits", "p50 ms", "p99 ms", "max ms"],
            [[EDITS, f"{percentile(delays, 50):.0f}", f"{percentile(delays, 99):.0f}", f"{max(delays):.0f}"]],
        )
    )


if __name__ == "__main__":
    main()
