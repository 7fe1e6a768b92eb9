"""Chaos harness: a private database server, scheduler processes against it, and raw SQL to check.

Everything runs against a server started here on its own port and data folder (mariadbd, or PostgreSQL's
own binaries when the suite runs with a postgres DATABASE_URL), so the shared server is never restarted;
tasks are created through `manage.py shell` and results read with SQL. The scenarios write their SQL
once: the few expressions that differ between the two (epoch seconds, quoting of the reserved `trigger`
column) come from the server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _driver_errors() -> tuple[type[Exception], ...]:
    """The connection errors of whichever drivers are installed: a restarting server raises them."""
    errors: list[type[Exception]] = []
    try:
        import MySQLdb

        errors.append(MySQLdb.OperationalError)
    except ImportError:
        pass
    try:
        import psycopg

        errors.append(psycopg.OperationalError)
    except ImportError:
        pass
    return tuple(errors)


DRIVER_ERRORS = _driver_errors()


class PrivateMariaDB:
    name = "MariaDB"
    trigger = "`trigger`"
    # What the server says when it closed an idle connection (wait_timeout).
    idle_disconnect_text = "gone away"

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

    @staticmethod
    def epoch(expression: str) -> str:
        return f"UNIX_TIMESTAMP({expression})"

    @staticmethod
    def from_epoch(placeholder: str = "%s") -> str:
        return f"FROM_UNIXTIME({placeholder})"

    now = "NOW(6)"

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

    def _connect(self, **kwargs):
        import MySQLdb

        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", **kwargs)

    def ping(self) -> bool:
        try:
            self._connect().close()
        except DRIVER_ERRORS:
            return False
        return True

    def create_database(self) -> None:
        connection = self._connect()
        connection.cursor().execute("DROP DATABASE IF EXISTS zq_chaos")
        connection.cursor().execute("CREATE DATABASE zq_chaos CHARACTER SET utf8mb4")
        connection.close()
        manage("migrate", "-v0", url=self.url)

    def query(self, sql: str, *params) -> list[tuple]:
        connection = self._connect(db="zq_chaos")
        try:
            cursor = connection.cursor()
            cursor.execute("SET time_zone = '+00:00'")  # Django stores UTC; compare in UTC
            cursor.execute(sql, params or None)
            return list(cursor.fetchall())
        finally:
            connection.close()

    def set_idle_timeout(self, seconds: int | None) -> None:
        """Close connections idle longer than `seconds` (None: the server's default)."""
        self.query(f"SET GLOBAL wait_timeout = {seconds or 28800}")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb, pg_ctl). PostgreSQL refuses to run as root, so as root
    the cluster belongs to the `postgres` system user and its commands run as that user."""

    name = "PostgreSQL"
    trigger = '"trigger"'
    idle_disconnect_text = "idle-session timeout"
    now = "clock_timestamp()"

    def __init__(self, port: int = 3418) -> None:
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="zq-chaos-pg-"))
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
        self._pg("initdb", "--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "-D", str(self.folder / "data"))

    def _pg(self, program: str, *args: str) -> None:
        subprocess.run([*self.run_as, self._binary(program), *args], check=True, capture_output=True)

    @staticmethod
    def _binary(program: str) -> str:
        found = shutil.which(program)
        if found:
            return found
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        return str(versions[0] / program) if versions else program

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/zq_chaos"

    @staticmethod
    def epoch(expression: str) -> str:
        return f"EXTRACT(EPOCH FROM {expression})"

    @staticmethod
    def from_epoch(placeholder: str = "%s") -> str:
        return f"to_timestamp({placeholder})"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        data, log = str(self.folder / "data"), str(self.folder / "log")
        self._pg("pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")
        wait_for(self.ping, 30, message="the private PostgreSQL")

    def stop(self) -> None:
        # Fast shutdown: open connections are cut, as when a database server really goes away.
        if (self.folder / "data" / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def _connect(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True)

    def ping(self) -> bool:
        try:
            self._connect().close()
        except DRIVER_ERRORS:
            return False
        return True

    def create_database(self) -> None:
        with self._connect() as connection:
            connection.execute("DROP DATABASE IF EXISTS zq_chaos WITH (FORCE)")
            connection.execute("CREATE DATABASE zq_chaos")
        manage("migrate", "-v0", url=self.url)

    def query(self, sql: str, *params) -> list[tuple]:
        with self._connect("zq_chaos") as connection:
            connection.execute("SET TIME ZONE 'UTC'")  # Django stores UTC; compare in UTC
            cursor = connection.execute(sql, params or None)
            return list(cursor.fetchall()) if cursor.description else []

    def set_idle_timeout(self, seconds: int | None) -> None:
        """Close sessions idle longer than `seconds` (None: never, PostgreSQL's default)."""
        with self._connect() as connection:
            if seconds:
                connection.execute(f"ALTER SYSTEM SET idle_session_timeout = '{seconds}s'")
            else:
                connection.execute("ALTER SYSTEM RESET idle_session_timeout")
            connection.execute("SELECT pg_reload_conf()")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def private_server() -> PrivateMariaDB | PrivatePostgres:
    """The server the suite runs against: PostgreSQL when DATABASE_URL names it, MariaDB otherwise."""
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return PrivatePostgres()
    return PrivateMariaDB()


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
        except DRIVER_ERRORS:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
