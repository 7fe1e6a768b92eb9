"""API throughput under concurrency: gunicorn (deploy/gunicorn.conf.py) against runserver, 10,000 tasks.

Seeds the database like bench/api_list.py (reused on later runs unless --reset), then for each server in
turn starts it on 127.0.0.1, lets `--clients` threads (20) each send requests one after another for
`--duration` seconds (60), cycling through the task list, the task list ordered by latest execution, the
executions list, the statistics and a task's detail, with token authentication and the API throttle off.
Prints requests per second and p50 / p95 latency in milliseconds per endpoint and server, and the load
average before and after each run (other work on the machine inflates the figures). Goal: task list p95
<= 150 ms under gunicorn.

The clients are closed-loop (each waits for its answer before asking again), so latency includes the
time a request waits for a free worker: with C clients, latency ~ C / throughput.

Usage: python bench/api_load.py [--reset] [--tasks N] [--executions N] [--clients N] [--duration S]
                                [--servers gunicorn,runserver] [--port P] [--profile N]
--profile N: instead, N task-list requests in this process (Django's test client) under cProfile, with
the SQL they ran: where one request's time goes, without the server or the other clients.
Database: BENCH_DATABASE_URL, else mysql://root@127.0.0.1:3306/zq_bench_api_load (never DATABASE_URL).
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "mysql://root@127.0.0.1:3306/zq_bench_api_load"
BASE = "/api/v1/scheduler/"
ENDPOINTS = ["task list", "task list ordered", "executions", "stats", "task detail"]


def token_key() -> str:
    """A reader's API token: the view permissions the list endpoints need, nothing more."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="scheduler_app",
            codename__in=["view_scheduledtask", "view_taskexecution", "view_schedulernode"],
        )
    )
    return Token.objects.get_or_create(user=user)[0].key


def paths(rng: random.Random, task_ids: list[int]) -> dict[str, str]:
    return {
        "task list": f"{BASE}tasks/?page_size=50",
        "task list ordered": f"{BASE}tasks/?ordering=-latest_execution_time",
        "executions": f"{BASE}executions/",
        "stats": f"{BASE}stats/",
        "task detail": f"{BASE}tasks/{rng.choice(task_ids)}/",
    }


def start(server: str, port: int, url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_THROTTLE_USER": "",  # the clients ask thousands of times: that is the point here
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "PYTHONWARNINGS": "ignore:No directory at",  # no static files are asked for
    }
    if server == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    else:
        command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    log = Path(f"/tmp/zq-bench-api_load-{server}.log")
    with log.open("w") as output:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{server} exited with {proc.returncode}: see {log}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/admin/login/")
            if connection.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"{server} did not answer within 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # gunicorn's arbiter stops its workers
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def load(port: int, key: str, task_ids: list[int], clients: int, duration: float):
    """`clients` threads asking in turn for each endpoint until `duration` is over."""
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    headers = {"Authorization": f"Token {key}"}
    go = threading.Event()
    end = [0.0]

    def client(number: int) -> None:
        rng = random.Random(number)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        turn = number  # the clients start on different endpoints
        go.wait()
        while time.monotonic() < end[0]:
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            started = time.perf_counter()
            try:
                connection.request("GET", paths(rng, task_ids)[name], headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                connection.close()
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if ok:
                    timings[name].append(elapsed)
                else:
                    errors[name] += 1

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    end[0] = began + duration
    go.set()
    for thread in threads:
        thread.join()
    return timings, errors, time.monotonic() - began


def profile(key: str, count: int) -> None:
    """Time `count` task-list requests in this process: total, in SQL, and the functions that dominate."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    path = paths(random.Random(1), [1])["task list"]
    assert client.get(path).status_code == 200  # warm: URL resolver, templates, connection
    profiler = cProfile.Profile()
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        profiler.enable()
        for _ in range(count):
            client.get(path)
        profiler.disable()
        elapsed = (time.perf_counter() - started) * 1000 / count
    sql = sum(float(query["time"]) for query in captured.captured_queries) * 1000 / count
    print(f"task list: {elapsed:.1f} ms a request, {len(captured) // count} queries taking {sql:.1f} ms")
    slowest = sorted(captured.captured_queries[: len(captured) // count], key=lambda q: -float(q["time"]))[:3]
    for query in slowest:
        print(f"  {float(query['time']) * 1000:.1f} ms  {query['sql'][:160]}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reset", action="store_true", help="drop and recreate the benchmark database")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60, help="seconds of load per server")
    parser.add_argument("--servers", default="gunicorn,runserver", help="comma-separated, run in this order")
    parser.add_argument("--port", type=int, default=18510)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile N task-list requests")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from api_list import buffer_pool, connect, seed

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    connect(url, reset=args.reset)
    seed(args.tasks, args.executions)
    from _common import percentile, table
    from django.db import connection

    from scheduler_app.models import ScheduledTask

    key = token_key()
    if args.profile:
        profile(key, args.profile)
        return
    task_ids = list(ScheduledTask.objects.values_list("pk", flat=True))
    connection.close()
    cores = len(os.sched_getaffinity(0))
    name = connection.settings_dict["NAME"]
    print(f"\n{connection.vendor} {name}: {len(task_ids)} tasks, {args.executions} executions")
    print(f"{buffer_pool()}; {args.clients} clients for {args.duration:g} s per server; {cores} CPUs")
    rows = []
    for number, server in enumerate(args.servers.split(",")):
        port = args.port + number
        proc = start(server, port, url)
        try:
            before = os.getloadavg()
            timings, errors, elapsed = load(port, key, task_ids, args.clients, args.duration)
        finally:
            stop(proc)
        after = os.getloadavg()
        total = sum(len(values) for values in timings.values())
        label = f"gunicorn ({2 * cores + 1} workers)" if server == "gunicorn" else "runserver (threaded)"
        for name in ENDPOINTS:
            values = timings[name]
            rows.append([
                label, name, len(values), errors[name], f"{len(values) / elapsed:.1f}",
                f"{percentile(values, 50):.0f}", f"{percentile(values, 95):.0f}",
            ])  # fmt: skip
        rows.append([label, "all", total, sum(errors.values()), f"{total / elapsed:.1f}", "", ""])
        averages = " / ".join(f"{a:.2f} {b:.2f} {c:.2f}" for a, b, c in (before, after))
        print(f"{server}: load average (1, 5, 15 min) before / after: {averages}")
    print(table(["server", "endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms"], rows))
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


if __name__ == "__main__":
    main()
