"""Recording notification events and their deliveries (the outbox), deduplicated and rate-limited.

- An event is one fact (`EventDraft.key`): a key recorded already is left out, so reading the same
  facts twice (a new leader, an overlapping window, a second `check_scheduler`) tells nobody twice.
- Each new event gets one delivery per subscription that wants it. A subscription hears about a
  task and kind of event at most once per SCHEDULER_NOTIFY_RATE_LIMIT_SECONDS: the others are
  recorded `suppressed`, with the reason, and never sent.
- Pending deliveries are sent by ops.delivery in its own threads, never by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext

from scheduler_app import selectors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import NotificationDelivery, NotificationEvent
from scheduler_app.ops import counters

logger = logging.getLogger("scheduler_app.notifications")

State = NotificationDelivery.State


@dataclass(frozen=True)
class EventDraft:
    """An event as a detector found it; `key` names the fact (one fact, one event)."""

    kind: str
    key: str
    summary: str
    task_id: int | None = None
    execution_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    count: int = 1


def events_record(*, drafts: Sequence[EventDraft], now: datetime) -> list[NotificationEvent]:
    """Record the drafts whose key is new, with their deliveries; returns the new events."""
    unique = {draft.key[:200]: draft for draft in drafts}
    if not unique:
        return []
    known = set(NotificationEvent.objects.filter(key__in=list(unique)).values_list("key", flat=True))
    fresh = [
        NotificationEvent(
            kind=draft.kind,
            key=key,
            task_id=draft.task_id,
            execution_id=draft.execution_id,
            summary=draft.summary[:500],
            details=draft.details,
            count=draft.count,
            detected_at=now,
        )
        for key, draft in unique.items()
        if key not in known
    ]
    if not fresh:
        return []
    with transaction.atomic():
        try:
            with transaction.atomic():
                NotificationEvent.objects.bulk_create(fresh)
        except IntegrityError:  # another process recorded one of them meanwhile: keep the others
            fresh = _insert_one_by_one(fresh)
        if any(event.pk is None for event in fresh):  # databases that do not return ids from a bulk insert
            ids = dict(NotificationEvent.objects.filter(key__in=[e.key for e in fresh]).values_list("key", "pk"))
            for event in fresh:
                event.pk = ids[event.key]
        _plan_deliveries(fresh, now=now)
    for event in fresh:
        logger.info("notification event #%s %s: %s", event.pk, event.kind, event.summary)
    return fresh


def _insert_one_by_one(events: list[NotificationEvent]) -> list[NotificationEvent]:
    recorded = []
    for event in events:
        try:
            with transaction.atomic():
                event.save(force_insert=True)
        except IntegrityError:
            continue
        recorded.append(event)
    return recorded


def _plan_deliveries(events: list[NotificationEvent], *, now: datetime) -> None:
    """One delivery per (event, subscription that wants it): pending, or suppressed by the rate limit."""
    window = timedelta(seconds=scheduler_settings.NOTIFY_RATE_LIMIT_SECONDS)
    deliveries: list[NotificationDelivery] = []
    suppressed = 0
    by_kind: dict[str, list[NotificationEvent]] = {}
    for event in events:
        by_kind.setdefault(event.kind, []).append(event)
    for kind, kind_events in by_kind.items():
        subscriptions = selectors.notification_subscriptions_for(
            kind=kind, task_ids={event.task_id for event in kind_events if event.task_id}
        )
        if not subscriptions:
            continue
        told = selectors.notified_recently(
            subscription_ids=[s.pk for s in subscriptions], kinds=[kind], since=now - window
        )
        for event in kind_events:
            for subscription in subscriptions:
                if subscription.task_id is not None and subscription.task_id != event.task_id:
                    continue
                delivery = NotificationDelivery(
                    event=event,
                    subscription=subscription,
                    kind=kind,
                    task_id=event.task_id,
                    channel=subscription.channel,
                    target=subscription.target[:1000],
                    created_at=now,
                )
                scope = (subscription.pk, kind, event.task_id)
                if scope in told:
                    delivery.state = State.SUPPRESSED
                    delivery.reason = gettext(
                        "rate limit: this subscription was told about this task and event less than %(seconds)s s ago"
                    ) % {"seconds": int(window.total_seconds())}
                    suppressed += 1
                else:
                    delivery.state = State.PENDING
                    delivery.next_attempt_at = now
                    told.add(scope)
                deliveries.append(delivery)
    NotificationDelivery.objects.bulk_create(deliveries)
    outcomes: dict[counters.CounterKey, float] = {}
    for delivery in deliveries:
        if delivery.state == State.SUPPRESSED:
            key = (counters.NOTIFICATIONS, 0, f"{delivery.channel}:{State.SUPPRESSED}")
            outcomes[key] = outcomes.get(key, 0) + 1
    counters.counters_add(increments=outcomes)
    if suppressed:
        logger.info("%s notifications suppressed by the rate limit", suppressed)


def events_resolve(*, now: datetime, event_ids: Sequence[int] = (), keys: Sequence[str] = ()) -> int:
    """Close open failures or outages (a success or a live scheduler ended them), by id or by key."""
    if not event_ids and not keys:
        return 0
    which = Q(pk__in=list(event_ids)) | Q(key__in=list(keys))
    return NotificationEvent.objects.filter(which, resolved_at__isnull=True).update(resolved_at=now)


# --------------------------------------------------------------------------- the outbox


def deliveries_claim(*, delivery_ids: Sequence[int], sender: str, now: datetime) -> list[int]:
    """pending → sending for `sender`; returns the ids it won (two senders never send one twice)."""
    if not delivery_ids:
        return []
    NotificationDelivery.objects.filter(pk__in=list(delivery_ids), state=State.PENDING).update(
        state=State.SENDING, claimed_by=sender[:100], claimed_at=now
    )
    won = NotificationDelivery.objects.filter(
        pk__in=list(delivery_ids), state=State.SENDING, claimed_by=sender[:100], claimed_at=now
    )
    return list(won.values_list("pk", flat=True))


def deliveries_reclaim(*, older_than: datetime) -> int:
    """Hand back to the outbox the deliveries a sender claimed and never finished (it died)."""
    return NotificationDelivery.objects.filter(state=State.SENDING, claimed_at__lt=older_than).update(
        state=State.PENDING, claimed_by="", claimed_at=None
    )


def delivery_attempt_record(
    *, delivery: NotificationDelivery, ok: bool, detail: str, http_status: int | None, seconds: float, now: datetime
) -> str:
    """Record one try: sent; or failed for good after SCHEDULER_NOTIFY_MAX_ATTEMPTS; or pending again
    after a backoff (SCHEDULER_NOTIFY_RETRY_SECONDS, doubled each time). Returns the new state."""
    attempts = delivery.attempts + 1
    log = [*(delivery.attempt_log or []), {"at": now.isoformat(), "ok": ok, "detail": detail[:300], "seconds": seconds}]
    fields: dict[str, Any] = {
        "attempts": attempts,
        "attempt_log": log[-20:],
        "response_status": http_status,
        "reason": "" if ok else detail[:500],
        "claimed_by": "",
        "claimed_at": None,
    }
    if ok:
        fields.update(state=State.SENT, sent_at=now, next_attempt_at=None)
    elif attempts >= scheduler_settings.NOTIFY_MAX_ATTEMPTS:
        fields.update(state=State.FAILED, next_attempt_at=None)
    else:
        delay = scheduler_settings.NOTIFY_RETRY_SECONDS * 2 ** (attempts - 1)
        fields.update(state=State.PENDING, next_attempt_at=now + timedelta(seconds=delay))
    NotificationDelivery.objects.filter(pk=delivery.pk, state=State.SENDING).update(**fields)
    if fields["state"] in (State.SENT, State.FAILED):
        counters.counters_add(increments={(counters.NOTIFICATIONS, 0, f"{delivery.channel}:{fields['state']}"): 1})
    return fields["state"]


def events_prune(*, event_ids: Sequence[int]) -> int:
    """Delete old notification events with their deliveries (retention of the notification log)."""
    if not event_ids:
        return 0
    deleted, _by_model = NotificationEvent.objects.filter(pk__in=list(event_ids)).delete()
    return deleted
