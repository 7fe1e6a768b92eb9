"""Ours beside django-celery-beat and django-apscheduler, each at its defaults, in one invocation.

Workloads, one after the other, each scheduler in turn on its own MariaDB database (zq_peers_*):
50 tasks on `* * * * *` for MINUTES minute boundaries, and 50 tasks every second for SECONDS s.
Lateness = the instant the task's own code begins − its planned time:
  ours              the `bench_probe` action (bench/probe) records its first instant; planned =
                    the execution's scheduled_for. `runscheduler` with nothing set.
  django-apscheduler  its README's command (a BlockingScheduler on the DjangoJobStore, default
                    thread pool) runs peerprobe.jobs.probe, which records its first instant; planned
                    = the run time APScheduler submitted it for (its DjangoJobExecution.run_time).
  celery-beat       DatabaseScheduler (`celery beat -S django`) sends peerprobe.tasks.probe to one
                    worker (`celery worker`, default prefork pool) over Redis db 15; the task records
                    its first instant. Celery has no planned time: an interval schedule counts from
                    the last send, so lateness is measured against the grid the schedule stands for
                    (the whole second for every-1-s, the whole minute for `* * * * *`).
Missed = occurrences planned in the window whose body never began. The peers run in a separate
virtualenv (PEERS_VENV, default /tmp/zq-peers-venv, created on first use); ours runs with this
interpreter. Usage: python bench/peers/run.py [--quick]   (--quick: 1 minute boundary and 15 s)
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import percentile, setup, start_scheduler, stop_scheduler, table, wait_leader  # noqa: E402

QUICK = "--quick" in sys.argv
MINUTES = 1 if QUICK else 4
SECONDS = 15 if QUICK else 60
COUNT = 50
PROBE = {"task_action": "bench_probe"}
WARM_SECONDS = 8  # after start-up, before the window opens
VENV = Path(os.environ.get("PEERS_VENV", "/tmp/zq-peers-venv"))
PEER_PACKAGES = ["django>=5.2,<6", "django-celery-beat", "celery[redis]", "django-apscheduler", "mysqlclient"]
BROKER = "redis://127.0.0.1:6379/15"
OURS_DB = "mysql://root@127.0.0.1:3306/zq_peers_ours"
PEER_DBS = {"celerybeat_site": "zq_peers_celerybeat", "apscheduler_site": "zq_peers_apscheduler"}
WORKER = ["-m", "celery", "-A", "celerybeat_site", "worker", "-l", "WARNING"]
BEAT = ["-m", "celery", "-A", "celerybeat_site", "beat", "-l", "WARNING", "-S", "django", "-s", "/tmp/zq-peers-beat"]
EXECUTED = ("Executed", "Started execution", "Error!")  # django-apscheduler runs that began


def peer_python() -> str:
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {VENV} ({', '.join(PEER_PACKAGES)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
    return str(python)


def peer(site: str, *args: str, log: str | None = None, **kwargs) -> subprocess.Popen:
    """A process of a peer project (`manage.py ...` or `-m celery ...`) in the peers' virtualenv."""
    command = [peer_python(), *(args if args[0] == "-m" else ["manage.py", *args])]
    return subprocess.Popen(
        command,
        cwd=HERE,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": f"{site}.settings", "PYTHONPATH": str(HERE)},
        stdout=open(log or os.devnull, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **kwargs,
    )


def peer_run(site: str, *args: str) -> None:
    proc = peer(site, *args, log=f"/tmp/zq-peers-{site}-setup.log")
    if proc.wait() != 0:
        raise SystemExit(f"{site}: {' '.join(args)} failed; see /tmp/zq-peers-{site}-setup.log")


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def mysql(database: str):
    import MySQLdb

    return MySQLdb.connect(host="127.0.0.1", user="root", database=database)


def fresh_database(name: str) -> None:
    import MySQLdb

    server = MySQLdb.connect(host="127.0.0.1", user="root")
    server.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    server.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    server.close()


def window(kind: str) -> tuple[float, float, int]:
    """(opens, closes, occurrences per task) from now: after the warm-up, on whole seconds/minutes."""
    now = time.time() + WARM_SECONDS
    if kind == "interval":
        opens = float(math.ceil(now))
        return opens, opens + SECONDS, SECONDS
    opens = float(math.ceil(now / 60) * 60)
    return opens, opens + (MINUTES - 1) * 60 + 30, MINUTES  # 30 s past the last boundary: its burst is done


def sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


def ours(kind: str) -> tuple[list[float], int]:
    from scheduler_app.models import ScheduledTask, TaskExecution

    TaskExecution.objects.all().delete()
    ScheduledTask.objects.all().delete()
    schedule = {"cron_expression": "* * * * *"} if kind == "cron" else {"interval_seconds": 1}
    ScheduledTask.objects.bulk_create(
        ScheduledTask(name=f"probe-{i}", config=PROBE, max_retries=0, timezone="UTC", **schedule) for i in range(COUNT)
    )
    proc = start_scheduler("--log-level", "WARNING", log="/tmp/zq-peers-ours.log")
    try:
        wait_leader(proc)
        opens, closes, per_task = window(kind)
        sleep_until(closes + 3)
    finally:
        stop_scheduler(proc)
    rows = TaskExecution.objects.filter(
        scheduled_for__gte=datetime.fromtimestamp(opens, UTC), scheduled_for__lt=datetime.fromtimestamp(closes, UTC)
    )
    late = [
        (float(result["message"]) - due.timestamp()) * 1000
        for due, status, result in rows.values_list("scheduled_for", "status", "result")
        if status == "success"
    ]
    return late, COUNT * per_task - len(late)


def apscheduler(kind: str) -> tuple[list[float], int]:
    site = "apscheduler_site"
    peer_run(site, "peers_prepare", "--kind", kind, "--count", str(COUNT))
    proc = peer(site, "runapscheduler", "--kind", kind, "--count", str(COUNT), log="/tmp/zq-peers-apscheduler.log")
    try:
        opens, closes, per_task = window(kind)
        sleep_until(closes + 3)
    finally:
        stop([proc])
    db = mysql(PEER_DBS[site])
    cursor = db.cursor()
    marks = ", ".join(["%s"] * len(EXECUTED))
    cursor.execute(
        f"SELECT job_id, run_time FROM django_apscheduler_djangojobexecution WHERE status IN ({marks})"
        " ORDER BY job_id, run_time",
        EXECUTED,
    )
    planned: dict[str, list[float]] = {}
    for job, run_time in cursor.fetchall():
        planned.setdefault(job, []).append(run_time.replace(tzinfo=UTC).timestamp())
    cursor.execute("SELECT job, began FROM peerprobe_bodystart ORDER BY job, began")
    began: dict[str, list[float]] = {}
    for job, at in cursor.fetchall():
        began.setdefault(job, []).append(at)
    db.close()
    late = []
    for job, runs in planned.items():  # max_instances=1: a job's runs begin one at a time, in order
        for due, at in zip(runs, began.get(job, []), strict=False):
            if opens <= due < closes:
                late.append((at - due) * 1000)
    return late, COUNT * per_task - len(late)


def celerybeat(kind: str) -> tuple[list[float], int]:
    import redis

    site = "celerybeat_site"
    redis.Redis.from_url(BROKER).flushdb()
    peer_run(site, "peers_prepare", "--kind", kind, "--count", str(COUNT))
    procs = [
        peer(site, *WORKER, log="/tmp/zq-peers-celery-worker.log"),
        peer(site, *BEAT, log="/tmp/zq-peers-celery-beat.log"),
    ]
    try:
        opens, closes, per_task = window(kind)
        sleep_until(closes + 3)
    finally:
        stop(procs)
    grid = 60 if kind == "cron" else 1
    db = mysql(PEER_DBS[site])
    cursor = db.cursor()
    cursor.execute("SELECT began FROM peerprobe_bodystart")
    late = []
    for (at,) in cursor.fetchall():
        due = math.floor(at / grid) * grid
        if opens <= due < closes:
            late.append((at - due) * 1000)
    db.close()
    return late, COUNT * per_task - len(late)


SCHEDULERS = [
    ("ours (runscheduler)", ours, "scheduled_for"),
    ("django-apscheduler", apscheduler, "submitted run time"),
    ("django-celery-beat", celerybeat, "grid (none of its own)"),
]


def ratio(value: float, base: float) -> str:
    return f"{value / base:.1f}×" if base > 0 else "-"


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    peer_python()
    setup(OURS_DB, probe=True)
    for site, name in PEER_DBS.items():
        fresh_database(name)
        peer_run(site, "migrate", "--verbosity", "0")
    print(f"{os.cpu_count()} CPUs; load average at the start {loadavg()}", flush=True)
    workloads = [
        ("cron", f"{COUNT} tasks on * * * * *, {MINUTES} min"),
        ("interval", f"{COUNT} tasks every 1 s, {SECONDS} s"),
    ]
    headers = ["workload", "scheduler", "runs", "missed", "p50 ms", "p99 ms", "max ms", "p50 ×ours", "p99 ×ours"]
    headers.append("planned time")
    rows = []
    leads = True
    for kind, title in workloads:
        base = None
        for name, measure, planned in SCHEDULERS:
            late, missed = measure(kind)
            p50, p99 = percentile(late, 50), percentile(late, 99)
            if base is None:
                base = (p50, p99)
            elif not (base[0] < p50 and base[1] < p99):
                leads = False
            row = [title, name, len(late), max(0, missed), f"{p50:.1f}", f"{p99:.1f}"]
            row += [f"{max(late, default=float('nan')):.1f}", ratio(p50, base[0]), ratio(p99, base[1]), planned]
            rows.append(row)
            print(table(headers, [row]).splitlines()[-1], f"(load {loadavg()})", flush=True)
    print("\nlateness = the task's own code begins − its planned time")
    print(table(headers, rows))
    print(f"\nours leads every row (lower p50 and p99): {'yes' if leads else 'no'}")
    print(f"load average at the end: {loadavg()}")
