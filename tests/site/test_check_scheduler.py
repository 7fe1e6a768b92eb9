"""check_scheduler: exit 1 and one notification per outage when no scheduler is alive."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from scheduler_app.models import NotificationDelivery, NotificationEvent, NotificationSubscription, SchedulerNode
from scheduler_app.ops.signing import EVENT_HEADER
from scheduler_app.runtime.clock import db_now
from tests.ops.receiver import WebhookReceiver

pytestmark = pytest.mark.django_db(transaction=True)  # the sender's threads read the rows


def node(*, beat_ago: float) -> SchedulerNode:
    beat = db_now() - timedelta(seconds=beat_ago)
    return SchedulerNode.objects.create(node_id=f"n{beat_ago}", host="h", pid=1, started_at=beat, last_heartbeat=beat)


def test_a_live_scheduler_is_fine():
    node(beat_ago=1)
    out = StringIO()
    call_command("check_scheduler", stdout=out)
    assert "scheduler alive" in out.getvalue()
    assert not NotificationEvent.objects.exists()


def test_an_outage_is_told_once_by_webhook_and_the_command_fails():
    node(beat_ago=600)
    with WebhookReceiver() as receiver:
        NotificationSubscription.objects.create(name="ops", channel="webhook", webhook_url=receiver.url)
        for _ in range(2):  # cron runs it again during the same outage
            with pytest.raises(CommandError, match="no live scheduler: last heartbeat"):
                call_command("check_scheduler", stdout=StringIO())
    assert [request.headers[EVENT_HEADER] for request in receiver.received] == ["no_scheduler"]
    assert NotificationEvent.objects.get().kind == "no_scheduler"
    assert NotificationDelivery.objects.get().state == "sent"


def test_a_short_silence_is_within_the_grace(settings):
    settings.SCHEDULER_NOTIFY_SCHEDULER_DOWN_SECONDS = 120
    node(beat_ago=30)
    out = StringIO()
    call_command("check_scheduler", stdout=out)
    assert "within the grace" in out.getvalue()


def test_no_notify_only_checks():
    with pytest.raises(CommandError, match="no scheduler has ever run"):
        call_command("check_scheduler", "--no-notify", stdout=StringIO())
    assert not NotificationEvent.objects.exists()
