"""On PostgreSQL, schedule changes reach the scheduler by LISTEN/NOTIFY instead of the next poll.

The services' version bump sends a notification on SCHEDULE_CHANNEL naming the changed tasks
(services/state.py); this listener holds its own connection, LISTENs, and hands each notification
to the manager at once. Polling the version stays as the safety net (a notification sent while the
listener reconnects is caught by the next poll), and on MariaDB and SQLite it is the only way.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger("scheduler_app.scheduler")

SCHEDULE_CHANNEL = "zquant_schedule"  # services.state sends on it
RECONNECT_SECONDS = (0.5, 1, 2, 5)


def notified_tasks(payload: str) -> set[int] | None:
    """The task ids a notification names, or None for "any task may have changed"."""
    try:
        tasks = json.loads(payload).get("tasks")
    except (ValueError, AttributeError):
        return None
    if isinstance(tasks, list) and all(isinstance(task, int) for task in tasks):
        return set(tasks)
    return None


class ScheduleListener:
    """One thread with its own database connection, LISTENing while `stopping` is not set."""

    def __init__(self, *, on_change: Callable[[set[int] | None], None], stopping: threading.Event) -> None:
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

    def _run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                self._listen()
                failures = 0
            except Exception as error:
                self.listening.clear()
                delay = RECONNECT_SECONDS[min(failures, len(RECONNECT_SECONDS) - 1)]
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    logger.warning("schedule listener: %s; listening again in %s s (polling meanwhile)", error, delay)
                # Whatever was sent while we were away: let the manager look at the version.
                self.on_change(None)
                self.stopping.wait(delay)

    def _listen(self) -> None:
        wrapper = connections["default"]
        connection = wrapper.get_new_connection(wrapper.get_connection_params())
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {SCHEDULE_CHANNEL}")
            self.listening.set()
            while not self.stopping.is_set():
                for notification in connection.notifies(timeout=1.0):
                    self.on_change(notified_tasks(notification.payload))
                    if self.stopping.is_set():
                        break
        finally:
            self.listening.clear()
            connection.close()
