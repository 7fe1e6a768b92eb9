"""API latency on a big database: 10,000 tasks and 1,000,000 executions.

Seeds the database once (bulk inserts, then the stored summaries the lifecycle keeps; reused on
later runs unless --reset), starts the site under gunicorn (the production server, README) on
127.0.0.1, and times every list, filter, ordering and statistics endpoint over real HTTP with token
authentication, `--repeat` times each after a warm-up, one request at a time. Prints p50 / p95 in
milliseconds and the SQL queries of one request (counted through Django's test client). Goal: p95
<= 100 ms on every row. Also says the database server's buffer pool and the load average.

Usage: python bench/api_list.py [--reset] [--tasks N] [--executions N] [--repeat N]
Database: BENCH_DATABASE_URL, else mysql://root@127.0.0.1:3306/zq_bench_api (never DATABASE_URL, so
a developer's own database is not touched). --reset drops and recreates it.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "mysql://root@127.0.0.1:3306/zq_bench_api"
STATUSES = ["success"] * 85 + ["failed"] * 8 + ["terminated"] * 2 + ["skipped"] * 3 + ["completed"] * 2
LATEST = ["success", "success", "failed", "running", "pending", "paused"]
WARM_UP = 3


def connect(url: str, *, reset: bool) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zquant_site.settings")
    sys.path.insert(0, str(ROOT))
    if url.startswith("mysql"):
        import MySQLdb

        name = url.rsplit("/", 1)[1]
        server = MySQLdb.connect(host=url.split("@")[1].split(":")[0], user="root")
        if reset:
            server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        server.close()
    elif reset and url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(n_tasks: int, n_executions: int) -> None:
    from django.db import connection, transaction
    from django_apscheduler.models import DjangoJob

    from scheduler_app.models import ScheduledTask, TaskExecution

    if ScheduledTask.objects.count() >= n_tasks and TaskExecution.objects.count() >= n_executions:
        print(f"reusing the seeded database ({connection.settings_dict['NAME']})")
        return
    with connection.cursor() as cursor:  # a partial earlier seed: start over (raw, the ORM would cascade row by row)
        for model in (TaskExecution, ScheduledTask, DjangoJob):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")
    rng = random.Random(7)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    tasks = []
    for index in range(n_tasks):
        kind = index % 10
        tasks.append(
            ScheduledTask(
                name=f"bench task {index:05}",
                task_type="manual_task" if kind == 0 else "common_task",
                cron_expression="30 18 * * 1-5" if kind in (1, 2) else None,
                interval_seconds=None if kind in (0, 1, 2) else 60 * (1 + index % 30),
                enabled=index % 17 != 0,
                paused=index % 23 == 0,
                description=f"benchmark task number {index}",
                config={"task_action": "example_task", "steps": 3},
            )
        )
    with transaction.atomic():
        ScheduledTask.objects.bulk_create(tasks, batch_size=2000)
    ids = list(ScheduledTask.objects.order_by("pk").values_list("pk", "job_id", "task_type", "enabled", "paused"))
    jobs = [
        DjangoJob(id=job_id, next_run_time=now + timedelta(seconds=rng.randint(1, 86_400)), job_state=b"")
        for _pk, job_id, task_type, enabled, paused in ids
        if task_type != "manual_task" and enabled and not paused
    ]
    DjangoJob.objects.bulk_create(jobs, batch_size=2000)
    print(f"seeded {len(ids)} tasks and {len(jobs)} jobs in {time.perf_counter() - started:.1f} s")

    # Raw multi-row INSERTs (mysqlclient batches executemany): bulk_create spends its time in Python.
    fields = [field for field in TaskExecution._meta.concrete_fields if not field.primary_key]
    static = {field.attname: field.get_db_prep_save(field.get_default(), connection) for field in fields}
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {connection.ops.quote_name(TaskExecution._meta.db_table)} ({columns}) VALUES ({placeholders})"
    stamp = connection.ops.adapt_datetimefield_value
    per_task = n_executions // len(ids)
    batch: list[tuple] = []
    started = time.perf_counter()
    written = 0
    for position, (pk, *_rest) in enumerate(ids):
        count = per_task + (1 if position < n_executions % len(ids) else 0)
        spacing = timedelta(hours=rng.choice((1, 6, 24)))  # so history reaches back 4 to 100 days
        first = now - spacing * count
        for number in range(count):
            when = first + spacing * number
            status = LATEST[pk % len(LATEST)] if number == count - 1 else rng.choice(STATUSES)
            ran = status not in ("pending", "skipped")
            finished = ran and status not in ("running", "paused")
            duration = rng.uniform(1, 300) if finished else None
            values = {
                **static,
                "task_id": pk,
                "status": status,
                "trigger": "schedule",
                "scheduled_for": stamp(when),
                "start_time": stamp(when) if ran else None,
                "end_time": stamp(when + timedelta(seconds=duration)) if finished else None,
                "duration_seconds": duration,
                "result": f'{{"success": {"true" if status == "success" else "false"}, "message": "bench"}}',
                "error_message": "boom" if status == "failed" else "",
                "progress_percent": 100.0 if finished else 40.0 if ran else 0.0,
                "current_item": f"item {number}" if ran else "",
                "created_at": stamp(when),
                "updated_at": stamp(when),
            }
            batch.append(tuple(values[field.attname] for field in fields))
            if len(batch) >= 5000:
                written += _insert(connection, sql, batch)
                batch = []
                if written % 200_000 == 0:
                    print(f"  {written} executions ({time.perf_counter() - started:.0f} s)")
    if batch:
        written += _insert(connection, sql, batch)
    print(f"seeded {written} executions in {time.perf_counter() - started:.1f} s")
    from scheduler_app.runtime.summaries import summaries_rebuild

    started = time.perf_counter()
    summaries_rebuild()  # what the lifecycle would have kept while these runs happened
    print(f"stored latest executions and day statistics in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute(f"ANALYZE TABLE {TaskExecution._meta.db_table}, {ScheduledTask._meta.db_table}")
            cursor.fetchall()
        elif connection.vendor == "postgresql":
            cursor.execute("ANALYZE")


def _insert(connection, sql: str, rows: list[tuple]) -> int:
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    return len(rows)


def buffer_pool() -> str:
    """The database server's page cache, which decides whether the executions fit in memory."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            cursor.execute("SELECT @@innodb_buffer_pool_size")
            return f"innodb_buffer_pool_size {int(cursor.fetchone()[0]) // 2**20} MiB"
        if connection.vendor == "postgresql":
            cursor.execute("SHOW shared_buffers")
            return f"shared_buffers {cursor.fetchone()[0]}"
    return "SQLite (the operating system's page cache)"


def start_server(url: str, port: int) -> subprocess.Popen:
    """The site under gunicorn with the README's production worker count, on 127.0.0.1."""
    command = [
        sys.executable, "-m", "gunicorn", "zquant_site.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(2 * (os.cpu_count() or 1) + 1), "--log-level", "warning",
    ]  # fmt: skip
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_THROTTLE_USER": "",  # one client asking thousands of times is the point here
        "PYTHONWARNINGS": "ignore:No directory at",  # static files are not collected for a benchmark
    }
    server = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/api/schema/")
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def measure(repeat: int, port: int) -> list[list[object]]:
    from _common import percentile
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from rest_framework.authtoken.models import Token

    from scheduler_app.models import ScheduledTask

    user, _ = get_user_model().objects.get_or_create(username="bench")
    # A reader: the list endpoints need the view permissions (is_staff grants nothing).
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="scheduler_app",
            codename__in=["view_scheduledtask", "view_taskexecution", "view_schedulernode"],
        )
    )
    token, _ = Token.objects.get_or_create(user=user)
    headers = {"Authorization": f"Token {token.key}"}
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    rng = random.Random(11)
    task_ids = list(ScheduledTask.objects.values_list("pk", flat=True))
    base = "/api/v1/scheduler/"
    pages = max(1, len(task_ids) // 50)
    cases = [
        ("GET tasks/ (page 1, by name)", lambda: f"{base}tasks/?page_size=50"),
        ("GET tasks/ (random page)", lambda: f"{base}tasks/?page_size=50&page={rng.randint(1, pages)}"),
        ("GET tasks/ ?ordering=-latest_execution_time", lambda: f"{base}tasks/?ordering=-latest_execution_time"),
        ("GET tasks/ ?ordering=next_run_time", lambda: f"{base}tasks/?ordering=next_run_time"),
        ("GET tasks/ ?schedule_status=failed", lambda: f"{base}tasks/?schedule_status=failed"),
        ("GET tasks/ ?schedule_status=running", lambda: f"{base}tasks/?schedule_status=running"),
        ("GET tasks/ ?enabled=true&task_type=common_task", lambda: f"{base}tasks/?enabled=true&task_type=common_task"),
        ("GET tasks/ ?search=number 12", lambda: f"{base}tasks/?search=number%2012"),
        ("GET tasks/{id}/", lambda: f"{base}tasks/{rng.choice(task_ids)}/"),
        ("GET tasks/{id}/executions/", lambda: f"{base}tasks/{rng.choice(task_ids)}/executions/"),
        ("GET tasks/{id}/executions/ ?page=2", lambda: f"{base}tasks/{rng.choice(task_ids)}/executions/?page=2"),
        (
            "GET tasks/{id}/executions/ ?status=failed",
            lambda: f"{base}tasks/{rng.choice(task_ids)}/executions/?status=failed",
        ),
        ("GET tasks/{id}/stats/", lambda: f"{base}tasks/{rng.choice(task_ids)}/stats/"),
        ("GET tasks/{id}/next-runs/", lambda: f"{base}tasks/{rng.choice(task_ids)}/next-runs/"),
        ("GET executions/ (all, page 1)", lambda: f"{base}executions/"),
        ("GET executions/ ?status=failed", lambda: f"{base}executions/?status=failed"),
        ("GET stats/ (all executions)", lambda: f"{base}stats/"),
        ("GET scheduler/status/", lambda: f"{base}scheduler/status/"),
    ]
    http_client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    rows = []
    for label, make_url in cases:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(make_url())
        assert response.status_code == 200, (label, response.status_code, response.content[:200])
        queries = len(captured)
        timings = []
        for index in range(WARM_UP + repeat):
            url = make_url()
            started = time.perf_counter()
            http_client.request("GET", url, headers=headers)
            answer = http_client.getresponse()
            answer.read()
            if index >= WARM_UP:
                timings.append((time.perf_counter() - started) * 1000)
            assert answer.status == 200, (url, answer.status)
        rows.append([label, repeat, f"{percentile(timings, 50):.1f}", f"{percentile(timings, 95):.1f}", queries])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reset", action="store_true", help="drop and recreate the benchmark database")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    connect(url, reset=args.reset)
    seed(args.tasks, args.executions)
    from _common import table
    from django.db import connection

    print(f"\n{connection.vendor} {connection.settings_dict['NAME']}: {args.tasks} tasks, {args.executions} executions")
    print(f"{buffer_pool()}; gunicorn, {2 * (os.cpu_count() or 1) + 1} workers, one request at a time over HTTP")
    load_before = os.getloadavg()[0]
    server = start_server(url, args.port)
    try:
        rows = measure(args.repeat, args.port)
    finally:
        server.terminate()  # the arbiter stops its workers
        server.wait(timeout=30)
    print(table(["endpoint", "n", "p50 ms", "p95 ms", "queries"], rows))
    # Other work on the machine (a test suite, say) inflates the timings: say how busy it was.
    print(f"load average before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
