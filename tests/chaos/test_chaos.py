"""Chaos: real schedulers against a private database server that the tests kill, restart and starve.

Run with `scripts/test.sh -m chaos` (CI runs it on MariaDB and, with a postgres DATABASE_URL, on a
private PostgreSQL). Each scenario adds a row to the summary
table printed at the end: scenario, runs expected, runs recorded, duplicates, lost, recovery seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The harness talks to its private server through that database's driver (the `mysql` or `postgres`
# extra); without it the chaos suite cannot run, and says so instead of breaking collection of the suite.
if os.environ.get("DATABASE_URL", "").startswith("postgres"):
    pytest.importorskip("psycopg", reason="the chaos suite on PostgreSQL needs psycopg (pip install -e '.[postgres]')")
else:
    pytest.importorskip("MySQLdb", reason="the chaos suite needs the MySQL driver (pip install -e '.[mysql]')")

from tests.chaos.harness import Scheduler, create_tasks, private_server, wait_for
from tests.chaos.summary import SUMMARY

pytestmark = pytest.mark.chaos
QUICK = '{"task_action": "example_task", "steps": 1, "duration_seconds": 0}'
FAST_ENV = {
    "SCHEDULER_LEASE_SECONDS": "4",
    "SCHEDULER_ORPHAN_SECONDS": "6",
    "SCHEDULER_HEARTBEAT_SECONDS": "1",
    "SCHEDULER_SHUTDOWN_GRACE": "5",
}
# How long the two-scheduler scenario runs and how long the long database outage lasts (CI: shorter).
LONG_RUN = float(os.environ.get("CHAOS_SECONDS", "60"))
LONG_OUTAGE = int(os.environ.get("CHAOS_OUTAGE_SECONDS", "60"))


@pytest.fixture(scope="module")
def server():
    db = private_server()
    db.start()
    yield db
    db.destroy()


@pytest.fixture
def db(server):
    if not server.ping():
        server.start()
    server.create_database()
    return server


def now_db(db) -> float:
    return float(db.query(f"SELECT {db.epoch(db.now)}")[0][0])


def counts(db, since: float, until: float) -> dict[str, int]:
    rows = db.query(
        "SELECT status, COUNT(*) FROM zq_task_task_executions "
        f"WHERE scheduled_for >= {db.from_epoch()} AND scheduled_for < {db.from_epoch()} AND {db.trigger}='schedule' "
        "GROUP BY status",
        since,
        until,
    )
    return {status: int(n) for status, n in rows}


def duplicates(db) -> int:
    """Occurrences recorded (run or skipped) more than once: the unique key forbids it, the count checks it."""
    rows = db.query(
        "SELECT COUNT(*) FROM (SELECT task_id, scheduled_for FROM zq_task_task_executions "
        f"WHERE {db.trigger} = 'schedule' GROUP BY task_id, scheduled_for HAVING COUNT(*) > 1) d"
    )
    return int(rows[0][0])


def active(db) -> list[tuple]:
    return db.query(
        f"SELECT id, status, {db.trigger} FROM zq_task_task_executions WHERE status IN ('pending','running','paused')"
    )


def still_running(db) -> int:
    return int(db.query("SELECT COUNT(*) FROM zq_task_task_executions WHERE status IN ('running','paused')")[0][0])


def leader(db) -> str:
    rows = db.query("SELECT leader FROM zq_task_scheduler_state WHERE id = 1")
    return rows[0][0] if rows else ""


def one_second_tasks(db, count: int) -> None:
    create_tasks(
        db.url,
        f"for i in range({count}):\n"
        f"    ScheduledTask.objects.create(name=f'chaos-{{i}}', interval_seconds=1, max_retries=0, timezone='UTC',"
        f" config={QUICK})",
    )


def sleep_command(marker: str) -> str:
    return f"{sys.executable} -c 'import time; time.sleep(300)' {marker}"


def group_alive(marker: str) -> bool:
    return bool(subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.strip())


def test_two_schedulers_never_run_an_occurrence_twice(db, tmp_path):
    one_second_tasks(db, 20)
    first = Scheduler(db.url, tmp_path / "a.log", env=FAST_ENV)
    second = Scheduler(db.url, tmp_path / "b.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    time.sleep(3)
    begin = now_db(db)
    time.sleep(LONG_RUN)
    end = now_db(db)
    time.sleep(2)
    assert first.stop() == 0
    assert second.stop() == 0
    seen = counts(db, begin, end)
    expected = 20 * int(end - begin)
    recorded = sum(n for status, n in seen.items() if status != "skipped")
    dupes = duplicates(db)
    lost = max(0, expected - recorded)
    SUMMARY.append(["two schedulers, 20 tasks × 1 s", expected, recorded, dupes, lost, "-"])
    assert dupes == 0
    assert lost <= 20  # at most the occurrences due in the window's last partial second
    assert seen.get("failed", 0) == 0


def test_kill_9_of_the_leader_hands_over_to_the_standby(db, tmp_path):
    one_second_tasks(db, 5)
    marker = f"zq-chaos-kill9-{time.time_ns()}"
    create_tasks(
        db.url,
        f"ScheduledTask.objects.create(name='long', task_type='manual_task', max_retries=1, timezone='UTC', "
        f"config={{'command': {sleep_command(marker)!r}}})",
    )
    first = Scheduler(db.url, tmp_path / "a.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    second = Scheduler(db.url, tmp_path / "b.log", env=FAST_ENV)
    time.sleep(2)
    victim = first if leader(db).split(":")[1] == str(first.pid) else second
    survivor = second if victim is first else first
    create_tasks(
        db.url,
        "from scheduler_app.services.permissions import SYSTEM\n"
        "from scheduler_app.services.tasks import task_trigger\n"
        "task_trigger(task=ScheduledTask.objects.get(name='long'), user=SYSTEM)",
    )
    orphan_id = wait_for(
        lambda: db.query(
            "SELECT e.id FROM zq_task_task_executions e JOIN zq_task_scheduled_tasks t ON t.id = e.task_id "
            "WHERE t.name='long' AND e.status='running' AND e.child_pid IS NOT NULL"
        ),
        10,
        message="the long command to run",
    )[0][0]
    assert group_alive(marker)
    victim.kill9()
    killed_at = now_db(db)
    new_leader = wait_for(lambda: str(survivor.pid) in leader(db), 15, message="the standby to lead")
    assert new_leader
    first_fire = wait_for(
        lambda: db.query(
            f"SELECT {db.epoch('MIN(start_time)')} FROM zq_task_task_executions WHERE worker LIKE %s "
            f"AND {db.trigger}='schedule' AND start_time IS NOT NULL",
            f"%:{survivor.pid}:%",
        )[0][0],
        15,
        message="the standby to fire",
    )
    recovery = float(first_fire) - killed_at
    status, error = db.query("SELECT status, error_message FROM zq_task_task_executions WHERE id=%s", orphan_id)[0]
    wait_for(lambda: not group_alive(marker) or None, 10, message="the orphan's command to be killed")
    retried = db.query(
        f"SELECT COUNT(*) FROM zq_task_task_executions WHERE parent_id=%s AND {db.trigger}='retry'", orphan_id
    )
    assert survivor.stop() == 0
    SUMMARY.append(["kill -9 of the leader mid-run", "-", "-", duplicates(db), 0, f"{recovery:.1f}"])
    assert status == "terminated"
    assert "orphaned" in error
    assert retried[0][0] == 1
    assert recovery <= 4 + 3  # lease + a poll and a fire
    assert duplicates(db) == 0


@pytest.mark.parametrize("outage", [10, LONG_OUTAGE])
def test_database_restart(db, tmp_path, outage):
    one_second_tasks(db, 5)
    scheduler = Scheduler(db.url, tmp_path / "s.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    time.sleep(3)
    before = now_db(db)
    db.stop()
    time.sleep(outage)
    db.start()
    back = now_db(db)
    first_after = wait_for(
        lambda: db.query(
            f"SELECT {db.epoch('MIN(start_time)')} FROM zq_task_task_executions WHERE start_time >= {db.from_epoch()}",
            back,
        )[0][0],
        15,
        message="firing to resume",
    )
    time.sleep(10)
    end = now_db(db)
    assert scheduler.alive(), scheduler.output()[-3000:]
    assert scheduler.stop() == 0
    recovery = float(first_after) - back
    # After recovery every occurrence runs again: count a whole-second window after the first fire.
    window = (float(first_after) + 1, float(first_after) + 1 + int(end - float(first_after) - 2))
    after = counts(db, *window)
    expected = 5 * int(window[1] - window[0])
    recorded = sum(n for status, n in after.items() if status != "skipped")
    SUMMARY.append(
        [
            f"{db.name} down {outage} s",
            expected,
            recorded,
            duplicates(db),
            max(0, expected - recorded),
            f"{recovery:.1f}",
        ]
    )
    assert recovery <= 5
    assert still_running(db) == 0
    assert duplicates(db) == 0
    assert expected - recorded <= 5
    assert counts(db, before + 1, back).get("skipped", 0) > 0  # the outage is visible as skipped occurrences


def test_a_standby_taking_over_after_an_outage_loses_no_occurrence(db, tmp_path):
    # The leader queues the occurrences it cannot record while the database is down; it is then
    # frozen so the standby takes the lease when the database is back. The old leader's table rows
    # were held back, so the standby records every occurrence of the outage (one catch-up run per
    # task, the rest skipped): none missing, none twice.
    one_second_tasks(db, 5)
    nodes = [Scheduler(db.url, tmp_path / f"{name}.log", env=FAST_ENV) for name in ("a", "b")]
    first_pid = int(wait_for(lambda: leader(db), 20, message="a leader").split(":")[-2])
    old, standby = sorted(nodes, key=lambda node: node.pid != first_pid)
    time.sleep(3)
    before = now_db(db)
    db.stop()
    time.sleep(6)  # the leader keeps firing into its queue until its lease runs out locally
    os.kill(old.pid, signal.SIGSTOP)
    try:
        db.start()
        back = now_db(db)
        wait_for(lambda: leader(db).split(":")[-2] == str(standby.pid) or None, 20, message="the standby to lead")
    finally:
        os.kill(old.pid, signal.SIGCONT)
    wait_for(lambda: "lost the leader lease" in old.output() or None, 10, message="the old leader to step down")
    time.sleep(3)
    for node in nodes:
        assert node.stop() == 0
    outage = counts(db, int(before) + 1, int(back))
    expected = 5 * (int(back) - int(before) - 1)
    recorded = sum(outage.values())
    SUMMARY.append(
        ["standby takes over after outage (runs+skips)", expected, recorded, duplicates(db), expected - recorded, "-"]
    )
    assert duplicates(db) == 0
    assert still_running(db) == 0
    assert recorded == expected, outage
    assert outage.get("skipped", 0) >= expected - 5  # at most one catch-up run per task


def test_idle_connections_closed_by_the_server(db, tmp_path):
    db.set_idle_timeout(3)
    try:
        create_tasks(
            db.url,
            f"for i in range(3):\n"
            f"    ScheduledTask.objects.create(name=f'slow-{{i}}', interval_seconds=10, max_retries=0, timezone='UTC',"
            f" config={QUICK})",
        )
        scheduler = Scheduler(db.url, tmp_path / "s.log", env=FAST_ENV)
        wait_for(lambda: leader(db), 20, message="a leader")
        time.sleep(32)  # three runs per task, each after 10 s idle: longer than the idle timeout
        assert scheduler.stop() == 0
    finally:
        db.set_idle_timeout(None)
    statuses = db.query("SELECT status, error_message FROM zq_task_task_executions")
    failed = [error for status, error in statuses if status != "success"]
    closed = db.idle_disconnect_text
    gone_away = closed in scheduler.output() or any(closed in (error or "") for error in failed)
    SUMMARY.append(
        ["idle timeout 3 s, tasks every 10 s", 6, len(statuses) - len(failed), duplicates(db), len(failed), "-"]
    )
    assert len(statuses) >= 6
    assert failed == []
    assert not gone_away or "Traceback" not in scheduler.output()


def test_sigterm_with_five_running_commands(db, tmp_path):
    marker = f"zq-chaos-term-{time.time_ns()}"
    create_tasks(
        db.url,
        "from scheduler_app.services.tasks import task_trigger\n"
        "for i in range(5):\n"
        f"    t = ScheduledTask.objects.create(name=f'cmd-{{i}}', task_type='manual_task', max_retries=0,"
        f" timezone='UTC', config={{'command': {sleep_command(marker)!r}}})\n",
    )
    scheduler = Scheduler(db.url, tmp_path / "s.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    create_tasks(
        db.url,
        "from scheduler_app.services.permissions import SYSTEM\n"
        "from scheduler_app.services.tasks import task_trigger\n"
        "for t in ScheduledTask.objects.filter(name__startswith='cmd-'):\n"
        "    task_trigger(task=t, user=SYSTEM)",
    )
    wait_for(lambda: still_running(db) == 5, 10, message="five running commands")
    began = time.monotonic()
    code = scheduler.stop(signal.SIGTERM)
    took = time.monotonic() - began
    statuses = [row[0] for row in db.query("SELECT status FROM zq_task_task_executions")]
    SUMMARY.append(
        ["SIGTERM with 5 running commands", 5, statuses.count("terminated"), 0, still_running(db), f"{took:.1f}"]
    )
    assert code == 0
    assert took <= 5 + 12
    assert still_running(db) == 0
    assert statuses.count("terminated") == 5
    assert not group_alive(marker)


# --------------------------------------------------------------------------- lifecycle edges

FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def hang_once_command(flag: Path) -> list[str]:
    """A command whose first run hangs and whose next runs end at once."""
    code = (
        "import os, sys, time; p = sys.argv[1]; again = os.path.exists(p); "
        "open(p, 'w').close(); again or time.sleep(300)"
    )
    return [sys.executable, "-c", code, str(flag)]


def test_kill_9_of_the_leader_during_a_workflow_step_leaves_no_row_active(db, tmp_path):
    """Killed during step 2 of 3, the old code left step 3 `pending` forever (run-now of that task
    refused for good). Now no row stays active without a live owner, and the workflow's retry reuses
    step 1 and runs 2 and 3."""
    flag = tmp_path / "second-step-ran"
    create_tasks(
        db.url,
        "steps = [\n"
        f"    ScheduledTask.objects.create(name='step-1', task_type='manual_task', timezone='UTC', config={QUICK}),\n"
        f"    ScheduledTask.objects.create(name='step-2', task_type='manual_task', timezone='UTC',"
        f" config={{'command': {hang_once_command(flag)!r}}}),\n"
        f"    ScheduledTask.objects.create(name='step-3', task_type='manual_task', timezone='UTC', config={QUICK}),\n"
        "]\n"
        "config = {'workflow_type': 'serial', 'on_failure': 'stop', 'tasks': ["
        "{'task_id': s.pk, 'name': s.name, 'dependencies': [steps[i - 1].pk] if i else []} "
        "for i, s in enumerate(steps)]}\n"
        "ScheduledTask.objects.create(name='flow', task_type='workflow', cron_expression='0 0 1 1 *',"
        " timezone='UTC', max_retries=1, retry_interval=1, config=config)",
    )
    first = Scheduler(db.url, tmp_path / "a.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    second = Scheduler(db.url, tmp_path / "b.log", env=FAST_ENV)
    time.sleep(2)
    victim = first if leader(db).split(":")[1] == str(first.pid) else second
    survivor = second if victim is first else first
    create_tasks(
        db.url,
        "from scheduler_app.services.permissions import SYSTEM\n"
        "from scheduler_app.services.tasks import task_trigger\n"
        "task_trigger(task=ScheduledTask.objects.get(name='flow'), user=SYSTEM)",
    )
    wait_for(
        lambda: db.query(
            "SELECT e.id FROM zq_task_task_executions e JOIN zq_task_scheduled_tasks t ON t.id = e.task_id "
            "WHERE t.name='step-2' AND e.status='running' AND e.child_pid IS NOT NULL"
        ),
        20,
        message="step 2 to run",
    )
    victim.kill9()
    killed_at = now_db(db)
    finished = wait_for(
        lambda: db.query(
            "SELECT e.id FROM zq_task_task_executions e JOIN zq_task_scheduled_tasks t ON t.id = e.task_id "
            f"WHERE t.name='flow' AND e.{db.trigger}='retry' AND e.status='success'"
        ),
        30,
        message="the workflow's retry to succeed",
    )
    took = now_db(db) - killed_at
    left = active(db)
    runs = dict(
        db.query(
            "SELECT t.name, COUNT(*) FROM zq_task_task_executions e JOIN zq_task_scheduled_tasks t ON t.id=e.task_id "
            "WHERE e.status='success' GROUP BY t.name"
        )
    )
    assert survivor.stop() == 0
    SUMMARY.append(["kill -9 during a workflow step", "-", "-", duplicates(db), len(left), f"{took:.1f}"])
    assert finished
    assert left == []  # nothing pending, running or paused without an owner
    assert runs == {"step-1": 1, "step-2": 1, "step-3": 1, "flow": 1}  # step 1 reused, not run again


@pytest.mark.parametrize("skew", [25, -25])
def test_a_node_with_a_skewed_clock_neither_steals_the_lease_nor_fires_early_or_late(db, tmp_path, skew):
    if not Path(FAKETIME_LIBRARY).exists():
        pytest.skip("needs Debian's faketime package (libfaketime)")
    one_second_tasks(db, 5)
    healthy = Scheduler(db.url, tmp_path / "healthy.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    healthy_leader = leader(db)
    skewed_env = {
        **FAST_ENV,
        "LD_PRELOAD": FAKETIME_LIBRARY,
        "FAKETIME": f"{skew:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # only the wall clock is off, as on a host whose NTP failed
        "PYTHONPATH": str(Path(__file__).parent / "faketime_site"),
    }
    skewed = Scheduler(db.url, tmp_path / "skewed.log", env=skewed_env)
    wait_for(
        lambda: (
            db.query("SELECT clock_skew_seconds FROM zq_task_scheduler_nodes WHERE pid=%s", skewed.pid)
            and db.query("SELECT clock_skew_seconds FROM zq_task_scheduler_nodes WHERE pid=%s", skewed.pid)[0][0]
            is not None
        ),
        20,
        message="the skewed node's first beat",
    )
    leaders = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leaders.add(leader(db))
        time.sleep(0.1)
    healthy.kill9()
    killed_at = now_db(db)
    wait_for(lambda: str(skewed.pid) in leader(db), 15, message="the skewed node to take over")
    takeover_at = now_db(db)
    took_over = takeover_at - killed_at
    wait_for(
        lambda: (
            db.query("SELECT COUNT(*) FROM zq_task_task_executions WHERE worker LIKE %s", f"%:{skewed.pid}:%")[0][0]
            >= 20
        ),
        20,
        message="the skewed node to fire",
    )
    assert skewed.stop() == 0
    measured = db.query("SELECT clock_skew_seconds FROM zq_task_scheduler_nodes WHERE pid=%s", skewed.pid)[0][0]
    lateness = [
        float(late)
        for (late,) in db.query(
            # Occurrences due during the takeover itself are late by the failover, not by the clock.
            f"SELECT {db.epoch('start_time')} - {db.epoch('scheduled_for')} FROM zq_task_task_executions "
            f"WHERE worker LIKE %s AND {db.trigger}='schedule' AND start_time IS NOT NULL "
            f"AND scheduled_for > {db.from_epoch()}",
            f"%:{skewed.pid}:%",
            takeover_at,
        )
    ]
    future = db.query(
        f"SELECT COUNT(*) FROM zq_task_task_executions WHERE {db.epoch('scheduled_for')} > {db.epoch('end_time')} + 1"
    )[0][0]
    SUMMARY.append(
        [f"node with clock {skew:+d} s", "-", len(lateness), duplicates(db), 0, f"{max(lateness, default=0):.2f}"]
    )
    assert leaders == {healthy_leader}  # never stolen while the healthy leader renewed
    assert abs(measured - skew) < 1
    assert "off the database's" in skewed.output()
    assert took_over <= 4 + 1  # within the lease (4 s here) of the healthy leader's last renewal
    assert min(lateness) >= 0  # never early
    assert max(lateness) < 1.0  # nor late
    assert future == 0  # no future occurrence recorded as missed
    assert duplicates(db) == 0


def test_a_leader_frozen_longer_than_its_lease_runs_nothing_when_it_wakes(db, tmp_path):
    """Frozen (SIGSTOP) right after firing, the old leader woke up and ran runs it had claimed before
    the freeze, with start times of before the freeze. Each run prints when its body begins."""
    create_tasks(
        db.url,
        "for i in range(8):\n"
        f"    ScheduledTask.objects.create(name=f'clock-{{i}}', interval_seconds=1, max_retries=0, timezone='UTC',"
        f" config={{'command': [{sys.executable!r}, '-c', 'import time; print(time.time())']}})",
    )
    first = Scheduler(db.url, tmp_path / "a.log", env=FAST_ENV)
    wait_for(lambda: leader(db), 20, message="a leader")
    second = Scheduler(db.url, tmp_path / "b.log", env=FAST_ENV)
    time.sleep(2)
    frozen = first if leader(db).split(":")[1] == str(first.pid) else second
    other = second if frozen is first else first
    frozen_node = leader(db)
    # Freeze it right after it claims a round, as close to the claim as an outside observer can.
    seen = db.query("SELECT MAX(id) FROM zq_task_task_executions")[0][0] or 0
    wait_for(
        lambda: db.query("SELECT MAX(id) FROM zq_task_task_executions")[0][0] != seen,
        5,
        interval=0.005,
        message="a fire",
    )
    os.kill(frozen.pid, signal.SIGSTOP)
    froze_at = now_db(db)
    try:
        wait_for(lambda: str(other.pid) in leader(db), 15, message="the standby to take over")
        time.sleep(4 + 2 - (now_db(db) - froze_at))  # frozen longer than the 4 s lease
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    woke_at = now_db(db)
    wait_for(lambda: "lost the leader lease" in frozen.output() or None, 10, message="the woken node to step down")
    time.sleep(3)
    for node in (first, second):
        assert node.stop() == 0
    rows = db.query(
        f"SELECT id, worker, status, {db.epoch('start_time')}, output_tail FROM zq_task_task_executions "
        "WHERE status='success'"
    )
    began_after_wake = []
    stale_start = []
    for pk, worker, _status, start, output in rows:
        body_began = float(output.strip().splitlines()[-1])
        if worker == frozen_node and body_began >= woke_at - 0.5:
            began_after_wake.append(pk)
        if body_began - float(start) > 1.0:
            stale_start.append((pk, body_began - float(start)))
    claimed_after_wake = db.query(
        f"SELECT COUNT(*) FROM zq_task_task_executions WHERE worker=%s AND start_time >= {db.from_epoch()}",
        frozen_node,
        woke_at,
    )[0][0]
    SUMMARY.append(["leader frozen longer than its lease", "-", len(rows), duplicates(db), len(began_after_wake), "-"])
    assert began_after_wake == []  # nothing ran on the node that had lost its lease
    assert claimed_after_wake == 0
    assert stale_start == []  # start_time is when the run really began, within a second
    assert duplicates(db) == 0
    assert still_running(db) == 0
