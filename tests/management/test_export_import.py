"""export_tasks / import_tasks: by name, idempotent, loads into an empty database, all or nothing."""

from __future__ import annotations

import datetime
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from scheduler_app.models import BlackoutWindow, Calendar, NotificationSubscription, ScheduledTask
from scheduler_app.services.blackouts import blackout_create
from scheduler_app.services.calendars import DaySpec, calendar_create
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import task_create

pytestmark = pytest.mark.django_db
ACTION = {"task_action": "example_task"}


def build_configuration() -> None:
    cn = calendar_create(
        data={"name": "cn", "weekdays": "1-5", "known_until": datetime.date(2030, 12, 31)},
        days=[DaySpec(date=datetime.date(2030, 10, 1), note="national day")],
        actor=SYSTEM,
    )
    step = task_create(data={"name": "step", "task_type": "manual_task", "config": ACTION}, user=SYSTEM)
    other = task_create(data={"name": "other", "task_type": "manual_task", "config": ACTION}, user=SYSTEM)
    task_create(
        data={
            "name": "flow",
            "task_type": "workflow",
            "cron_expression": "30 9 * * *",
            "calendar": cn,
            "valid_until": timezone.now() + datetime.timedelta(days=30),
            "config": {
                "workflow_type": "serial",
                "tasks": [
                    {"task_id": step.pk, "name": "first", "dependencies": []},
                    {"task_id": other.pk, "name": "second", "dependencies": [step.pk]},
                ],
            },
        },
        user=SYSTEM,
    )
    blackout_create(
        data={"name": "lunch", "task": step, "from_time": datetime.time(11, 30), "until_time": datetime.time(13)},
        actor=SYSTEM,
    )
    NotificationSubscription.objects.create(name="hook", webhook_url="https://example.com/hook", task=step)


def export(*args: str) -> str:
    out = StringIO()
    call_command("export_tasks", *args, stdout=out)
    return out.getvalue()


def wipe() -> None:
    NotificationSubscription.objects.all().delete()
    BlackoutWindow.objects.all().delete()
    ScheduledTask.objects.filter(task_type="workflow").delete()
    ScheduledTask.objects.all().delete()
    Calendar.objects.all().delete()


def run_import(path, *args: str) -> str:
    out = StringIO()
    call_command("import_tasks", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_export_import_into_an_empty_database_export_again_is_the_same_file(tmp_path, suffix):
    build_configuration()
    first = tmp_path / f"first{suffix}"
    call_command("export_tasks", "--output", str(first), stderr=StringIO())
    wipe()
    assert "+ task flow" in run_import(first)
    second = tmp_path / f"second{suffix}"
    call_command("export_tasks", "--output", str(second), stderr=StringIO())
    assert second.read_text() == first.read_text()
    flow = ScheduledTask.objects.get(name="flow")
    ids = {task.name: task.pk for task in ScheduledTask.objects.all()}
    assert [step["task_id"] for step in flow.config["tasks"]] == [ids["step"], ids["other"]]
    assert flow.config["tasks"][1]["dependencies"] == [ids["step"]]
    # Idempotent by name: a second import changes nothing.
    assert run_import(first).strip() == "nothing to change"


def test_workflows_refer_to_steps_by_name(tmp_path):
    build_configuration()
    document = json.loads(export())
    flow = next(task for task in document["tasks"] if task["name"] == "flow")
    assert [(s["task"], s["dependencies"]) for s in flow["config"]["tasks"]] == [("step", []), ("other", ["step"])]
    assert flow["calendar"] == "cn"
    assert "secret" not in document["subscriptions"][0]


def test_dry_run_prints_the_diff_and_changes_nothing(tmp_path):
    build_configuration()
    document = json.loads(export())
    next(task for task in document["tasks"] if task["name"] == "step")["max_retries"] = 7
    document["tasks"].append({"name": "new", "task_type": "manual_task", "config": ACTION})
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(document))
    out = run_import(path, "--dry-run")
    assert "~ task step: max_retries 3 -> 7" in out
    assert "+ task new" in out
    assert "2 would change" in out
    assert not ScheduledTask.objects.filter(name="new").exists()
    assert ScheduledTask.objects.get(name="step").max_retries == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"tasks": [{"name": "x", "interval_seconds": -5, "config": {"task_action": "example_task"}}]}', 'task "x"'),
        ('{"tasks": [{"name": "w", "task_type": "workflow", "config": {"tasks": [{"task": "nope"}]}}]}', "nope"),
        ('{"tasks": 3}', '"tasks" must be a list'),
        ('{"format": 9}', "Unknown format"),
    ],
)
def test_a_bad_file_is_one_line_and_changes_nothing(tmp_path, content, message):
    path = tmp_path / "bad.json"
    # The first object is fine: the refusal of a later one rolls it back too.
    document = content
    if content.startswith('{"tasks": [{'):
        document = content.replace(
            '{"tasks": [',
            '{"tasks": [{"name": "ok", "task_type": "manual_task", "config": {"task_action": "example_task"}}, ',
            1,
        )
    path.write_text(document)
    with pytest.raises(CommandError) as error:
        run_import(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not ScheduledTask.objects.exists()


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run_import(tmp_path / "missing.yaml")
