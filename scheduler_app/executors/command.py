"""Command tasks (`config.command`): run a program as an argv list, under a supervisor process.

Never through a shell: the command line is split with shlex (or given as a list), so `;`, `$(...)`
and backticks reach the program as literal arguments. `python` / `python3` mean this project's
interpreter (sys.executable); other names are looked up on a fixed safe PATH. Command tasks are off
unless SCHEDULER_COMMANDS_ENABLED; SCHEDULER_COMMAND_ALLOWLIST (names or absolute paths) can restrict
what may run. Every rule of a command config lives in parse_command, which both the save-time
validation (the executor's validate_config) and the run use.

Each run has its own supervisor (supervisor.py): a child subreaper that starts the command as
SCHEDULER_COMMAND_USER (sandbox.py), pauses (SIGSTOP / SIGCONT), terminates (SIGTERM, then SIGKILL
after a grace) and finally kills everything the command started, also processes that left its process
group (setsid, double fork). Its death, or the scheduler's, ends the run's processes too.

The child gets a minimal environment (never the server's: no DATABASE_URL, SECRET_KEY or any other
variable of the scheduler), a private HOME/TMPDIR owned by the user it runs as and removed afterwards,
ZQUANT_EXECUTION_ID and ZQUANT_PROGRESS_FD (a pipe for JSON progress lines, see scheduler_app.client),
the config's `env` and the secrets it names in `env_from` (command_secrets.py), whose values are
redacted from everything kept of the run. Pause does not count toward the timeout. stdout and stderr
are read by two threads into bounded buffers: only the last 64 KiB is kept (output_tail).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _

from scheduler_app.conf import scheduler_settings
from scheduler_app.exceptions import ConfigError, ExecutionFailed, ExecutionStopped
from scheduler_app.executors.base import RunContext
from scheduler_app.executors.command_secrets import Redactor, StreamRedactor, parse_env_from, secret_values
from scheduler_app.executors.sandbox import (
    CommandIdentity,
    SandboxError,
    command_identity,
    env_name_problem,
    private_home,
)

OUTPUT_TAIL_BYTES = 64 * 1024
STDERR_TAIL_BYTES = 16 * 1024
ERROR_STDERR_CHARS = 4000
PROGRESS_LINE_BYTES = 64 * 1024
MAX_RESULT_KEYS = 100
KILL_GRACE_SECONDS = 3.0
POLL_SECONDS = 0.1
READER_JOIN_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 3600  # zquant's default; a task's own timeout_seconds may be shorter
SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
PYTHON_NAMES = ("python", "python3")
MAX_ENV_VALUE = 32 * 1024
SUPERVISOR = Path(__file__).with_name("supervisor.py")
SUPERVISOR_START_SECONDS = 30.0  # the supervisor reports the command started (or why not) within this
SUPERVISOR_ANSWER_SECONDS = 5.0  # pause and resume are answered within this
SUPERVISOR_EXIT_SECONDS = 15.0  # after a stop's grace: killing, reaping and exiting take at most this


def safe_path() -> str:
    """The child's PATH: this interpreter's bin directory, then the system directories."""
    return os.pathsep.join(dict.fromkeys([str(Path(sys.executable).parent), *SYSTEM_PATH]))


@dataclass(frozen=True)
class CommandSpec:
    """A checked command: what runs, where, with which extra environment and time limit."""

    text: str
    argv: tuple[str, ...]
    executable: str
    work_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    env_from: dict[str, str] = field(default_factory=dict)  # variable name -> secret name
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS


def parse_command(config: dict[str, Any]) -> CommandSpec:
    """The CommandSpec of a command config; raises ConfigError listing every problem."""
    if not scheduler_settings.COMMANDS_ENABLED:
        raise ConfigError(_("Command tasks are turned off on this server (SCHEDULER_COMMANDS_ENABLED)."))
    errors: list[str] = []
    raw = config.get("command")
    argv: list[str] = []
    if isinstance(raw, str):
        try:
            argv = shlex.split(raw)
        except ValueError as error:
            errors.append(_("The command cannot be parsed: %(error)s.") % {"error": error})
        text = raw
    elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        argv = list(raw)
        text = shlex.join(argv)
    else:
        errors.append(_("command must be a command line (text) or a list of arguments."))
        text = ""
    if not errors and not argv:
        errors.append(_("The command is empty."))

    base_dir = Path(scheduler_settings.COMMAND_WORK_DIR)
    work_dir = base_dir
    raw_dir = config.get("work_dir")
    if raw_dir not in (None, ""):
        if not isinstance(raw_dir, str):
            errors.append(_("work_dir must be a directory path."))
        else:
            work_dir = Path(raw_dir) if os.path.isabs(raw_dir) else base_dir / raw_dir
            if not work_dir.is_dir():
                errors.append(_("work_dir %(dir)s is not an existing directory.") % {"dir": raw_dir})

    env: dict[str, str] = {}
    raw_env = config.get("env")
    if raw_env not in (None, {}):
        if not isinstance(raw_env, dict):
            errors.append(_("env must be an object of NAME: value text pairs."))
        else:
            for name, value in raw_env.items():
                problem = env_name_problem(name)
                if problem:
                    errors.append(_("env: %(problem)s") % {"problem": problem})
                elif not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value:
                    errors.append(_("env: the value of %(name)s must be text.") % {"name": name})
                else:
                    env[name] = value

    env_from, problems = parse_env_from(config.get("env_from"))
    errors.extend(problems)
    for name in sorted(env.keys() & env_from.keys()):
        errors.append(_("%(name)s is set in both env and env_from.") % {"name": name})

    timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    raw_timeout = config.get("timeout_seconds")
    if raw_timeout is not None:
        if isinstance(raw_timeout, bool) or not isinstance(raw_timeout, int | float) or raw_timeout <= 0:
            errors.append(_("timeout_seconds must be a positive number of seconds."))
        else:
            timeout = float(raw_timeout)

    executable = ""
    if argv:
        executable, problem = resolve_executable(argv[0], work_dir)
        if problem:
            errors.append(problem)
    if errors:
        raise ConfigError(errors)
    return CommandSpec(
        text=text,
        argv=tuple(argv),
        executable=executable,
        work_dir=work_dir,
        env=env,
        env_from=env_from,
        timeout=timeout,
    )


def resolve_executable(token: str, work_dir: Path) -> tuple[str, str | None]:
    """(absolute path, problem): python means sys.executable; names use the safe PATH; allow-list."""
    if token in PYTHON_NAMES:
        path = sys.executable
    elif "/" in token:
        candidate = Path(token) if os.path.isabs(token) else work_dir / token
        path = str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else ""
    else:
        path = shutil.which(token, path=safe_path()) or ""
    if not path:
        return "", _("The program %(name)r was not found or is not executable.") % {"name": token}
    allowlist = scheduler_settings.COMMAND_ALLOWLIST
    if allowlist is not None and not _allowed(token, path, allowlist):
        return "", _("The program %(name)r is not in SCHEDULER_COMMAND_ALLOWLIST.") % {"name": token}
    return path, None


def _allowed(token: str, path: str, allowlist: list[str]) -> bool:
    # A bare name in the list allows that bare name (resolved on the safe PATH); an absolute path
    # allows exactly that file. "/tmp/x/python" never matches the entry "python".
    real = os.path.realpath(path)
    for entry in allowlist:
        if os.path.isabs(entry):
            if os.path.normpath(entry) in (os.path.normpath(path), real):
                return True
        elif "/" not in token and entry == token:
            return True
    return False


def validate_command_config(config: dict[str, Any]) -> list[str]:
    try:
        parse_command(config)
    except ConfigError as error:
        return error.errors
    return []


def child_environment(
    spec: CommandSpec, *, execution_id: int, progress_fd: int, home: str, secrets: dict[str, str]
) -> dict[str, str]:
    """The whole environment of the child: nothing is inherited from the server process.

    `secrets` maps secret names to their values (those of `spec.env_from`)."""
    env = {
        "PATH": safe_path(),
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": str(getattr(settings, "TIME_ZONE", "UTC") or "UTC"),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONUTF8": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(spec.env)
    env.update({name: secrets[secret] for name, secret in spec.env_from.items()})
    env["ZQUANT_EXECUTION_ID"] = str(execution_id)
    env["ZQUANT_PROGRESS_FD"] = str(progress_fd)
    return env


class TailBuffer:
    """The last `limit` bytes written to it; memory stays bounded whatever the volume."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data = bytearray()
        self._lock = threading.Lock()
        self.total = 0
        self.version = 0

    def write(self, chunk: bytes) -> None:
        with self._lock:
            self._data += chunk
            if len(self._data) > self.limit:
                del self._data[: len(self._data) - self.limit]
            self.total += len(chunk)
            self.version += 1

    def __len__(self) -> int:
        return len(self._data)

    def text(self) -> str:
        with self._lock:
            data = bytes(self._data)
            truncated = self.total > len(data)
        text = data.decode("utf-8", errors="replace")
        return ("…" + text.lstrip("\ufffd")) if truncated else text


def _pump(stream: IO[bytes], buffers: tuple[TailBuffer, ...], redactor: StreamRedactor) -> None:
    fd = stream.fileno()

    def keep(data: bytes) -> None:
        if data:
            for buffer in buffers:
                buffer.write(data)

    try:
        while chunk := os.read(fd, 65536):
            keep(redactor.feed(chunk))
    except OSError:
        pass
    finally:
        keep(redactor.flush())
        with contextlib.suppress(OSError):
            stream.close()


class ProgressReader:
    """Reads the child's JSON progress lines (see scheduler_app.client) from the pipe."""

    PROGRESS_KEYS = ("processed", "total", "current_item", "message", "percent")

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self.result: dict[str, Any] = {}
        self.lines = 0
        self.thread = threading.Thread(target=self._run, name="zquant-command-progress", daemon=True)

    def _run(self) -> None:
        reader = _LineReader(self._file)
        try:
            for line in reader:
                self._handle(line)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                self._file.close()

    def _handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        with self._lock:
            self.lines += 1
            for key in self.PROGRESS_KEYS:
                if key in message:
                    self._pending[key] = message[key]
            if isinstance(message.get("result"), dict):
                for key, value in message["result"].items():
                    if key in self.result or len(self.result) < MAX_RESULT_KEYS:  # bounded, whatever it sends
                        self.result[str(key)] = value

    def take(self) -> dict[str, Any]:
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending


class _LineReader:
    """Lines of at most PROGRESS_LINE_BYTES from an unbuffered binary file; longer lines are dropped."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file

    def __iter__(self):
        buffer = b""
        dropping = False
        while chunk := self.file.read(65536):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if not dropping and line.strip():
                    yield line
                dropping = False
            if len(buffer) > PROGRESS_LINE_BYTES:
                buffer, dropping = b"", True


class SupervisedCommand:
    """The scheduler's side of one run's supervisor (supervisor.py): start, pause, stop, wait.

    Requests go to the supervisor's stdin as JSON lines; its events (started, paused, resumed,
    exit, error) come back on a pipe of their own. The supervisor's stdout and stderr are the
    command's. Closing its stdin, or this process dying, makes it kill whatever is left and exit.
    """

    def __init__(self, process: subprocess.Popen, events_fd: int) -> None:
        self.process = process
        self.pid: int | None = None  # the command's pid, which is also its process group
        self.exit_code: int | None = None
        self.start_error: str | None = None
        self.left: list[int] = []
        self.ended = False  # the supervisor reported the exit, or is gone
        self._answers: dict[str, int] = {"paused": 0, "resumed": 0}
        self._changed = threading.Condition()
        self._events = os.fdopen(events_fd, "rb")
        self._thread = threading.Thread(target=self._read_events, name="zquant-command-events", daemon=True)
        self._thread.start()

    @classmethod
    def start(
        cls,
        spec: CommandSpec,
        *,
        env: dict[str, str],
        identity: CommandIdentity | None,
        progress_fd: int,
        before_launch: Callable[[], None] | None = None,
    ) -> SupervisedCommand:
        """Start the supervisor and hand it the launch spec (on its stdin, never in argv or environ).

        `before_launch` is called between the two, the last moment before the command can begin;
        when it raises, the supervisor exits without starting anything and the error propagates.
        """
        events_read, events_write = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(SUPERVISOR), str(events_write)],
                env={},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(events_write, progress_fd),
                start_new_session=True,
            )
        except OSError:
            os.close(events_read)
            raise
        finally:
            os.close(events_write)
        command = cls(process, events_read)
        if before_launch is not None:
            try:
                before_launch()
            except BaseException:
                command.close()  # the end of its stdin before any spec: it exits, nothing started
                raise
        command._send(
            {
                "argv": [spec.executable, *spec.argv[1:]],
                "executable": spec.executable,
                "work_dir": str(spec.work_dir),
                "env": env,
                "pass_fds": [progress_fd],
                "user": identity.uid if identity else None,
                "group": identity.gid if identity else None,
                "groups": list(identity.groups) if identity else None,
            }
        )
        return command

    def _send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        with contextlib.suppress(OSError, ValueError):  # the supervisor is gone: its exit tells why
            stdin.write(json.dumps(message).encode() + b"\n")
            stdin.flush()

    def _read_events(self) -> None:
        try:
            for line in self._events:
                with contextlib.suppress(ValueError):
                    self._on_event(json.loads(line))
        except OSError:
            pass
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()
            with contextlib.suppress(OSError):
                self._events.close()

    def _on_event(self, event: dict[str, Any]) -> None:
        with self._changed:
            kind = event.get("event")
            if kind == "started":
                self.pid = int(event["pid"])
            elif kind == "error":
                self.start_error = str(event.get("message"))
            elif kind in self._answers:
                self._answers[kind] += 1
            elif kind == "exit":
                self.exit_code = event.get("code")
                self.left = list(event.get("left") or [])
                self.ended = True
            self._changed.notify_all()

    def _wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(predicate, timeout)

    def wait_started(self, *, program: str, identity: CommandIdentity | None) -> int:
        """The command's pid once it runs; raises ExecutionFailed when it could not be started."""
        self._wait(lambda: self.pid is not None or self.start_error is not None or self.ended, SUPERVISOR_START_SECONDS)
        if self.pid is not None:
            return self.pid
        who = f" as {identity.name}" if identity else ""
        if self.start_error is not None:
            raise ExecutionFailed(f"could not start {program!r}{who}: {self.start_error}")
        raise ExecutionFailed(f"could not start {program!r}{who}: its supervisor did not start it")

    def wait_ended(self, timeout: float) -> bool:
        return self._wait(lambda: self.ended, timeout)

    def pause(self) -> None:
        """Stop the command's group at once, then everything else of the run (the supervisor's answer)."""
        if self.pid is not None:  # its group id stays reserved until the supervisor is done
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGSTOP)
        self._ask("pause", "paused")

    def resume(self) -> None:
        self._ask("resume", "resumed")

    def _ask(self, action: str, answer: str) -> None:
        with self._changed:
            seen = self._answers[answer]
        self._send({"action": action})
        self._wait(lambda: self._answers[answer] > seen or self.ended, SUPERVISOR_ANSWER_SECONDS)

    def stop(self, grace: float) -> None:
        """SIGTERM to everything of the run; SIGKILL to what is left once `grace` has passed."""
        self._send({"action": "stop", "grace": grace})
        self.wait_ended(grace + SUPERVISOR_EXIT_SECONDS)

    def close(self) -> int | None:
        """Make sure nothing of the run is left and the supervisor has exited; the command's exit code."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()  # the end of its requests: kill whatever is left
        try:
            self.process.wait(SUPERVISOR_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._thread.join(READER_JOIN_SECONDS)
        return self.exit_code


def run_command(ctx: RunContext, spec: CommandSpec) -> dict[str, Any]:
    """Run `spec` for the execution of `ctx`; returns the result or raises (see the module docstring)."""
    ctx.limit_time(spec.timeout)
    try:
        identity = command_identity()
    except SandboxError as error:
        raise ExecutionFailed(error.message) from None
    secrets = secret_values(spec.env_from)
    redactor = Redactor(secrets)
    home = private_home(ctx.execution_id, identity)
    read_fd, write_fd = os.pipe()
    env = child_environment(spec, execution_id=ctx.execution_id, progress_fd=write_fd, home=home, secrets=secrets)
    started = time.monotonic()
    try:
        command = SupervisedCommand.start(
            spec, env=env, identity=identity, progress_fd=write_fd, before_launch=ctx.confirm_start
        )
    except (OSError, ExecutionStopped) as error:
        os.close(read_fd)
        shutil.rmtree(home, ignore_errors=True)
        if isinstance(error, OSError):
            raise ExecutionFailed(f"could not start {spec.argv[0]!r}: {error}") from error
        raise
    finally:
        os.close(write_fd)
    output = TailBuffer(OUTPUT_TAIL_BYTES)
    errors = TailBuffer(STDERR_TAIL_BYTES)
    progress = ProgressReader(read_fd)
    streams = ((command.process.stdout, (output,)), (command.process.stderr, (output, errors)))
    readers = [
        *(
            threading.Thread(
                target=_pump, args=(stream, kept, redactor.stream()), name="zquant-command-output", daemon=True
            )
            for stream, kept in streams
        ),
        progress.thread,
    ]
    for reader in readers:
        reader.start()
    seen_version = -1

    def report(*, force: bool = False) -> None:
        nonlocal seen_version
        pending = progress.take()
        if pending:
            ctx.progress(
                processed=_int_or_none(pending.get("processed")),
                total=_int_or_none(pending.get("total")),
                current_item=redactor.text(_str_or_none(pending.get("current_item"))),
                message=redactor.text(_str_or_none(pending.get("message"))),
                percent=_float_or_none(pending.get("percent")),
                check=False,
                force=force,
            )
        if output.version != seen_version:
            seen_version = output.version
            ctx.set_output(output.text(), force=force)

    try:
        pid = command.wait_started(program=spec.argv[0], identity=identity)
        ctx.logger.info(
            "execution #%s: started pid %s%s: %s",
            ctx.execution_id,
            pid,
            f" as {identity.name}" if identity else "",
            spec.text,
        )
        ctx.set_child_process(pid)  # it leads its own process group
        while not command.ended:
            report()
            ctx.check(on_pause=command.pause, on_resume=command.resume)
            command.wait_ended(POLL_SECONDS)
    except BaseException as stop:
        if command.pid is not None:
            reason = stop.message if isinstance(stop, ExecutionStopped) else repr(stop)
            ctx.logger.info("execution #%s: stopping pid %s and all it started (%s)", ctx.execution_id, pid, reason)
            command.stop(KILL_GRACE_SECONDS)
        raise
    finally:
        exit_code = command.close()
        if command.pid is not None:
            ctx.set_child_process(None)
        if command.left:
            ctx.logger.warning("execution #%s: processes %s would not die", ctx.execution_id, command.left)
        for reader in readers:
            reader.join(READER_JOIN_SECONDS)
            if reader.is_alive():
                ctx.logger.warning("execution #%s: output of the command still open after its exit", ctx.execution_id)
        report(force=True)
        ctx.flush()
        shutil.rmtree(home, ignore_errors=True)

    if exit_code is None:
        raise ExecutionFailed(
            f"the supervisor of the command ended without its exit code (exit status {command.process.returncode})"
        )
    duration = round(time.monotonic() - started, 3)
    result = {
        **redactor.value(progress.result),
        "success": exit_code == 0,
        "exit_code": exit_code,
        "command": spec.text,
        "work_dir": str(spec.work_dir),
        "duration_seconds": duration,
    }
    if exit_code == 0:
        result.setdefault("message", _("Command finished (exit code 0)."))
        return result
    stderr = errors.text()
    result["stderr"] = stderr
    if exit_code < 0:
        reason = f"command killed by signal {signal.Signals(-exit_code).name}"
    else:
        reason = f"command failed with exit code {exit_code}"
    tail = stderr.strip()
    if len(tail) > ERROR_STDERR_CHARS:
        tail = "…" + tail[-ERROR_STDERR_CHARS:]
    result["message"] = reason
    raise ExecutionFailed(reason + (f"\nstderr:\n{tail}" if tail else ""), result=result)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
