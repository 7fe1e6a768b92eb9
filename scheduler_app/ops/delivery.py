"""Sending the outbox: pending deliveries go out from a bounded pool of threads of their own.

The caller (the leader's operations worker, or `check_scheduler`) only claims rows and hands them
to the pool; it never waits for a receiver. At most SCHEDULER_NOTIFY_WORKERS sends are in flight
and no more rows are claimed than there are free threads, so a receiver that hangs holds one
thread for at most SCHEDULER_NOTIFY_TIMEOUT_SECONDS per try and nothing else waits for it: the
scheduler's loop, its firing and its runs have threads of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from django.db import close_old_connections

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import NotificationEvent, NotificationSubscription
from scheduler_app.ops import channels, events
from scheduler_app.runtime.clock import db_now

logger = logging.getLogger("scheduler_app.notifications")

Channel = NotificationSubscription.Channel


def event_payload(event: NotificationEvent, *, delivery_id: int) -> dict[str, Any]:
    """The webhook's JSON body (and the email's facts)."""
    task = event.task
    return {
        "delivery_id": delivery_id,
        "event": {
            "id": event.pk,
            "kind": event.kind,
            "summary": event.summary,
            "detected_at": event.detected_at.isoformat(),
            "count": event.count,
            "execution_id": event.execution_id,
            "details": event.details,
        },
        "task": {"id": task.pk, "name": task.name} if task is not None else None,
    }


def email_body(event: NotificationEvent) -> str:
    lines = [event.summary, "", f"event: {event.get_kind_display()} (#{event.pk})"]
    lines.append(f"detected at: {event.detected_at.isoformat()}")
    if event.task is not None:
        lines.append(f"task: {event.task.name} (#{event.task.pk})")
    if event.execution_id:
        lines.append(f"execution: #{event.execution_id}")
    lines += [f"{key}: {value}" for key, value in (event.details or {}).items()]
    return "\n".join(lines) + "\n"


def delivery_send(*, delivery_id: int) -> str:
    """Make one try of a claimed (sending) delivery and record it; returns its new state."""
    delivery = selectors.delivery_with_event(delivery_id=delivery_id)
    event, subscription = delivery.event, delivery.subscription
    began = time.monotonic()
    if subscription is None:
        result = channels.SendResult(False, "the subscription was deleted")
    elif delivery.channel == Channel.WEBHOOK:
        result = channels.webhook_send(
            url=subscription.webhook_url,
            secret=subscription.secret,
            payload=event_payload(event, delivery_id=delivery.pk),
            kind=event.kind,
            delivery_id=delivery.pk,
        )
    else:
        result = channels.email_send(
            recipients=subscription.recipients(), subject=f"[zquant] {event.summary}", body=email_body(event)
        )
    seconds = round(time.monotonic() - began, 3)
    if subscription is None:
        # Nothing left to try it with: fail it now rather than retry.
        delivery.attempts = scheduler_settings.NOTIFY_MAX_ATTEMPTS
    state = events.delivery_attempt_record(
        delivery=delivery,
        ok=result.ok,
        detail=result.detail,
        http_status=result.http_status,
        seconds=seconds,
        now=db_now(),
    )
    level = logging.INFO if result.ok else logging.WARNING
    logger.log(
        level,
        "notification #%s %s to %s: %s (%s s) → %s",
        delivery.pk,
        event.kind,
        delivery.target,
        result.detail,
        seconds,
        state,
    )
    return state


class DeliverySender:
    """A bounded pool that sends claimed deliveries; `pump` never blocks on a receiver."""

    def __init__(self, *, name: str, workers: int | None = None) -> None:
        self.name = name
        self.workers = workers or scheduler_settings.NOTIFY_WORKERS
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="zq-notify")
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def pump(self, *, now: datetime, kinds: list[str] | None = None) -> int:
        """Claim due deliveries for the free threads and start sending them; returns how many."""
        timeout = scheduler_settings.NOTIFY_TIMEOUT_SECONDS
        events.deliveries_reclaim(older_than=now - timedelta(seconds=timeout * 4 + 60))
        free = self.workers - self._in_flight
        if free <= 0:
            return 0
        due = selectors.deliveries_due(now=now, limit=free, kinds=kinds)
        claimed = events.deliveries_claim(delivery_ids=due, sender=self.name, now=now)
        for delivery_id in claimed:
            with self._lock:
                self._in_flight += 1
            self.pool.submit(self._send, delivery_id)
        return len(claimed)

    def _send(self, delivery_id: int) -> None:
        close_old_connections()
        try:
            delivery_send(delivery_id=delivery_id)
        except Exception:
            logger.exception("notification #%s could not be sent; it is tried again later", delivery_id)
        finally:
            with self._lock:
                self._in_flight -= 1
            close_old_connections()

    def wait(self, timeout: float) -> bool:
        """Wait until nothing is in flight (a command that sends and exits); True when done."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self._in_flight

    def shutdown(self) -> None:
        # Do not wait for a hanging receiver: its row is claimed and handed back by deliveries_reclaim.
        self.pool.shutdown(wait=False, cancel_futures=True)
