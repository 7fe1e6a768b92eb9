"""The child-process helper: JSON lines on the progress pipe, SIGTERM as a stop flag, no Django."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scheduler_app.client import EXIT_TERMINATED, ExecutionClient, TerminateRequested
from scheduler_app.executors.command import PROGRESS_LINE_BYTES, ProgressReader

ROOT = Path(__file__).resolve().parents[1]
MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}


def read_lines(fd: int) -> list[dict]:
    with os.fdopen(fd, "rb") as stream:
        return [json.loads(line) for line in stream.read().splitlines()]


def test_outside_the_scheduler_every_call_is_a_no_op():
    client = ExecutionClient(environ={}, install_handler=False)
    assert client.execution_id is None
    assert not client.connected
    client.progress(processed=1, total=2)
    client.result(message="x")
    client.check()
    assert not client.should_stop()


def test_progress_and_result_are_json_lines_on_the_pipe():
    read_fd, write_fd = os.pipe()
    client = ExecutionClient(
        environ={"ZQUANT_EXECUTION_ID": "42", "ZQUANT_PROGRESS_FD": str(write_fd)}, install_handler=False
    )
    assert (client.execution_id, client.connected) == (42, True)
    client.progress(processed=1, total=4, current_item="step_1", message="第一步")
    client.progress(percent=50.5)
    client.result(message="done", insert_count=3)
    client.close()
    assert read_lines(read_fd) == [
        {"processed": 1, "total": 4, "current_item": "step_1", "message": "第一步"},
        {"percent": 50.5},
        {"result": {"message": "done", "insert_count": 3}},
    ]


def test_a_closed_pipe_turns_the_client_into_a_no_op():
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    client = ExecutionClient(environ={"ZQUANT_PROGRESS_FD": str(write_fd)}, install_handler=False)
    client.progress(processed=1)  # BrokenPipeError is swallowed
    assert not client.connected


def test_check_raises_a_system_exit_with_code_130():
    client = ExecutionClient(environ={}, install_handler=False)
    client.request_stop()
    assert client.should_stop()
    with pytest.raises(TerminateRequested) as raised:
        client.sleep(5)
    assert raised.value.code == EXIT_TERMINATED
    assert not isinstance(raised.value, Exception)  # `except Exception` in a script cannot swallow it


def test_the_parent_reads_what_the_client_writes():
    read_fd, write_fd = os.pipe()
    reader = ProgressReader(read_fd)
    reader.thread.start()
    client = ExecutionClient(environ={"ZQUANT_PROGRESS_FD": str(write_fd)}, install_handler=False)
    client.progress(processed=1, total=3)
    client.send({"ignored": True})
    os.write(write_fd, b"not json\n" + b"x" * (PROGRESS_LINE_BYTES + 10) + b"\n[1, 2]\n")
    client.progress(processed=2, current_item="b")
    client.result(total=3)
    client.close()
    reader.thread.join(5)
    assert reader.take() == {"processed": 2, "total": 3, "current_item": "b"}
    assert reader.result == {"total": 3}
    assert reader.take() == {}


def test_sigterm_stops_a_script_cleanly_with_exit_code_130():
    code = (
        "from scheduler_app.client import get_client\n"
        "client = get_client()\n"
        "print('ready', flush=True)\n"
        "client.sleep(30)\n"
    )
    env = {**MINIMAL_ENV, "ZQUANT_EXECUTION_ID": "1"}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, cwd=ROOT)
    assert process.stdout.readline() == b"ready\n"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(5) == EXIT_TERMINATED
    assert time.monotonic() - started < 2


def test_the_client_and_the_example_job_do_not_need_django():
    code = (
        "import sys\n"
        "import scheduler_app.client, scheduler_app.jobs.example_job\n"
        "assert not [name for name in sys.modules if name.startswith('django')]\n"
        "sys.exit(scheduler_app.jobs.example_job.main(['--steps', '2', '--delay', '0']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=MINIMAL_ENV, capture_output=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert b"example job finished" in result.stdout


def test_the_example_job_rejects_zero_steps():
    result = subprocess.run(
        [sys.executable, "-m", "scheduler_app.jobs.example_job", "--steps", "0"],
        env=MINIMAL_ENV,
        capture_output=True,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert b"--steps must be at least 1" in result.stderr
