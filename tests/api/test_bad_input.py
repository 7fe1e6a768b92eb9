"""Bad input is a 400 with field errors, and nothing is saved (create) or changed (update)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from scheduler_app.models import ScheduledTask, SchedulerState
from tests.factories import ScheduledTaskFactory

ONE_MB = 1024 * 1024


def base(**fields):
    return {
        "name": "new task",
        "task_type": "common_task",
        "interval_seconds": 60,
        "config": {"task_action": "example_task"},
        **fields,
    }


def workflow_config(*steps):
    return {"workflow_type": "serial", "tasks": [{"task_id": pk, "dependencies": deps} for pk, deps in steps]}


# Each case: (payload builder given two existing step ids (a, b) and the existing task's name, field at fault).
CASES = {
    "cron 61 minutes": (lambda a, b, n: base(interval_seconds=None, cron_expression="61 * * * *"), "cron_expression"),
    "cron step 0": (lambda a, b, n: base(interval_seconds=None, cron_expression="*/0 * * * *"), "cron_expression"),
    "cron six fields": (lambda a, b, n: base(interval_seconds=None, cron_expression="0 0 * * * *"), "cron_expression"),
    "cron empty": (lambda a, b, n: base(interval_seconds=None, cron_expression=""), "cron_expression"),
    "interval zero": (lambda a, b, n: base(interval_seconds=0), "interval_seconds"),
    "interval negative": (lambda a, b, n: base(interval_seconds=-60), "interval_seconds"),
    "interval not a number": (lambda a, b, n: base(interval_seconds="often"), "interval_seconds"),
    "manual with interval": (lambda a, b, n: base(task_type="manual_task"), "interval_seconds"),
    "manual with cron": (
        lambda a, b, n: base(task_type="manual_task", interval_seconds=None, cron_expression="* * * * *"),
        "cron_expression",
    ),
    "scheduled without schedule": (lambda a, b, n: base(interval_seconds=None), "cron_expression"),
    "cron and interval": (lambda a, b, n: base(cron_expression="* * * * *"), "interval_seconds"),
    "config a list": (lambda a, b, n: base(config=["task_action"]), "config"),
    "config a string": (lambda a, b, n: base(config="{}"), "config"),
    "config 1 MB": (lambda a, b, n: base(config={"task_action": "example_task", "blob": "x" * ONE_MB}), "config"),
    "config without action": (lambda a, b, n: base(config={"steps": 1}), "config"),
    "workflow cycle": (
        lambda a, b, n: base(task_type="workflow", config=workflow_config((a, [b]), (b, [a]))),
        "config",
    ),
    "workflow self dependency": (
        lambda a, b, n: base(task_type="workflow", config=workflow_config((a, [a]))),
        "config",
    ),
    "workflow duplicate step": (
        lambda a, b, n: base(task_type="workflow", config=workflow_config((a, []), (a, []))),
        "config",
    ),
    "workflow unknown step id": (
        lambda a, b, n: base(task_type="workflow", config=workflow_config((a, []), (987_654_321, []))),
        "config",
    ),
    "workflow unknown dependency": (
        lambda a, b, n: base(task_type="workflow", config=workflow_config((a, [987_654_321]))),
        "config",
    ),
    "workflow empty": (lambda a, b, n: base(task_type="workflow", config={}), "config"),
    "duplicate name": (lambda a, b, n: base(name=n), "name"),
    "unknown task type": (lambda a, b, n: base(task_type="shell"), "task_type"),
    "unknown timezone": (lambda a, b, n: base(timezone="Mars/Base"), "timezone"),
    "backoff below one": (lambda a, b, n: base(retry_backoff=0.5), "retry_backoff"),
    "huge max retries": (lambda a, b, n: base(max_retries=2**40), "max_retries"),
    "name too long": (lambda a, b, n: base(name="x" * 101), "name"),
    "description too long": (lambda a, b, n: base(description="x" * 2001), "description"),
    "description 2 MB": (lambda a, b, n: base(description="x" * 2 * ONE_MB), "description"),
}


@pytest.fixture
def existing(db):
    first, second = ScheduledTaskFactory(name="step a"), ScheduledTaskFactory(name="step b")
    return first, second


@pytest.mark.parametrize("case", CASES)
def test_create_refuses_and_saves_nothing(operator_client, existing, case):
    build, field = CASES[case]
    first, second = existing
    before = ScheduledTask.objects.count()
    response = operator_client.post(reverse("api:task-list"), build(first.pk, second.pk, first.name), format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content[:300]
    assert field in response.json(), response.json()
    assert all(isinstance(message, str) for message in response.json()[field])
    assert ScheduledTask.objects.count() == before
    assert not SchedulerState.objects.exists()


@pytest.mark.parametrize("case", CASES)
def test_update_refuses_and_changes_nothing(operator_client, existing, case):
    build, field = CASES[case]
    first, second = existing
    target = ScheduledTaskFactory(name="target")
    before = model_to_dict(target)
    payload = build(first.pk, second.pk, first.name)
    if field != "name":
        payload.pop("name")
    url = reverse("api:task-detail", kwargs={"pk": target.pk})
    response = operator_client.patch(url, payload, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content[:300]
    assert field in response.json()
    target.refresh_from_db()
    assert model_to_dict(target) == before


def test_workflow_that_lists_itself_on_update(operator_client, existing):
    first, _second = existing
    flow = ScheduledTaskFactory(task_type="workflow", config=workflow_config((first.pk, [])))
    url = reverse("api:task-detail", kwargs={"pk": flow.pk})
    response = operator_client.patch(url, {"config": workflow_config((flow.pk, []))}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "cannot list itself" in response.json()["config"][0]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"name": NaN}', b"[" * 5000 + b"]" * 5000, b'{"name": "\\ud800x"}'],
    ids=["broken", "array", "nan", "deep", "surrogate"],
)
def test_malformed_bodies_are_400(operator_client, body):
    response = operator_client.generic("POST", reverse("api:task-list"), body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not ScheduledTask.objects.exists()


def test_config_with_a_lone_surrogate_is_400(operator_client):
    body = b'{"name": "n", "task_type": "manual_task", "config": {"task_action": "\\udc00"}}'
    response = operator_client.generic("POST", reverse("api:task-list"), body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "config" in response.json()


def test_unknown_task_id_is_404(operator_client, db):
    response = operator_client.patch(reverse("api:task-detail", kwargs={"pk": 10**15}), {"name": "x"}, format="json")
    assert response.status_code == HTTPStatus.NOT_FOUND


def test_body_over_the_upload_limit_is_a_json_400(operator_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    body = '{"name": "x", "task_type": "manual_task", "config": {"blob": "%s"}}' % ("x" * 200_000)
    response = operator_client.generic("POST", reverse("api:task-list"), body, content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"] == "application/json"
    assert not ScheduledTask.objects.exists()


def test_unknown_api_path_is_a_json_404(operator_client):
    response = operator_client.get("/api/v1/scheduler/no-such-thing/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize(
    "stamp", ["4111-02-25T10:51:10-18:53", "0697-12-02T11:02:00-05:25", "2024-01-01T00:00:00+23:59"]
)
def test_a_time_filter_with_any_offset_python_accepts_is_answered(operator_client, stamp):
    """PostgreSQL refuses offsets beyond ±15:59; a filter hands the database UTC, never a 500."""
    response = operator_client.get(reverse("api:execution-list"), {"since": stamp, "until": stamp})
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.BAD_REQUEST)
