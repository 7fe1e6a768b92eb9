"""The supervisor of command runs: nothing a run starts outlives it, also processes that left its
process group (setsid, double fork). Real processes, checked by pid and start time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings as django_settings

from tests.executors.helpers import (
    Runner,
    Tracked,
    make_execution,
    make_task,
    process_state,
    python_command,
    request,
    row,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast")]

# Starts a child that calls setsid() and a daemon that double-forks (its parent exits at once, so it
# is reparented), reports their pids, then waits; with the argument "exit" it exits right away.
ESCAPING = r"""
import json, os, sys, time
left_read, left_write = os.pipe()
setsid_child = os.fork()
if setsid_child == 0:
    os.setsid()
    os.write(left_write, b"1")  # reported only once it has left the session
    time.sleep(60)
    os._exit(0)
os.read(left_read, 1)
read_end, write_end = os.pipe()
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(write_end, str(os.getpid()).encode())
        time.sleep(60)
        os._exit(0)
    os._exit(0)
os.close(write_end)
daemon = int(os.read(read_end, 32))
os.waitpid(middle, 0)
print(json.dumps({"setsid": setsid_child, "daemon": daemon, "command": os.getpid()}), flush=True)
if sys.argv[1:] != ["exit"]:
    time.sleep(60)
"""


def escaped(tail: str) -> dict[str, int]:
    """The pids the ESCAPING command reported, checked to really be outside its session."""
    info = json.loads(tail.splitlines()[0])
    for name in ("setsid", "daemon"):
        assert os.getsid(info[name]) != os.getsid(info["command"]), f"the {name} process did not leave the session"
    return info


@pytest.fixture
def tracked():
    processes = Tracked()
    yield processes
    processes.kill_all()


def start_escaping(tracked: Tracked, *args: str, **config) -> tuple[int, Runner, dict[str, int]]:
    execution = make_execution(make_task({"command": python_command(ESCAPING, *args), **config}, max_retries=0))
    runner = Runner(execution.pk)
    info = escaped(wait_for(lambda: row(execution.pk).output_tail))
    tracked.add(info["setsid"], info["daemon"])
    return execution.pk, runner, info


def test_terminate_kills_setsid_and_double_forked_descendants(tracked):
    execution_id, runner, info = start_escaping(tracked)
    assert row(execution_id).child_pid == info["command"]  # the group the orphan check would kill
    request(execution_id, terminate_requested=True)
    final = runner.join()
    assert final.status == "terminated"
    assert tracked.alive() == []
    assert final.child_pid is None


def test_timeout_kills_setsid_and_double_forked_descendants(tracked):
    _, runner, _ = start_escaping(tracked, timeout_seconds=1)
    final = runner.join()
    assert final.status == "failed"
    assert "timed out after 1 s" in final.error_message
    assert tracked.alive() == []


def test_a_command_that_exits_leaves_nothing_behind(tracked):
    execution = make_execution(make_task({"command": python_command(ESCAPING, "exit")}))
    final = Runner(execution.pk).join()
    assert final.status == "success", final.error_message
    info = json.loads(final.output_tail)
    # They were alive when reported (the command waited for the daemon's pid); now they are gone.
    assert process_state(info["setsid"]) is None
    assert process_state(info["daemon"]) is None


def test_pause_stops_the_processes_outside_the_group_too(tracked):
    execution_id, runner, info = start_escaping(tracked)
    everyone = [info["command"], info["setsid"], info["daemon"]]
    request(execution_id, is_paused=True)
    wait_for(lambda: row(execution_id).status == "paused")
    wait_for(lambda: all(process_state(pid) == "T" for pid in everyone))
    request(execution_id, is_paused=False)
    wait_for(lambda: row(execution_id).status == "running")
    wait_for(lambda: all(process_state(pid) == "S" for pid in everyone))
    request(execution_id, terminate_requested=True)
    assert runner.join().status == "terminated"
    assert tracked.alive() == []


def test_killing_the_recorded_group_ends_the_rest_of_the_run(tracked):
    # What the orphan check does for a run whose worker died: SIGKILL to the recorded process group.
    execution_id, runner, _ = start_escaping(tracked)
    os.killpg(row(execution_id).child_pid, signal.SIGKILL)
    final = runner.join()
    assert final.status == "failed"
    assert "killed by signal SIGKILL" in final.error_message
    assert tracked.alive() == []


# A stand-in for the scheduler: starts a run's supervisor, prints what the command reported, waits.
FAKE_SCHEDULER = r"""
import os, sys, time
import django
django.setup()
from scheduler_app.executors.command import SupervisedCommand, parse_command
spec = parse_command({"command": ["python", "-c", sys.argv[1]]})
read_end, write_end = os.pipe()
command = SupervisedCommand.start(spec, env={}, identity=None, progress_fd=write_end)
command.wait_started(program="python", identity=None)
print(command.process.stdout.readline().decode(), end="", flush=True)
time.sleep(60)
"""


def test_the_run_ends_when_the_scheduler_process_dies(tracked):
    # The kernel closes a killed scheduler's end of the supervisor's stdin: the supervisor kills the run.
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zquant_site.settings",
        "SCHEDULER_COMMANDS_ENABLED": "true",
        "PYTHONPATH": str(django_settings.BASE_DIR),
    }
    scheduler = subprocess.Popen(
        [sys.executable, "-c", FAKE_SCHEDULER, ESCAPING],
        env=env,
        cwd=django_settings.BASE_DIR,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        info = escaped(scheduler.stdout.readline().decode())
        tracked.add(info["command"], info["setsid"], info["daemon"])
        scheduler.kill()
        scheduler.wait(10)
        wait_for(lambda: tracked.alive() == [], timeout=10)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
        scheduler.stdout.close()
