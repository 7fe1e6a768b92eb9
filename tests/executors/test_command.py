"""Command tasks: real child processes, their process group, output, environment and control."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import tracemalloc

import pytest

from scheduler_app.executors import validate_config
from scheduler_app.executors.base import ConfigError
from scheduler_app.executors.command import OUTPUT_TAIL_BYTES, parse_command
from tests.executors.helpers import (
    Runner,
    live_group_members,
    make_execution,
    make_task,
    python_command,
    request,
    row,
    run_config,
    wait_for,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast")]

PRINT_ARGS = "import json, sys; print(json.dumps(sys.argv[1:]))"


def test_success_records_exit_code_output_and_result():
    execution = run_config({"command": python_command("print('hello from the child')")})
    assert execution.status == "success"
    assert execution.result["exit_code"] == 0
    assert execution.result["success"] is True
    assert execution.result["work_dir"]
    assert "hello from the child" in execution.output_tail
    assert execution.progress_percent == 100
    assert execution.end_time
    assert execution.duration_seconds is not None


def test_nonzero_exit_fails_with_code_and_stderr_tail():
    code = "import sys; print('to stdout'); print('boom: the reason', file=sys.stderr); sys.exit(3)"
    execution = run_config({"command": python_command(code)}, max_retries=0)
    assert execution.status == "failed"
    assert execution.result["exit_code"] == 3
    assert "exit code 3" in execution.error_message
    assert "boom: the reason" in execution.error_message
    assert "boom: the reason" in execution.result["error_summary"]
    assert "to stdout" in execution.output_tail


def test_timeout_kills_the_group_and_fails():
    code = (
        "import os, subprocess, time; subprocess.Popen(['sleep', '30']); "
        "print(os.getpgrp(), flush=True); time.sleep(30)"
    )
    started = time.monotonic()
    execution = run_config({"command": python_command(code), "timeout_seconds": 1}, max_retries=0)
    assert time.monotonic() - started < 10
    assert execution.status == "failed"
    assert "timed out after 1 s" in execution.error_message
    assert live_group_members(int(execution.output_tail.split()[0])) == []


def test_task_timeout_applies_to_commands_too():
    execution = run_config({"command": "sleep 30"}, timeout_seconds=1, max_retries=0)
    assert execution.status == "failed"
    assert "timed out" in execution.error_message


GROUP_SCRIPT = """
import json, os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stubborn child: only SIGKILL ends it
kids = [subprocess.Popen(['sleep', '60']) for _ in range(2)]
grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
print(json.dumps({"pgid": os.getpgrp(), "pids": [os.getpid(), *[k.pid for k in kids], grandchild.pid]}), flush=True)
time.sleep(60)
"""


def test_terminate_kills_the_whole_process_group():
    task = make_task({"command": python_command(GROUP_SCRIPT)})
    execution = make_execution(task)
    runner = Runner(execution.pk)
    tail = wait_for(lambda: row(execution.pk).output_tail)
    info = json.loads(tail.splitlines()[0])
    assert info["pgid"] == info["pids"][0]  # the child leads its own group
    assert len(live_group_members(info["pgid"])) == 4
    request(execution.pk, terminate_requested=True)
    final = runner.join()
    assert final.status == "terminated"
    assert final.end_time is not None
    assert live_group_members(info["pgid"]) == []
    assert not final.children.exists()  # terminated runs are never retried


def test_ten_megabytes_of_output_keep_memory_bounded_and_the_tail():
    code = (
        "import sys\n"
        "line = 'x' * 1023 + '\\n'\n"
        "for i in range(10 * 1024): sys.stdout.write(line)\n"
        "sys.stdout.write('THE END\\n')\n"
    )
    task = make_task({"command": python_command(code)})
    execution = make_execution(task)
    from scheduler_app.runtime.runner import execution_run

    tracemalloc.start()
    try:
        final = execution_run(execution_id=execution.pk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert final.status == "success"
    assert peak < 3 * 1024 * 1024, f"peak {peak} bytes while reading 10 MB"
    assert final.output_tail.endswith("THE END\n")
    assert len(final.output_tail.encode()) <= OUTPUT_TAIL_BYTES + 8


@pytest.mark.parametrize("argument", ["; rm -rf /", "$(id)", "`id`", "a && touch {marker}", "| touch {marker}"])
def test_shell_metacharacters_are_literal_arguments(tmp_path, argument):
    argument = argument.format(marker=tmp_path / "marker")
    command = f"python -c {json.dumps(PRINT_ARGS)} '{argument}' ';' '$(touch {tmp_path / 'marker2'})'"
    execution = run_config({"command": command})
    assert execution.status == "success"
    assert json.loads(execution.output_tail) == [argument, ";", f"$(touch {tmp_path / 'marker2'})"]
    assert list(tmp_path.iterdir()) == []


def test_child_gets_a_minimal_environment_without_server_secrets(monkeypatch):
    monkeypatch.setenv("ZQ_TEST_SECRET", "s3cr3t-value")
    monkeypatch.setenv("DATABASE_URL", "mysql://user:password@db/prod")
    monkeypatch.setenv("SECRET_KEY", "server-secret-key")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    execution = run_config({"command": python_command(code), "env": {"MY_SETTING": "on"}})
    assert execution.status == "success"
    env = json.loads(execution.output_tail)
    assert "ZQ_TEST_SECRET" not in env
    assert "DATABASE_URL" not in env
    assert "SECRET_KEY" not in env
    assert "s3cr3t-value" not in execution.output_tail
    assert env["ZQUANT_EXECUTION_ID"] == str(execution.pk)
    assert env["ZQUANT_PROGRESS_FD"].isdigit()
    assert env["MY_SETTING"] == "on"
    assert env["PYTHONIOENCODING"] == "utf-8"
    assert env["HOME"] != monkeypatch_home()


def monkeypatch_home() -> str:
    import os

    return os.environ.get("HOME", "")


def test_python_means_this_interpreter_and_work_dir_defaults_to_the_project(settings):
    code = "import os, sys; print(sys.executable); print(os.getcwd())"
    execution = run_config({"command": python_command(code)})
    executable, cwd = execution.output_tail.split()
    assert executable == sys.executable
    assert cwd == str(settings.BASE_DIR)


def test_work_dir_and_env_are_applied(tmp_path):
    code = "import os; print(os.getcwd()); print(os.environ['GREETING'])"
    execution = run_config({"command": python_command(code), "work_dir": str(tmp_path), "env": {"GREETING": "你好"}})
    assert execution.output_tail.split() == [str(tmp_path), "你好"]


def test_allowlist_blocks_other_programs(settings):
    settings.SCHEDULER_COMMAND_ALLOWLIST = ["python"]
    execution = run_config({"command": "sleep 0"}, max_retries=0)
    assert execution.status == "failed"
    assert "SCHEDULER_COMMAND_ALLOWLIST" in execution.error_message
    assert run_config({"command": "python -c pass"}).status == "success"


def test_allowlist_names_do_not_match_other_paths(settings, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho fake\n")
    fake.chmod(0o755)
    settings.SCHEDULER_COMMAND_ALLOWLIST = "python,/bin/true"
    with pytest.raises(ConfigError, match="ALLOWLIST"):
        parse_command({"command": str(fake)})
    assert parse_command({"command": "/bin/true"}).executable == "/bin/true"


def test_example_job_reports_progress_through_the_client():
    task = make_task({"command": "python -m scheduler_app.jobs.example_job --steps 3 --delay 0.3"})
    execution = make_execution(task)
    runner = Runner(execution.pk)
    seen = wait_for(lambda: row(execution.pk).current_item == "step_2" and row(execution.pk))
    assert 60 <= seen.progress_percent < 100
    assert seen.total_items == 3
    final = runner.join()
    assert final.status == "success"
    assert final.current_item == "step_3"
    assert final.processed_items == 3
    assert final.progress_percent == 100
    assert final.result["total_steps"] == 3
    assert final.result["message"].startswith("示例脚本执行完成")


def test_example_job_exits_130_when_terminated():
    task = make_task({"command": "python -m scheduler_app.jobs.example_job --steps 50 --delay 0.2"})
    execution = make_execution(task)
    runner = Runner(execution.pk)
    wait_for(lambda: row(execution.pk).processed_items >= 1)
    request(execution.pk, terminate_requested=True)
    final = runner.join()
    assert final.status == "terminated"
    assert "terminate requested: stopping" in final.output_tail  # it stopped cleanly on SIGTERM
    assert final.processed_items < 50


def test_pause_stops_the_group_and_does_not_count_toward_the_timeout():
    code = "import time\nfor i in range(12):\n    print(i, flush=True)\n    time.sleep(0.1)\n"
    task = make_task({"command": python_command(code), "timeout_seconds": 1.5})
    execution = make_execution(task)
    runner = Runner(execution.pk)
    wait_for(lambda: "2" in row(execution.pk).output_tail)
    request(execution.pk, is_paused=True)
    wait_for(lambda: row(execution.pk).status == "paused")

    def written_out() -> str | None:
        # What the command printed before SIGSTOP reaches the row with the monitor's next poll (0.5 s).
        before = row(execution.pk).output_tail
        time.sleep(0.6)
        return before if row(execution.pk).output_tail == before else None

    frozen = wait_for(written_out)
    time.sleep(1.0)
    assert row(execution.pk).output_tail == frozen  # SIGSTOP: no output while paused
    request(execution.pk, is_paused=False)
    final = runner.join()
    assert final.status == "success", final.error_message  # 1.2 s of work + 1 s paused < 1.5 s limit
    assert "11" in final.output_tail


def test_invalid_command_config_fails_the_run_cleanly():
    execution = run_config({"command": "unterminated 'quote"}, max_retries=0)
    assert execution.status == "failed"
    assert "cannot be parsed" in execution.error_message
    execution = run_config({"command": "no-such-program-zq --x"}, max_retries=0)
    assert execution.status == "failed"
    assert "not found" in execution.error_message


# ---------------------------------------------------------------------- what a config may ask for
# validate_config is the check the API and the admin run at save time; the run shares it (parse_command).


def test_command_tasks_are_off_unless_the_site_turns_them_on(settings):
    settings.SCHEDULER_COMMANDS_ENABLED = False
    errors = validate_config("manual_task", {"command": "python -c pass"})
    assert errors == ["Command tasks are turned off on this server (SCHEDULER_COMMANDS_ENABLED)."]
    assert validate_config("manual_task", {"task_action": "example_task"}) == []
    execution = run_config({"command": "python -c pass"}, max_retries=0)
    assert execution.status == "failed"
    assert "SCHEDULER_COMMANDS_ENABLED" in execution.error_message


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONBREAKPOINT",
        "PERL5LIB",
        "PERL5OPT",
        "RUBYOPT",
        "NODE_OPTIONS",
        "BASH_ENV",
        "ENV",
        "IFS",
        "GCONV_PATH",
        "LOCPATH",
        "HOSTALIASES",
        "MALLOC_CHECK_",
        "GLIBC_TUNABLES",
        "JAVA_TOOL_OPTIONS",
    ],
)
def test_loader_and_interpreter_variables_are_refused(name):
    errors = validate_config("common_task", {"command": "python -c pass", "env": {name: "x"}})
    assert errors == [f"env: {name} changes which code a program loads or runs, so a task may not set it."]


@pytest.mark.parametrize("name", ["PATH", "HOME", "TMPDIR", "ZQUANT_EXECUTION_ID", "ZQUANT_ANYTHING"])
def test_variables_the_scheduler_sets_are_refused(name):
    assert validate_config("manual_task", {"command": "python -c pass", "env": {name: "x"}}) == [
        f"env: {name} is set by the scheduler."
    ]


@pytest.mark.parametrize("name", ["1ST", "A-B", "A B", "", "É", "A=B", "X" * 256])
def test_env_names_must_be_posix_names(name):
    [error] = validate_config("manual_task", {"command": "python -c pass", "env": {name: "x"}})
    assert "is not a valid variable name" in error


def test_ordinary_variables_pass():
    config = {"command": "python -c pass", "env": {"REPORT_DATE": "20240628", "LANG": "zh_CN.UTF-8", "tz_name": "x"}}
    assert validate_config("manual_task", config) == []


PRELOADED = """
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void preloaded(void) {
    FILE *marker = fopen(getenv("ZQ_MARKER"), "w");
    if (marker) fclose(marker);
}
"""


def test_ld_preload_no_longer_reaches_an_allow_listed_program(settings, tmp_path):
    # The bypass that was found: an allow-listed program ran a library's constructor via LD_PRELOAD.
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the preloaded library")
    source, library, marker = tmp_path / "preloaded.c", tmp_path / "preloaded.so", tmp_path / "preloaded"
    source.write_text(PRELOADED)
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    settings.SCHEDULER_COMMAND_ALLOWLIST = "/bin/true"
    env = {"LD_PRELOAD": str(library), "ZQ_MARKER": str(marker)}
    execution = run_config({"command": "/bin/true", "env": env}, max_retries=0)
    assert execution.status == "failed"
    assert "LD_PRELOAD changes which code" in execution.error_message
    assert not marker.exists()
    subprocess.run(["/bin/true"], env=env, check=True)  # the library works: the refusal is what stopped it
    assert marker.exists()


def test_the_allowlist_is_checked_at_save_time(settings):
    settings.SCHEDULER_COMMAND_ALLOWLIST = "python"
    assert validate_config("manual_task", {"command": "python -m scheduler_app.jobs.example_job"}) == []
    assert validate_config("common_task", {"command": "sh -c 'id'"}) == [
        "The program 'sh' is not in SCHEDULER_COMMAND_ALLOWLIST."
    ]
    assert validate_config("common_task", {"command": ["/bin/sh", "-c", "id"]}) == [
        "The program '/bin/sh' is not in SCHEDULER_COMMAND_ALLOWLIST."
    ]
