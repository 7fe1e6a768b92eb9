"""On PostgreSQL, schedule changes reach the scheduler by LISTEN/NOTIFY instead of the next poll.

The services' version bump sends a notification on SchedulerState.CHANGES_CHANNEL in the bump's
transaction (services/state.py), so it is delivered once the change is committed, in commit order, naming the
version it made and the tasks it concerns. This listener holds a connection of its own, LISTENs,
and hands each notification to the manager at once. Polling the version stays as the safety net:
the manager applies a notification only when it is the very next version, and anything else (a
gap, a notification lost while the listener reconnected) is left to the poll's full
reconciliation. On MariaDB and SQLite the poll is the only way.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections

from scheduler_app.models import SchedulerState

logger = logging.getLogger("scheduler_app.scheduler")

SCHEDULE_CHANNEL = SchedulerState.CHANGES_CHANNEL
RECONNECT_SECONDS = (0.5, 1, 2, 5)
WAIT_SECONDS = 1.0  # how long one wait for notifications blocks before looking at `stopping`


@dataclass(frozen=True)
class ScheduleChange:
    """One notification: the schedule version it made, and the tasks it concerns (None: any task)."""

    version: int | None
    task_ids: frozenset[int] | None


def parse_change(payload: str) -> ScheduleChange:
    """What a notification says; anything unreadable means "any task, version unknown"."""
    try:
        body = json.loads(payload)
        version, tasks = body.get("version"), body.get("tasks")
    except (ValueError, AttributeError):
        return ScheduleChange(None, None)
    if not isinstance(version, int) or isinstance(version, bool):
        version = None
    if isinstance(tasks, list) and all(isinstance(task, int) and not isinstance(task, bool) for task in tasks):
        return ScheduleChange(version, frozenset(tasks))
    return ScheduleChange(version, None)


class ScheduleListener:
    """A thread with its own database connection, LISTENing until `stopping` is set."""

    def __init__(self, *, on_change: Callable[[ScheduleChange], None], stopping: threading.Event) -> None:
        self.on_change = on_change
        self.stopping = stopping
        self.listening = threading.Event()  # set while a LISTEN is in place
        self._thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        return connections["default"].vendor == "postgresql"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="zquant-schedule-listener", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as error:  # a lost connection, a restarted server: listen again
                self.listening.clear()
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning("schedule listener: %s; listening again in %s s (polling meanwhile)", error, delay)
                self.stopping.wait(delay)

    def _listen(self) -> None:
        wrapper = connections["default"]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {SCHEDULE_CHANNEL}")
            self.listening.set()
            logger.info("listening for schedule changes on %s", SCHEDULE_CHANNEL)
            while not self.stopping.is_set():
                for notification in connection.notifies(timeout=WAIT_SECONDS):
                    self.on_change(parse_change(notification.payload))
                    if self.stopping.is_set():
                        break
        finally:
            self.listening.clear()
            connection.close()
