"""The database's clock, as this process sees it: its own clock corrected by a measured offset.

Leases, fire times, lateness and liveness compare times written by processes on many hosts, and a
host's clock may be off by seconds (or more). The one clock they all share is the database
server's. A process that writes those times (the scheduler, a Celery worker) measures how far its
clock is from the database's (`sync`, one query) and stamps times with `db_now()`. Offsets within
the measuring noise count as none, so a process on the database's own host keeps its exact clock.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from django.utils import timezone

from scheduler_app.selectors import database_now

# A measured offset smaller than this is noise (half a round trip, SQLite's millisecond precision).
NOISE_SECONDS = 0.02
# A clock further off the database's than this means the host's time synchronisation is broken:
# the scheduler logs a warning and the admin shows the node's skew in red.
CLOCK_SKEW_WARNING_SECONDS = 2.0


class DatabaseClock:
    """`now()` is this process's clock plus the offset last measured by `sync()` (0 until then)."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._synced_at: float | None = None
        self._local_only = False
        self._lock = threading.Lock()

    @property
    def offset_seconds(self) -> float:
        """How far the database's clock is ahead of this process's (negative: behind)."""
        return self._offset

    @property
    def synced(self) -> bool:
        return self._synced_at is not None

    def now(self) -> datetime:
        offset = self._offset
        return timezone.now() + timedelta(seconds=offset) if offset else timezone.now()

    def sync(self) -> float:
        """Measure the offset now (one query) and use it from here on; returns it."""
        if self._local_only:
            return 0.0
        before = timezone.now()
        database = database_now()
        after = timezone.now()
        measured = (database - (before + (after - before) / 2)).total_seconds()
        with self._lock:
            self._offset = measured if abs(measured) >= NOISE_SECONDS else 0.0
            self._synced_at = time.monotonic()
        return self._offset

    def sync_if_older(self, seconds: float) -> None:
        """Measure again when the last measurement is older than `seconds` (or there was none)."""
        if self._synced_at is None or time.monotonic() - self._synced_at >= seconds:
            self.sync()

    def use_local_clock(self) -> None:
        """Trust this process's clock and stop measuring: for harnesses that move the clock of a whole
        process (time-machine, faketime) and want the database to be seen as moved with it."""
        with self._lock:
            self._local_only = True
            self._offset = 0.0


db_clock = DatabaseClock()


def db_now() -> datetime:
    """The current time by the database's clock (as last measured by this process)."""
    return db_clock.now()
