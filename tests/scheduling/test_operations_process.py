"""The real `runscheduler` process with notifications: delivered once, signed, never slowing the fires."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from scheduler_app.models import NotificationDelivery, NotificationSubscription, ScheduledTask, TaskExecution
from scheduler_app.ops.signing import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, webhook_verify
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_trigger
from tests.api.test_metrics import TOKEN, scrape
from tests.factories import ScheduledTaskFactory
from tests.ops.receiver import WebhookReceiver
from tests.scheduling.conftest import wait_for

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
FAILING = {**QUICK, "success_rate": 0}
FAST_OPERATIONS = {"SCHEDULER_NOTIFY_POLL_SECONDS": "0.2"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def test_a_failure_is_told_once_after_its_last_retry_and_its_recovery_once(scheduler):
    task = ScheduledTaskFactory(
        name="flaky", task_type="manual_task", interval_seconds=None, config=FAILING, max_retries=2, retry_interval=1
    )
    with WebhookReceiver() as receiver:
        subscription = NotificationSubscription.objects.create(
            name="on call", channel="webhook", webhook_url=receiver.url, task=task
        )
        scheduler(env=FAST_OPERATIONS)
        task_trigger(task=task, user=SYSTEM)
        wait_for(lambda: receiver.received, 20, message="the failure notification")
        attempts = list(TaskExecution.objects.filter(task=task).order_by("id"))
        assert [run.status for run in attempts] == ["failed", "failed", "failed"]
        ScheduledTask.objects.filter(pk=task.pk).update(config=QUICK)
        task_trigger(task=task, user=SYSTEM)
        wait_for(lambda: len(receiver.received) >= 2, 15, message="the recovery notification")
        time.sleep(1.5)  # several more operations turns: nothing else may arrive
    kinds = [request.headers[EVENT_HEADER] for request in receiver.received]
    assert kinds == ["failed", "recovered"]
    for request in receiver.received:
        assert webhook_verify(
            secret=subscription.secret,
            body=request.body,
            signature=request.headers[SIGNATURE_HEADER],
            timestamp=request.headers[TIMESTAMP_HEADER],
        )
    failed = receiver.received[0].payload["event"]
    assert failed["execution_id"] == attempts[-1].pk
    assert "attempt 3" in failed["summary"]
    assert NotificationDelivery.objects.filter(state="sent").count() == 2


def test_a_receiver_that_hangs_does_not_delay_the_fires(scheduler):
    failing = [ScheduledTaskFactory(interval_seconds=1, config=FAILING, max_retries=0) for _ in range(3)]
    quick = [ScheduledTaskFactory(interval_seconds=1, config=QUICK) for _ in range(5)]
    with WebhookReceiver(hang=True) as receiver:
        NotificationSubscription.objects.create(name="black hole", channel="webhook", webhook_url=receiver.url)
        env = {**FAST_OPERATIONS, "SCHEDULER_NOTIFY_RATE_LIMIT_SECONDS": "0", "SCHEDULER_NOTIFY_TIMEOUT_SECONDS": "30"}
        scheduler("--pool-size", "16", env=env)
        time.sleep(2)  # every job has fired once
        window_start = timezone.now()
        wait_for(lambda: len(receiver.received) >= 4, 10, message="the senders to hang on the receiver")
        time.sleep(8)
        window_end = timezone.now()
        hanging = len(receiver.received)
    runs = TaskExecution.objects.filter(
        task__in=[*failing, *quick],
        scheduled_for__gte=window_start,
        scheduled_for__lt=window_end - timedelta(seconds=1),
    )
    lateness = [(run.start_time - run.scheduled_for).total_seconds() for run in runs if run.start_time]
    assert len(lateness) >= 8 * 8  # 8 tasks, every second
    assert percentile(lateness, 99) < 0.5, sorted(lateness)[-10:]
    assert hanging == 4  # every sender thread held by the receiver the whole time, none more claimed
    assert NotificationDelivery.objects.filter(state="pending").count() > 10  # the outbox waits, the fires do not


def test_the_metrics_counters_move_with_the_schedulers_runs(scheduler, settings):
    settings.SCHEDULER_METRICS_TOKEN = TOKEN
    task = ScheduledTaskFactory(name="every second", interval_seconds=1, config=QUICK)
    scheduler(env=FAST_OPERATIONS)
    client = APIClient()
    labels = (("status", "success"), ("task", "every second"), ("task_id", str(task.pk)))

    def runs_counted() -> float:
        return scrape(client).get("zquant_scheduler_runs_total", {}).get(labels, 0)

    first = wait_for(runs_counted, 10, interval=0.3, message="the first runs counted")
    wait_for(lambda: runs_counted() >= first + 2, 10, interval=0.3, message="more runs counted")
    samples = scrape(client)
    assert samples["zquant_scheduler_up"][()] == 1
    assert samples["zquant_scheduler_fire_lateness_seconds_count"][()] >= first + 2
    assert samples["zquant_scheduler_fire_lateness_seconds_bucket"][(("le", "0.5"),)] >= first + 2
    [leader] = samples["zquant_scheduler_leader"]
    assert dict(leader)["host"]
    assert samples["zquant_scheduler_heartbeat_age_seconds"][()] < 10
