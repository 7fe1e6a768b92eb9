"""Fixtures of the executor tests."""

import os
import pwd
import shutil
import subprocess

import pytest

from tests.executors.helpers import fast  # noqa: F401 - a fixture

COMMAND_USER_ENV = "ZQ_TEST_COMMAND_USER"
DEFAULT_COMMAND_USER = "zq-runner"


@pytest.fixture(scope="session")
def command_user() -> pwd.struct_passwd:
    """An unprivileged user for commands: $ZQ_TEST_COMMAND_USER, else zq-runner (created if missing).

    Switching to it needs root, as in production; without root these tests are skipped.
    """
    if os.geteuid() != 0:
        pytest.skip("running commands as another user needs the tests to run as root")
    name = os.environ.get(COMMAND_USER_ENV) or DEFAULT_COMMAND_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if name != DEFAULT_COMMAND_USER or shutil.which("useradd") is None:
            pytest.skip(f"no user {name!r} for commands (set {COMMAND_USER_ENV} to an unprivileged user)")
        created = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
        )
        try:  # another test process may have created it meanwhile
            entry = pwd.getpwnam(name)
        except KeyError:
            pytest.skip(f"could not create the user {name!r}: {created.stderr.strip()}")
    if entry.pw_uid == 0:
        pytest.skip(f"{name!r} is root, not an unprivileged user")
    return entry


@pytest.fixture
def run_as(settings, command_user):
    """Commands of this test run as the unprivileged command user."""
    settings.SCHEDULER_COMMAND_USER = command_user.pw_name
    return command_user


@pytest.fixture(scope="session")
def system_python() -> str:
    """A Python the command user can execute (the project's venv usually lives under /root, mode 700)."""
    for path in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.isfile(path) and os.stat(path).st_mode & 0o001:
            return os.path.realpath(path)
    pytest.skip("no system python3 that any user may execute")
