"""Shared benchmark plumbing: a throwaway database, Django set-up, scheduler processes, percentiles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Each benchmark gets its own database and log, so two of them never clobber each other.
BENCH_NAME = Path(sys.argv[0]).stem or "bench"
DEFAULT_DB = f"mysql://root@127.0.0.1:3306/zq_bench_{BENCH_NAME}"
SCHEDULER_LOG = f"/tmp/zq-bench-{BENCH_NAME}-scheduler.log"


def setup(database_url: str | None = None, *, probe: bool = False) -> str:
    """Point Django at a fresh benchmark database (created and migrated) and return its URL.

    With `probe`, this process and the schedulers it starts also load bench/probe, whose
    `bench_probe` action records when its own code begins (bench_settings.py; defaults otherwise).
    """
    url = database_url or os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    os.environ["DATABASE_URL"] = url
    if probe:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
        os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench"), str(ROOT), os.environ.get("PYTHONPATH", "")])
        sys.path.insert(0, str(ROOT / "bench"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zquant_site.settings")
    sys.path.insert(0, str(ROOT))
    if url.startswith("mysql"):
        import MySQLdb

        name = url.rsplit("/", 1)[1]
        server = MySQLdb.connect(host="127.0.0.1", user="root")
        server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        server.close()
    elif url.startswith(("postgres://", "postgresql://")):
        import psycopg

        base, name = url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.execute(f'CREATE DATABASE "{name}"')
    elif url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


def start_scheduler(*args: str, env: dict[str, str] | None = None, log: str = SCHEDULER_LOG):
    return subprocess.Popen(
        [sys.executable, "manage.py", "runscheduler", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_scheduler(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def wait_leader(proc: subprocess.Popen, timeout: float = 30) -> None:
    from scheduler_app.models import SchedulerNode

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if SchedulerNode.objects.filter(pid=proc.pid, is_leader=True).exists():
            return
        if proc.poll() is not None:
            raise SystemExit(f"scheduler exited with {proc.returncode}")
        time.sleep(0.05)
    raise SystemExit("scheduler did not become leader")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(headers: list[str], rows: list[list[object]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def start_workers(count: int, *, concurrency: int, pool: str = "threads") -> list[subprocess.Popen]:
    """`count` Celery workers on the scheduler's queue (the site's Celery app, CELERY_BROKER_URL from the
    environment), each with `concurrency` slots of `pool`; returns once every one answers a ping."""
    workers = []
    for index in range(count):
        command = [sys.executable, "-m", "celery", "-A", "zquant_site", "worker", "-n", f"bench{index}@%h"]
        command += ["-Q", "zquant", "--pool", pool, "--concurrency", str(concurrency), "-l", "WARNING"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
        workers.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, "LOG_LEVEL": "WARNING"},
                stdout=open(f"/tmp/zq-bench-{BENCH_NAME}-worker-{index}.log", "w"),  # noqa: SIM115 (the worker keeps it)
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    from zquant_site.celery import app

    names = {f"bench{index}@{os.uname().nodename}" for index in range(count)}
    answered: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answered = {name for reply in app.control.ping(timeout=0.5) for name in reply}
        if names <= answered:
            return workers
    stop_workers(workers)
    raise SystemExit(f"the Celery workers did not start; see /tmp/zq-bench-{BENCH_NAME}-worker-*.log ({answered})")


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
