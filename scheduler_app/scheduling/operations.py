"""The leader's operations worker: notifications, their outbox and retention, in a thread of its own.

Started by the manager in every scheduler process; it works only while its process holds the
leader lease (a standby's worker idles). Everything it does reads and writes the database on its
own connection and never waits on the scheduler's loop, nor the loop on it: a slow receiver, a
retention batch or a slow query here cannot move a fire time. Each turn (SCHEDULER_NOTIFY_POLL_SECONDS):
the notifier's detectors (scheduling/notifier.py), then due notifications handed to the sender's
own threads (ops/delivery.py), then retention batches for at most RETENTION_BUDGET_SECONDS
(a pass starts every SCHEDULER_RETENTION_INTERVAL_SECONDS, the first a minute after taking the lead).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from django.db import close_old_connections

from scheduler_app.conf import scheduler_settings
from scheduler_app.ops.delivery import DeliverySender
from scheduler_app.runtime.clock import db_now
from scheduler_app.scheduling.notifier import Notifier
from scheduler_app.scheduling.retention import RetentionPass

logger = logging.getLogger("scheduler_app.operations")

RETENTION_BUDGET_SECONDS = 0.2
FIRST_RETENTION_DELAY_SECONDS = 60.0


class OperationsWorker:
    def __init__(self, *, node_id: str, is_leader: Callable[[], bool], stopping: threading.Event) -> None:
        self.node_id = node_id
        self.is_leader = is_leader
        self.stopping = stopping
        self.sender = DeliverySender(name=node_id)
        self.notifier: Notifier | None = None
        self.thread = threading.Thread(target=self._loop, name="zq-operations", daemon=True)
        self._retention: RetentionPass | None = None
        self._next_retention = 0.0
        self._failing_since: float | None = None
        self._last_failure_log = 0.0

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Wait for the current turn (short: it never waits for a receiver), then drop the senders."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.sender.shutdown()

    def _loop(self) -> None:
        while not self.stopping.wait(scheduler_settings.NOTIFY_POLL_SECONDS):
            if not self.is_leader():
                self.notifier, self._retention = None, None  # a new lead starts afresh
                continue
            close_old_connections()
            try:
                self.turn(now=db_now())
                self._failing_since = None
            except Exception:
                # Once per minute while it lasts (a database outage would otherwise log every turn).
                if self._failing_since is None or time.monotonic() - self._last_failure_log >= 60:
                    logger.exception("operations turn failed; the next one tries again")
                    self._last_failure_log = time.monotonic()
                self._failing_since = self._failing_since or time.monotonic()
            finally:
                close_old_connections()

    def turn(self, *, now: datetime) -> None:
        if self.notifier is None:
            self.notifier = Notifier(node_id=self.node_id)
            self._next_retention = time.monotonic() + FIRST_RETENTION_DELAY_SECONDS
        self.notifier.run_pass(now=now)
        self.sender.pump(now=now)
        self._retention_steps(now=now)

    def _retention_steps(self, *, now: datetime) -> None:
        if self._retention is None:
            if time.monotonic() < self._next_retention:
                return
            self._retention = RetentionPass(now=now)
        deadline = time.monotonic() + RETENTION_BUDGET_SECONDS
        while time.monotonic() < deadline and not self.stopping.is_set():
            if self._retention.step():
                continue
            report = self._retention.report
            if report.total or report.notification_events:
                logger.info(
                    "retention: deleted %s runs of %s tasks and %s notification events",
                    report.total,
                    len(report.per_task()),
                    report.notification_events,
                )
            self._retention = None
            self._next_retention = time.monotonic() + scheduler_settings.RETENTION_INTERVAL_SECONDS
            return
