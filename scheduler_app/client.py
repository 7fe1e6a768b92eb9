"""Helper for programs run by command tasks: report progress, see terminate requests. Stdlib only.

The child of a command task has a minimal environment with no database credentials, so it talks
to the scheduler through what the parent gives it, not through the database:

- ``ZQUANT_EXECUTION_ID``: the id of the TaskExecution this process belongs to (informational).
- ``ZQUANT_PROGRESS_FD``: a pipe (file descriptor number) the child writes JSON lines to, one object
  per line, UTF-8. Keys: ``processed``, ``total`` (ints), ``current_item``, ``message`` (text),
  ``percent`` (0-100) update the run's progress; ``result`` (an object) is merged into the final
  result of the run (whitelisted keys survive, e.g. message, total, success_count, insert_count).
  Unknown keys are ignored; lines longer than 64 KiB are dropped. Writing is optional.
- Terminate: the parent sends SIGTERM to the child's whole process group (the child leads its own
  group), then SIGKILL after a grace of a few seconds. This helper turns SIGTERM into a flag:
  ``should_stop()`` becomes true and ``check()`` raises TerminateRequested, a SystemExit with code 130,
  so an uncaught request ends the script cleanly with exit code 130.
- Pause: the parent sends SIGSTOP / SIGCONT to the group; nothing to do in the child.
- Exit code 0 means success; any other code fails the run, with the tail of stderr in its error.

Usage::

    from scheduler_app.client import get_client

    client = get_client()
    for index, item in enumerate(items, 1):
        client.check()                       # exits with 130 when a terminate was requested
        work(item)
        client.progress(processed=index, total=len(items), current_item=str(item))
    client.result(message="done", total=len(items))

Outside the scheduler (no ZQUANT_* variables) every call is a harmless no-op, so the same script
also runs by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from typing import Any, TextIO

EXIT_TERMINATED = 130


class TerminateRequested(SystemExit):
    """The scheduler asked this process to stop; uncaught, it exits with code 130."""

    def __init__(self) -> None:
        super().__init__(EXIT_TERMINATED)


class ExecutionClient:
    """The child's side of the protocol described in the module docstring."""

    def __init__(self, *, environ: dict[str, str] | None = None, install_handler: bool = True) -> None:
        env = os.environ if environ is None else environ
        self.execution_id = _int(env.get("ZQUANT_EXECUTION_ID"))
        self._lock = threading.Lock()
        self._stop_requested = False
        self._stream: TextIO | None = None
        fd = _int(env.get("ZQUANT_PROGRESS_FD"))
        if fd is not None:
            try:
                self._stream = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
            except OSError:
                self._stream = None
        if install_handler and self.execution_id is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_terminate)

    @property
    def connected(self) -> bool:
        """Whether progress reaches a scheduler (False when the script runs by hand)."""
        return self._stream is not None

    def _on_terminate(self, signum: int, frame: Any) -> None:
        # Only set a flag: a signal handler must not take locks the interrupted code may hold.
        self._stop_requested = True

    def request_stop(self) -> None:
        """Act as if a terminate request had arrived (tests, or a script's own shutdown)."""
        self._stop_requested = True

    def should_stop(self) -> bool:
        return self._stop_requested

    def check(self) -> None:
        """Raise TerminateRequested (exit code 130) when the scheduler asked this process to stop."""
        if self._stop_requested:
            raise TerminateRequested()

    def sleep(self, seconds: float, *, step: float = 0.1) -> None:
        """Sleep, waking at least every `step` seconds to `check()`."""
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            self.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(step, remaining))

    def progress(
        self,
        processed: int | None = None,
        total: int | None = None,
        current_item: str | None = None,
        message: str | None = None,
        percent: float | None = None,
    ) -> None:
        """Report progress (the parent computes the percent from processed/total when not given)."""
        values = {
            "processed": processed,
            "total": total,
            "current_item": current_item,
            "message": message,
            "percent": percent,
        }
        self.send({key: value for key, value in values.items() if value is not None})

    def result(self, **fields: Any) -> None:
        """Fields merged into the run's final result (e.g. message, total, insert_count)."""
        self.send({"result": fields})

    def send(self, message: dict[str, Any]) -> None:
        """Write one protocol line; a closed pipe turns the client into a no-op."""
        if self._stream is None or not message:
            return
        line = json.dumps(message, ensure_ascii=False, default=str)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                self._stream = None

    def close(self) -> None:
        with self._lock:
            if self._stream is not None:
                with contextlib.suppress(OSError):
                    self._stream.close()
                self._stream = None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


_client: ExecutionClient | None = None


def get_client() -> ExecutionClient:
    """The process-wide client (created on first use, which installs the SIGTERM handler)."""
    global _client
    if _client is None:
        _client = ExecutionClient()
    return _client


def progress(**values: Any) -> None:
    get_client().progress(**values)


def check() -> None:
    get_client().check()


def should_stop() -> bool:
    return get_client().should_stop()
