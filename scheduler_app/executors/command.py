"""Command tasks (`config.command`): run a program as an argv list, in its own process group.

Never through a shell: the command line is split with shlex (or given as a list), so `;`, `$(...)`
and backticks reach the program as literal arguments. `python` / `python3` mean this project's
interpreter (sys.executable); other names are looked up on a fixed safe PATH, and
SCHEDULER_COMMAND_ALLOWLIST (names or absolute paths) can restrict what may run at all.

The child gets a minimal environment (never the server's: no DATABASE_URL, SECRET_KEY or any other
variable of the scheduler), a private HOME/TMPDIR removed afterwards, ZQUANT_EXECUTION_ID and
ZQUANT_PROGRESS_FD (a pipe for JSON progress lines, see scheduler_app.client), plus `env` from the
config. Terminate and timeout signal the whole process group: SIGTERM, then SIGKILL after a grace;
pause sends SIGSTOP / SIGCONT and does not count toward the timeout. stdout and stderr are read by
two threads into bounded buffers: only the last 64 KiB is kept (output_tail), whatever the volume.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _

from scheduler_app.conf import scheduler_settings
from scheduler_app.exceptions import ConfigError, ExecutionFailed, ExecutionStopped
from scheduler_app.executors.base import RunContext

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
RESERVED_ENV = ("ZQUANT_EXECUTION_ID", "ZQUANT_PROGRESS_FD")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ENV_VALUE = 32 * 1024


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
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS


def parse_command(config: dict[str, Any]) -> CommandSpec:
    """The CommandSpec of a command config; raises ConfigError listing every problem."""
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

    work_dir = Path(settings.BASE_DIR)
    raw_dir = config.get("work_dir")
    if raw_dir not in (None, ""):
        if not isinstance(raw_dir, str):
            errors.append(_("work_dir must be a directory path."))
        else:
            work_dir = Path(raw_dir) if os.path.isabs(raw_dir) else Path(settings.BASE_DIR) / raw_dir
            if not work_dir.is_dir():
                errors.append(_("work_dir %(dir)s is not an existing directory.") % {"dir": raw_dir})

    env: dict[str, str] = {}
    raw_env = config.get("env")
    if raw_env not in (None, {}):
        if not isinstance(raw_env, dict):
            errors.append(_("env must be an object of NAME: value text pairs."))
        else:
            for name, value in raw_env.items():
                if not ENV_NAME.match(str(name)):
                    errors.append(_("env: %(name)r is not a valid variable name.") % {"name": name})
                elif name in RESERVED_ENV:
                    errors.append(_("env: %(name)s is set by the scheduler.") % {"name": name})
                elif not isinstance(value, str) or len(value) > MAX_ENV_VALUE or "\x00" in value:
                    errors.append(_("env: the value of %(name)s must be text.") % {"name": name})
                else:
                    env[name] = value

    timeout: float | None = DEFAULT_TIMEOUT_SECONDS
    raw_timeout = config.get("timeout_seconds")
    if raw_timeout is not None:
        if isinstance(raw_timeout, bool) or not isinstance(raw_timeout, int | float) or raw_timeout <= 0:
            errors.append(_("timeout_seconds must be a positive number of seconds."))
        else:
            timeout = float(raw_timeout)

    executable = ""
    if argv and not errors:
        executable, problem = resolve_executable(argv[0], work_dir)
        if problem:
            errors.append(problem)
    if errors:
        raise ConfigError(errors)
    return CommandSpec(text=text, argv=tuple(argv), executable=executable, work_dir=work_dir, env=env, timeout=timeout)


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


def child_environment(spec: CommandSpec, *, execution_id: int, progress_fd: int, home: str) -> dict[str, str]:
    """The whole environment of the child: nothing is inherited from the server process."""
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


def _pump(stream: IO[bytes], buffers: tuple[TailBuffer, ...]) -> None:
    fd = stream.fileno()
    try:
        while chunk := os.read(fd, 65536):
            for buffer in buffers:
                buffer.write(chunk)
    except OSError:
        pass
    finally:
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


class ProcessGroup:
    """The child and everything it started: signalled as one group, reaped without pid reuse."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.pgid = process.pid  # start_new_session=True: the child leads its own group

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)

    def exited(self) -> bool:
        """Whether the leader exited, without reaping it: its zombie keeps the group id reserved."""
        if self.process.returncode is not None:
            return True
        if not hasattr(os, "waitid"):  # pragma: no cover - not Linux
            return self.process.poll() is not None
        try:
            return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self, grace: float) -> None:
        """SIGTERM to the group (continued if stopped), SIGKILL once the grace has passed."""
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)
        deadline = time.monotonic() + grace
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(0.05)

    def reap(self) -> int:
        """Kill whatever is left of the group, then collect the leader's exit code."""
        self.signal(signal.SIGKILL)
        return self.process.wait()


def run_command(ctx: RunContext, spec: CommandSpec) -> dict[str, Any]:
    """Run `spec` for the execution of `ctx`; returns the result or raises (see the module docstring)."""
    ctx.limit_time(spec.timeout)
    home = tempfile.mkdtemp(prefix=f"zquant-exec-{ctx.execution_id}-")
    read_fd, write_fd = os.pipe()
    env = child_environment(spec, execution_id=ctx.execution_id, progress_fd=write_fd, home=home)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [spec.executable, *spec.argv[1:]],
            cwd=spec.work_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    except OSError as error:
        os.close(read_fd)
        shutil.rmtree(home, ignore_errors=True)
        raise ExecutionFailed(f"could not start {spec.argv[0]!r}: {error}") from error
    finally:
        os.close(write_fd)
    ctx.logger.info("execution #%s: started pid %s: %s", ctx.execution_id, process.pid, spec.text)
    group = ProcessGroup(process)
    ctx.set_child_process(group.pgid)
    output = TailBuffer(OUTPUT_TAIL_BYTES)
    errors = TailBuffer(STDERR_TAIL_BYTES)
    progress = ProgressReader(read_fd)
    readers = [
        threading.Thread(target=_pump, args=(process.stdout, (output,)), name="zquant-command-out", daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, (output, errors)), name="zquant-command-err", daemon=True),
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
                current_item=_str_or_none(pending.get("current_item")),
                message=_str_or_none(pending.get("message")),
                percent=_float_or_none(pending.get("percent")),
                check=False,
                force=force,
            )
        if output.version != seen_version:
            seen_version = output.version
            ctx.set_output(output.text(), force=force)

    try:
        while not group.exited():
            report()
            ctx.check(on_pause=group.pause, on_resume=group.resume)
            time.sleep(POLL_SECONDS)
    except BaseException as stop:
        reason = stop.message if isinstance(stop, ExecutionStopped) else repr(stop)
        ctx.logger.info("execution #%s: stopping process group %s (%s)", ctx.execution_id, group.pgid, reason)
        group.stop(KILL_GRACE_SECONDS)
        raise
    finally:
        exit_code = group.reap()
        ctx.set_child_process(None)
        for reader in readers:
            reader.join(READER_JOIN_SECONDS)
            if reader.is_alive():
                ctx.logger.warning("execution #%s: output of the command still open after its exit", ctx.execution_id)
        report(force=True)
        ctx.flush()
        shutil.rmtree(home, ignore_errors=True)

    duration = round(time.monotonic() - started, 3)
    result = {
        **progress.result,
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
