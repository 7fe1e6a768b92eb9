"""Delivering notifications: signed webhooks to a real local receiver, email, retries, dedup, rate limit."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError

from scheduler_app.models import NotificationDelivery, NotificationEvent, NotificationSubscription, OperationsCounter
from scheduler_app.ops import counters
from scheduler_app.ops.delivery import DeliverySender, delivery_send
from scheduler_app.ops.events import EventDraft, deliveries_claim, events_record
from scheduler_app.ops.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    webhook_signature,
    webhook_verify,
)
from scheduler_app.runtime.clock import db_now
from tests.factories import ScheduledTaskFactory
from tests.ops.receiver import WebhookReceiver

Kind = NotificationEvent.Kind
State = NotificationDelivery.State


def webhook(url: str, **fields) -> NotificationSubscription:
    return NotificationSubscription.objects.create(name="hook", channel="webhook", webhook_url=url, **fields)


def failure(task, n: int = 1) -> EventDraft:
    return EventDraft(
        kind=Kind.FAILED, key=f"failed:{task.pk}-{n}", summary=f"task {task.name} failed", task_id=task.pk
    )


def send_due(now) -> list[str]:
    """Claim and send (in this thread) every delivery due at `now`; returns their new states."""
    due = list(
        NotificationDelivery.objects.filter(state=State.PENDING, next_attempt_at__lte=now).values_list("pk", flat=True)
    )
    return [delivery_send(delivery_id=pk) for pk in deliveries_claim(delivery_ids=due, sender="test", now=now)]


def counted(label: str) -> float:
    row = OperationsCounter.objects.filter(name=counters.NOTIFICATIONS, label=label).first()
    return row.value if row else 0


def test_a_signature_is_checked_over_the_exact_body_and_time():
    body = b'{"a": 1}'
    signed = webhook_signature(secret="s" * 20, timestamp=1000, body=body)
    assert webhook_verify(secret="s" * 20, body=body, signature=signed, timestamp="1000", now=1001)
    assert not webhook_verify(secret="s" * 20, body=b'{"a": 2}', signature=signed, timestamp="1000", now=1001)
    assert not webhook_verify(secret="t" * 20, body=body, signature=signed, timestamp="1000", now=1001)
    assert not webhook_verify(secret="s" * 20, body=body, signature=signed, timestamp="1000", now=2000)  # replayed
    assert not webhook_verify(secret="s" * 20, body=body, signature=signed, timestamp="soon", now=1001)


@pytest.mark.django_db
def test_a_webhook_is_signed_sent_and_recorded():
    task = ScheduledTaskFactory(name="nightly")
    with WebhookReceiver() as receiver:
        subscription = webhook(receiver.url)
        [event] = events_record(drafts=[failure(task)], now=db_now())
        assert send_due(db_now()) == [State.SENT]
    [request] = receiver.received
    assert webhook_verify(
        secret=subscription.secret,
        body=request.body,
        signature=request.headers[SIGNATURE_HEADER],
        timestamp=request.headers[TIMESTAMP_HEADER],
    )
    delivery = NotificationDelivery.objects.get()
    assert request.headers[EVENT_HEADER] == "failed"
    assert request.headers[DELIVERY_HEADER] == str(delivery.pk)
    assert request.payload["event"]["id"] == event.pk
    assert request.payload["task"] == {"id": task.pk, "name": "nightly"}
    assert (delivery.state, delivery.attempts, delivery.response_status) == (State.SENT, 1, 200)
    assert delivery.attempt_log[0]["ok"] is True
    assert counted("webhook:sent") == 1


@pytest.mark.django_db
def test_a_failing_receiver_is_tried_again_with_backoff_then_recorded_failed(settings):
    settings.SCHEDULER_NOTIFY_MAX_ATTEMPTS = 3
    settings.SCHEDULER_NOTIFY_RETRY_SECONDS = 10
    task = ScheduledTaskFactory()
    with WebhookReceiver(status=500) as receiver:
        webhook(receiver.url)
        events_record(drafts=[failure(task)], now=db_now())
        start = db_now()
        assert send_due(start) == [State.PENDING]
        delivery = NotificationDelivery.objects.get()
        waited = (delivery.next_attempt_at - start).total_seconds()
        assert 10 <= waited < 12
        assert send_due(start + timedelta(seconds=5)) == []  # not due yet
        assert send_due(delivery.next_attempt_at) == [State.PENDING]
        delivery.refresh_from_db()
        assert 20 <= (delivery.next_attempt_at - start).total_seconds() < 22  # doubled, from the second try
        assert send_due(delivery.next_attempt_at) == [State.FAILED]
    delivery.refresh_from_db()
    assert len(receiver.received) == 3
    assert delivery.attempts == 3
    assert delivery.reason.startswith("HTTP 500")
    assert [entry["ok"] for entry in delivery.attempt_log] == [False, False, False]
    assert counted("webhook:failed") == 1


@pytest.mark.django_db
def test_a_receiver_that_hangs_costs_one_timeout(settings):
    settings.SCHEDULER_NOTIFY_TIMEOUT_SECONDS = 0.5
    task = ScheduledTaskFactory()
    with WebhookReceiver(hang=True) as receiver:
        webhook(receiver.url)
        events_record(drafts=[failure(task)], now=db_now())
        began = time.monotonic()
        assert send_due(db_now()) == [State.PENDING]
        assert time.monotonic() - began < 2
    delivery = NotificationDelivery.objects.get()
    assert "timed out" in delivery.reason.lower()


@pytest.mark.django_db
def test_an_email_goes_through_djangos_mail_backend():
    task = ScheduledTaskFactory(name="nightly")
    NotificationSubscription.objects.create(name="mail", channel="email", email_to="ops@example.com, b@example.com")
    events_record(drafts=[failure(task)], now=db_now())
    assert send_due(db_now()) == [State.SENT]
    [message] = mail.outbox
    assert message.to == ["ops@example.com", "b@example.com"]
    assert message.subject == "[zquant] task nightly failed"
    assert "task: nightly" in message.body


@pytest.mark.django_db
def test_the_same_fact_is_recorded_and_told_once():
    task = ScheduledTaskFactory()
    webhook("http://127.0.0.1:9/hook")
    assert len(events_record(drafts=[failure(task), failure(task)], now=db_now())) == 1
    assert events_record(drafts=[failure(task)], now=db_now()) == []
    assert NotificationEvent.objects.count() == 1
    assert NotificationDelivery.objects.count() == 1


@pytest.mark.django_db
def test_the_rate_limit_suppresses_per_subscription_task_and_event(settings):
    settings.SCHEDULER_NOTIFY_RATE_LIMIT_SECONDS = 600
    task, other = ScheduledTaskFactory(), ScheduledTaskFactory()
    hook = webhook("http://127.0.0.1:9/hook")
    now = db_now()
    events_record(drafts=[failure(task, 1), failure(task, 2), failure(other, 1)], now=now)
    events_record(drafts=[failure(task, 3)], now=now + timedelta(seconds=60))
    recovered = EventDraft(kind=Kind.RECOVERED, key="recovered:1", summary="back", task_id=task.pk)
    events_record(drafts=[recovered], now=now + timedelta(seconds=60))
    events_record(drafts=[failure(task, 4)], now=now + timedelta(seconds=601))
    rows = NotificationDelivery.objects.filter(subscription=hook).order_by("id")
    assert [(row.event.key, row.state) for row in rows] == [
        (f"failed:{task.pk}-1", State.PENDING),
        (f"failed:{task.pk}-2", State.SUPPRESSED),
        (f"failed:{other.pk}-1", State.PENDING),
        (f"failed:{task.pk}-3", State.SUPPRESSED),
        ("recovered:1", State.PENDING),
        (f"failed:{task.pk}-4", State.PENDING),
    ]
    assert "rate limit" in rows[1].reason
    assert counted("webhook:suppressed") == 2


@pytest.mark.django_db
def test_subscriptions_are_per_task_or_global_and_per_kind():
    task, other = ScheduledTaskFactory(), ScheduledTaskFactory()
    mine = webhook("http://127.0.0.1:9/mine", task=task)
    everyone = webhook("http://127.0.0.1:9/all", on_failure=False)
    webhook("http://127.0.0.1:9/off", enabled=False)
    events_record(drafts=[failure(task), failure(other)], now=db_now())
    skipped = EventDraft(kind=Kind.STUCK, key="stuck:1", summary="slow", task_id=other.pk)
    events_record(drafts=[skipped], now=db_now())
    told = sorted((row.subscription_id, row.event.key) for row in NotificationDelivery.objects.all())
    assert told == sorted([(mine.pk, f"failed:{task.pk}-1"), (everyone.pk, "stuck:1")])


@pytest.mark.django_db(transaction=True)
def test_the_sender_never_waits_for_a_receiver(settings):
    settings.SCHEDULER_NOTIFY_TIMEOUT_SECONDS = 2
    task = ScheduledTaskFactory()
    sender = DeliverySender(name="test", workers=2)
    with WebhookReceiver(hang=True) as receiver:
        webhook(receiver.url)
        events_record(drafts=[failure(task, n) for n in range(1, 6)], now=db_now())
        NotificationDelivery.objects.update(state=State.PENDING, next_attempt_at=db_now())  # five to send
        began = time.monotonic()
        assert sender.pump(now=db_now()) == 2  # as many as there are threads
        assert sender.pump(now=db_now()) == 0  # both busy: nothing more is claimed
        assert time.monotonic() - began < 0.5
        assert sender.wait(10)
    sender.shutdown()
    assert NotificationDelivery.objects.filter(state=State.PENDING, attempts=1).count() == 2
    assert NotificationDelivery.objects.filter(state=State.PENDING, attempts=0).count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"channel": "email", "email_to": "not an address"}, "email_to"),
        ({"channel": "email", "email_to": ""}, "email_to"),
        ({"channel": "webhook", "webhook_url": ""}, "webhook_url"),
        ({"channel": "webhook", "webhook_url": "ftp://x/y"}, "webhook_url"),
        ({"channel": "webhook", "webhook_url": "http://x/y", "secret": "short"}, "secret"),
        (
            {
                "channel": "webhook",
                "webhook_url": "http://x/y",
                "on_failure": False,
                "on_recovery": False,
                "on_stuck": False,
                "on_no_scheduler": False,
                "on_handover_stuck": False,
            },
            "on_failure",
        ),
    ],
)
def test_a_subscription_that_cannot_work_is_refused_on_its_field(fields, field):
    with pytest.raises(ValidationError) as refused:
        NotificationSubscription(name="x", **fields).full_clean()
    assert field in refused.value.message_dict
