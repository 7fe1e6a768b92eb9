"""The history of tasks, calendars and windows (who changed what, when) and the operators' actions
recorded by the services that perform them, in their transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from scheduler_app import selectors
from scheduler_app.exceptions import InvalidState
from scheduler_app.models import Calendar, OperatorAction, ScheduledTask, TaskExecution
from scheduler_app.services.blackouts import blackout_create, blackout_update
from scheduler_app.services.calendars import DaySpec, calendar_create, calendar_days_replace
from scheduler_app.services.executions import execution_pause, execution_rerun, execution_terminate
from scheduler_app.services.permissions import SYSTEM
from scheduler_app.services.tasks import (
    task_create,
    task_disable,
    task_enable,
    task_pause,
    task_restore,
    task_resume,
    task_trigger,
    task_update,
    tasks_resume_expired,
)
from tests.factories import ScheduledTaskFactory, TaskExecutionFactory, operator_user

pytestmark = pytest.mark.django_db
Action = OperatorAction.Action
ACTION = {"task_action": "example_task"}


def actions(task: ScheduledTask) -> list[tuple[str, str, str]]:
    return [(a.action, a.actor_name, a.reason) for a in selectors.task_actions(task_id=task.pk).order_by("id")]


def test_every_saved_change_is_a_version_naming_its_author_and_what_changed():
    user = operator_user("alice")
    task = task_create(data={"name": "sync", "interval_seconds": 60, "config": ACTION}, user=user)
    task_update(task=task, data={"interval_seconds": 120, "description": "slower"}, user=SYSTEM)
    versions = selectors.task_versions(records=list(selectors.task_history(task_id=task.pk)))
    assert [(v.record.history_type, v.record.history_user) for v in versions] == [("~", None), ("+", user)]
    assert versions[0].changes == [
        {"field": "description", "old": "", "new": "slower"},
        {"field": "interval_seconds", "old": 60, "new": 120},
    ]
    assert versions[1].changes == []


def test_state_changes_record_an_action_with_the_reason_and_a_version():
    user = operator_user("bob")
    task = ScheduledTaskFactory(name="t", interval_seconds=60)
    task_disable(task=task, user=user, reason="provider down")
    task_disable(task=task, user=user)  # idempotent: recorded, not a new version
    task_enable(task=task, user=user)
    task_pause(task=task, user=user, until=timezone.now() + timedelta(hours=1), reason="maintenance")
    task_resume(task=task, user=user)
    assert actions(task) == [
        ("disable", "bob", "provider down"),
        ("disable", "bob", ""),
        ("enable", "bob", ""),
        ("pause", "bob", "maintenance"),
        ("resume", "bob", ""),
    ]
    records = list(selectors.task_actions(task_id=task.pk).order_by("id"))
    assert [r.details["changed"] for r in records] == [True, False, True, True, True]
    assert "until" in records[3].details
    kinds = list(task.history.order_by("history_id").values_list("history_type", "history_change_reason"))
    assert kinds == [("+", None), ("~", "provider down"), ("~", ""), ("~", "maintenance"), ("~", "")]


def test_a_refused_action_records_nothing():
    task = ScheduledTaskFactory(name="t", interval_seconds=60)
    step = TaskExecutionFactory(task=task, status=TaskExecution.Status.SUCCESS)
    with pytest.raises(InvalidState):
        execution_pause(execution=step, user=operator_user())
    assert not OperatorAction.objects.exists()


def test_run_now_and_the_run_controls_name_the_run():
    user = operator_user("carol")
    task = ScheduledTaskFactory(name="t", interval_seconds=60, overlap_policy="allow")
    queued = task_trigger(task=task, user=user, reason="backfill today")
    execution_terminate(execution=queued, user=user, reason="wrong day")
    rerun = execution_rerun(execution=queued, user=user)
    records = list(selectors.task_actions(task_id=task.pk).order_by("id"))
    assert [(r.action, r.execution_id, r.reason) for r in records] == [
        (Action.RUN_NOW, queued.pk, "backfill today"),
        (Action.TERMINATE, queued.pk, "wrong day"),
        (Action.RERUN, queued.pk, ""),
    ]
    assert records[1].details == {"status": "terminated", "cancelled": True}
    assert records[2].details["new_execution_id"] == rerun.pk
    queued.refresh_from_db()
    assert queued.error_message == "wrong day"


def test_restore_goes_through_the_update_service():
    user = operator_user("dave")
    task = task_create(data={"name": "r", "interval_seconds": 60, "description": "first", "config": ACTION}, user=user)
    first = task.history.get().history_id
    task_update(task=task, data={"interval_seconds": 300, "description": "second"}, user=user)
    restored = task_restore(task=task, history_id=first, user=user, reason="bad change")
    assert (restored.interval_seconds, restored.description) == (60, "first")
    latest = task.history.order_by("-history_id").first()
    assert latest.history_change_reason.startswith(f"Restored version #{first}")
    assert actions(task)[-1] == ("restore", "dave", "bad change")


def test_restore_of_an_unknown_or_invalid_version_changes_nothing():
    user = operator_user()
    task = task_create(data={"name": "r", "run_at": timezone.now() + timedelta(minutes=1), "config": ACTION}, user=user)
    version = task.history.get().history_id
    with pytest.raises(ValidationError) as error:
        task_restore(task=task, history_id=version + 1000, user=user)
    assert "history_id" in error.value.message_dict
    ScheduledTask.objects.filter(pk=task.pk).update(run_at=timezone.now() - timedelta(minutes=5))
    task_update(task=task, data={"run_at": timezone.now() + timedelta(days=1)}, user=user)
    ScheduledTask.history.filter(history_id=version).update(run_at=timezone.now() - timedelta(minutes=5))
    with pytest.raises(ValidationError) as error:
        task_restore(task=task, history_id=version, user=user)
    assert "run_at" in error.value.message_dict
    assert not OperatorAction.objects.filter(action=Action.RESTORE).exists()


def test_a_timed_pause_that_ends_is_a_version_by_the_system():
    task = ScheduledTaskFactory(name="t", interval_seconds=60, paused=True)
    ScheduledTask.objects.filter(pk=task.pk).update(paused_until=timezone.now() - timedelta(seconds=1))
    assert tasks_resume_expired(task_ids=[task.pk]) == [task.pk]
    latest = task.history.order_by("-history_id").first()
    assert (latest.paused, latest.history_user, latest.history_change_reason) == (False, None, "The timed pause ended")


def test_calendars_and_windows_keep_versions():
    calendar = calendar_create(data={"name": "cn", "weekdays": "1-5"}, actor=SYSTEM)
    calendar_days_replace(calendar=calendar, days=[DaySpec(date=timezone.localdate())], actor=SYSTEM)
    reasons = list(Calendar.history.filter(id=calendar.pk).order_by("history_id").values_list("history_change_reason"))
    assert reasons[-1] == ("revision 2, 1 listed days",)
    window = blackout_create(data={"name": "lunch", "from_time": "11:30", "until_time": "13:00"}, actor=SYSTEM)
    blackout_update(window=window, data={"until_time": "13:30"}, actor=SYSTEM)
    assert window.history.count() == 2
