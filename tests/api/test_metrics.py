"""GET metrics/: who may read it, that Prometheus can parse it, and that its numbers follow real runs."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from scheduler_app.models import TaskExecution
from scheduler_app.runtime import transitions
from scheduler_app.runtime.clock import db_now
from scheduler_app.runtime.runner import execution_run
from scheduler_app.scheduling.notifier import FEED_SETTLE_SECONDS, Notifier
from tests.api.conftest import user_with
from tests.executors.helpers import fast, make_task  # noqa: F401 - fast is a fixture
from tests.factories import TaskExecutionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast")]

QUICK = {"task_action": "example_task", "steps": 1, "duration_seconds": 0}
FAILING = {**QUICK, "success_rate": 0}
TOKEN = "a-metrics-token-for-tests"


def url() -> str:
    return reverse("api:metrics")


def scrape(client: APIClient) -> dict[str, dict[tuple, float]]:
    """sample name → {sorted labels: value}, parsed by prometheus_client's own parser."""
    response = client.get(url(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == HTTPStatus.OK, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.fixture
def token(settings):
    settings.SCHEDULER_METRICS_TOKEN = TOKEN


def test_only_the_token_or_the_view_permissions_may_read(token):
    client = APIClient()
    assert client.get(url()).status_code == HTTPStatus.UNAUTHORIZED
    assert client.get(url(), HTTP_AUTHORIZATION="Bearer wrong").status_code in (401, 403)
    assert client.get(url(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == HTTPStatus.OK
    client.force_authenticate(user_with("reader"))
    assert client.get(url()).status_code == HTTPStatus.FORBIDDEN
    # The metrics name the leader's host and pid: the runs' view permission alone is not enough.
    client.force_authenticate(user_with("run_watcher", "view_taskexecution"))
    assert client.get(url()).status_code == HTTPStatus.FORBIDDEN
    client.force_authenticate(user_with("watcher", "view_taskexecution", "view_schedulernode"))
    assert client.get(url()).status_code == HTTPStatus.OK


def test_without_a_token_setting_a_bearer_gets_nothing():
    assert APIClient().get(url(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code in (401, 403)


def test_the_numbers_follow_real_runs(token):
    client = APIClient()
    task = make_task(QUICK, name="nightly", max_retries=0)
    notifier = Notifier(node_id="node-a")
    notifier.run_pass(now=db_now())
    before = scrape(client)
    assert before["zquant_scheduler_lease_changes_total"][()] == 1
    for config in (QUICK, QUICK, FAILING):
        task.config = config
        task.save()
        run = transitions.execution_queue(task_id=task.pk, trigger="manual")
        execution_run(execution_id=run.pk)
    TaskExecutionFactory(task=task, status="pending")
    notifier.run_pass(now=db_now() + timedelta(seconds=FEED_SETTLE_SECONDS + 0.5))
    after = scrape(client)
    labels = (("status", "success"), ("task", "nightly"), ("task_id", str(task.pk)))
    assert before.get("zquant_scheduler_runs_total", {}).get(labels, 0) == 0
    assert after["zquant_scheduler_runs_total"][labels] == 2
    assert after["zquant_scheduler_runs_total"][(("status", "failed"), *labels[1:])] == 1
    assert after["zquant_scheduler_run_duration_seconds_count"][()] == 3
    assert after["zquant_scheduler_run_duration_seconds_bucket"][(("le", "+Inf"),)] == 3
    assert after["zquant_scheduler_runs_active"][(("status", "pending"),)] == 1
    assert after["zquant_scheduler_queue_depth"][()] == 1
    assert after["zquant_scheduler_up"][()] == 0  # no scheduler process in this test


def test_a_scrape_costs_the_same_whatever_the_history(token, django_assert_max_num_queries):
    task = make_task(QUICK)
    TaskExecution.objects.bulk_create(
        TaskExecution(task=task, status="success", end_time=db_now(), duration_seconds=1.0) for _ in range(300)
    )
    with django_assert_max_num_queries(12):
        scrape(APIClient())
