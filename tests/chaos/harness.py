"""Chaos harness: a private MariaDB server, scheduler processes against it, and raw SQL to check.

Everything runs against a mariadbd started here on its own port and data folder, so the shared
server is never restarted; tasks are created through `manage.py shell` and results read with SQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import MySQLdb

ROOT = Path(__file__).resolve().parents[2]


class PrivateMariaDB:
    def __init__(self, port: int = 3417, extra_args: tuple[str, ...] = ()) -> None:
        self.port = port
        self.extra_args = extra_args
        self.folder = Path(tempfile.mkdtemp(prefix="zq-chaos-db-"))
        self.proc: subprocess.Popen | None = None
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.folder / 'data'}",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/zq_chaos"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={self.folder / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.folder / 'sock'}",
                "--user=root",
                f"--log-error={self.folder / 'error.log'}",
                "--skip-log-bin",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, 30, message="the private MariaDB")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def ping(self) -> bool:
        try:
            MySQLdb.connect(host="127.0.0.1", port=self.port, user="root").close()
        except MySQLdb.OperationalError:
            return False
        return True

    def create_database(self) -> None:
        connection = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root")
        connection.cursor().execute("DROP DATABASE IF EXISTS zq_chaos")
        connection.cursor().execute("CREATE DATABASE zq_chaos CHARACTER SET utf8mb4")
        connection.close()
        manage("migrate", "-v0", url=self.url)

    def query(self, sql: str, *params) -> list[tuple]:
        connection = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", db="zq_chaos")
        try:
            cursor = connection.cursor()
            cursor.execute("SET time_zone = '+00:00'")  # Django stores UTC; compare in UTC
            cursor.execute(sql, params or None)
            return list(cursor.fetchall())
        finally:
            connection.close()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def manage(*args: str, url: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=check,
        capture_output=True,
        text=True,
    )


def create_tasks(url: str, code: str) -> None:
    """Run Python with ScheduledTask imported, e.g. ScheduledTask.objects.create(...)."""
    manage("shell", "-c", "from scheduler_app.models import ScheduledTask\n" + code, url=url)


class Scheduler:
    def __init__(self, url: str, log: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runscheduler", "--poll-seconds", "0.1", *args],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": url, **(env or {})},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.1, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except MySQLdb.OperationalError:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
