"""What a command's processes may touch: the user they run as, the scheduler's environment and
database, and the system checks that refuse unsafe settings. Real processes, real users."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from scheduler_app.checks import check_command_sandbox
from scheduler_app.executors import supervisor
from tests.executors.helpers import run_config

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast")]

SERVER_SECRETS = {
    "SECRET_KEY": "zq-test-secret-key-4f1c",
    "DATABASE_PASSWORD": "zq-test-db-password-9a2e",
    "AWS_SECRET_ACCESS_KEY": "zq-test-aws-key-77d0",
}

# Prints what the command could read of each path given (PPID: its parent's pid): the text, or the error.
READ_PATHS = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        with open(path.replace("PPID", str(os.getppid())), "rb") as file:
            seen[path] = file.read().decode("utf-8", "replace")
    except OSError as error:
        seen[path] = type(error).__name__
print(json.dumps({"parent": os.getppid(), "seen": seen}))
"""


def read_as_command(program: str, *paths: str, **config) -> tuple[int, dict[str, str], str]:
    """(the command's parent pid, {path: text or error name}, output_tail) of a command reading `paths`."""
    execution = run_config({"command": [program, "-c", READ_PATHS, *paths], **config})
    assert execution.status == "success", execution.error_message
    report = json.loads(execution.output_tail)
    return report["parent"], report["seen"], execution.output_tail


def ids(problems) -> list[str]:
    return sorted(problem.id for problem in problems)


def test_commands_run_as_the_command_user_with_its_groups_and_own_home(run_as, system_python):
    code = (
        "import json, os; home = os.environ['HOME']; info = os.stat(home)\n"
        "print(json.dumps({'ids': [os.getuid(), os.geteuid(), os.getgid(), os.getegid()], 'groups': os.getgroups(),"
        " 'home': home, 'owner': [info.st_uid, info.st_gid], 'mode': oct(info.st_mode & 0o777),"
        " 'tmpdir': os.environ['TMPDIR'], 'cwd': os.getcwd()}))"
    )
    execution = run_config({"command": [system_python, "-c", code]})
    assert execution.status == "success", execution.error_message
    seen = json.loads(execution.output_tail)
    assert seen["ids"] == [run_as.pw_uid, run_as.pw_uid, run_as.pw_gid, run_as.pw_gid]
    assert sorted(seen["groups"]) == sorted(set(os.getgrouplist(run_as.pw_name, run_as.pw_gid)))
    assert seen["owner"] == [run_as.pw_uid, run_as.pw_gid]
    assert seen["mode"] == "0o700"
    assert seen["tmpdir"] == seen["home"]
    assert seen["cwd"] == str(django_settings.BASE_DIR)
    assert not Path(seen["home"]).exists()  # removed after the run


def test_setuid_programs_cannot_give_a_command_more_rights(run_as):
    execution = run_config({"command": ["/bin/sh", "-c", "grep NoNewPrivs /proc/self/status"]})
    assert execution.output_tail.split() == ["NoNewPrivs:", "1"]


def test_a_command_cannot_read_the_environment_of_the_scheduler_or_its_supervisor(run_as, system_python, monkeypatch):
    for name, value in SERVER_SECRETS.items():
        monkeypatch.setenv(name, value)
    scheduler = os.getpid()  # this test process runs the execution, as the scheduler would
    paths = [f"/proc/{scheduler}/environ", f"/proc/{scheduler}/mem", "/proc/PPID/environ", "/proc/PPID/mem"]
    parent, seen, tail = read_as_command(system_python, *paths)
    assert parent != scheduler  # the supervisor sits in between
    assert seen == dict.fromkeys(paths, "PermissionError")
    for value in SERVER_SECRETS.values():
        assert value not in tail


def test_the_supervisor_holds_no_secret_in_its_environment(monkeypatch):
    # Even a root command (allowed here), which may read its parent's environment, finds nothing there.
    for name, value in SERVER_SECRETS.items():
        monkeypatch.setenv(name, value)
    _, seen, tail = read_as_command("python", "/proc/PPID/environ")
    assert seen["/proc/PPID/environ"] == ""  # readable (root may), and empty: the spec came on its stdin
    for value in SERVER_SECRETS.values():
        assert value not in tail


@pytest.fixture
def private_sqlite_file():
    """The test database's files with mode 600 for the test, restored after."""
    if connection.vendor != "sqlite":
        pytest.skip("the database is not a SQLite file")
    name = connection.settings_dict["NAME"]
    files = [path for path in (name, f"{name}-wal", f"{name}-shm") if os.path.exists(path)]
    modes = {path: stat.S_IMODE(os.stat(path).st_mode) for path in files}
    try:
        yield name, files
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)


def test_a_command_cannot_read_the_sqlite_database(run_as, system_python, private_sqlite_file, settings):
    name, files = private_sqlite_file
    for path in files:
        os.chmod(path, 0o644)  # as SQLite creates it under the usual umask 022
    problems = check_command_sandbox(None)
    assert ids(problems) == ["scheduler_app.W002"]
    assert name in problems[0].msg
    for path in files:
        os.chmod(path, 0o600)
    assert check_command_sandbox(None) == []
    scheduler_fds = [f"/proc/{os.getpid()}/fd/{fd}" for fd in os.listdir(f"/proc/{os.getpid()}/fd")]
    _, seen, _ = read_as_command(system_python, *files, *scheduler_fds)
    assert seen == dict.fromkeys([*files, *scheduler_fds], "PermissionError")


def test_a_work_dir_the_command_user_cannot_enter_fails_the_run(run_as, tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    execution = run_config({"command": ["/bin/sh", "-c", "pwd"], "work_dir": str(private)}, max_retries=0)
    assert execution.status == "failed"
    assert execution.result["exit_code"] == 126
    assert f"cannot enter the work_dir {private}: Permission denied" in execution.error_message


def test_a_program_the_command_user_cannot_execute_fails_to_start(run_as):
    folder = Path(tempfile.mkdtemp(prefix="zq-test-program-"))
    try:
        folder.chmod(0o755)
        program = folder / "root-only"
        program.write_text("#!/bin/sh\necho ran\n")
        program.chmod(0o700)
        execution = run_config({"command": [str(program)]}, max_retries=0)
    finally:
        program.unlink()
        folder.rmdir()
    assert execution.status == "failed"
    assert f"could not start {str(program)!r} as {run_as.pw_name}" in execution.error_message
    assert "Permission denied" in execution.error_message


NONDUMPABLE_TARGET = """
import importlib.util, sys, time
if sys.argv[1] == "nondumpable":
    spec = importlib.util.spec_from_file_location("supervisor", sys.argv[2])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.make_process_nondumpable()
print("ready", flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize(("mode", "readable"), [("nondumpable", False), ("dumpable", True)])
def test_a_nondumpable_process_hides_its_environment_from_its_own_user(command_user, system_python, mode, readable):
    """The scheduler's protection when commands run as its own user: same uid, still no /proc access."""
    user = {"user": command_user.pw_uid, "group": command_user.pw_gid, "extra_groups": []}
    target = subprocess.Popen(
        [system_python, "-c", NONDUMPABLE_TARGET, mode, supervisor.__file__],
        env={"ZQ_TARGET_SECRET": "zq-target-secret-5b3"},
        stdout=subprocess.PIPE,
        cwd="/",
        **user,
    )
    try:
        assert target.stdout.readline() == b"ready\n"
        reader = subprocess.run(
            [system_python, "-c", READ_PATHS, f"/proc/{target.pid}/environ"], capture_output=True, cwd="/", **user
        )
        seen = json.loads(reader.stdout)["seen"][f"/proc/{target.pid}/environ"]
        assert ("zq-target-secret-5b3" in seen) is readable
        assert (seen == "PermissionError") is not readable
    finally:
        target.kill()
        target.wait()
        target.stdout.close()


def test_harden_scheduler_process_makes_the_process_nondumpable():
    code = (
        "import ctypes, django; django.setup()\n"
        "from scheduler_app.executors.sandbox import harden_scheduler_process\n"
        "assert harden_scheduler_process()\n"
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "zquant_site.settings"},
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
    assert "is not dumpable" in done.stderr


# ---------------------------------------------------------------------- settings and checks


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("the root check is about schedulers running as root")


def test_root_without_a_command_user_is_refused_by_the_check_and_the_run(as_root, settings):
    settings.SCHEDULER_ALLOW_ROOT_COMMANDS = False
    problems = check_command_sandbox(None)
    assert ids(problems) == ["scheduler_app.E005"]
    assert "SCHEDULER_COMMAND_USER" in problems[0].msg
    execution = run_config({"command": ["/bin/true"]}, max_retries=0)
    assert execution.status == "failed"
    assert "would run as root" in execution.error_message


@pytest.mark.parametrize(
    "setting",
    [
        {"SCHEDULER_ALLOW_ROOT_COMMANDS": "true"},
        {"SCHEDULER_COMMANDS_ENABLED": False},
        {"SCHEDULER_COMMAND_USER": "nobody"},
    ],
)
def test_the_root_check_is_quiet_when_allowed_irrelevant_or_solved(as_root, settings, setting):
    settings.SCHEDULER_ALLOW_ROOT_COMMANDS = False
    for name, value in setting.items():
        setattr(settings, name, value)
    assert "scheduler_app.E005" not in ids(check_command_sandbox(None))


def test_command_user_root_counts_as_root(as_root, settings):
    settings.SCHEDULER_ALLOW_ROOT_COMMANDS = False
    settings.SCHEDULER_COMMAND_USER = "root"
    assert ids(check_command_sandbox(None)) == ["scheduler_app.E005"]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"SCHEDULER_COMMAND_USER": "zq-no-such-user"}, "is not a user of this machine"),
        ({"SCHEDULER_COMMAND_USER": "nobody", "SCHEDULER_COMMAND_GROUP": "zq-no-such-group"}, "is not a group"),
        ({"SCHEDULER_COMMAND_GROUP": "nogroup"}, "without SCHEDULER_COMMAND_USER"),
    ],
)
def test_unusable_command_user_settings_are_errors(settings, setting, message):
    for name, value in setting.items():
        setattr(settings, name, value)
    problems = check_command_sandbox(None)
    assert ids(problems) == ["scheduler_app.E006"]
    assert message in problems[0].msg
    execution = run_config({"command": ["/bin/true"]}, max_retries=0)
    assert execution.status == "failed"
    assert message in execution.error_message


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("SCHEDULER_COMMANDS_ENABLED", "maybe"),
        ("SCHEDULER_ALLOW_ROOT_COMMANDS", "sometimes"),
        ("SCHEDULER_SECRETS", "not json"),
        ("SCHEDULER_SECRETS", {"bad name": "x"}),
        ("SCHEDULER_SECRETS", {"token": ""}),
    ],
)
def test_malformed_settings_are_errors(settings, setting, value):
    setattr(settings, setting, value)
    assert ids(check_command_sandbox(None)) == ["scheduler_app.E007"]
