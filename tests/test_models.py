"""Model invariants: clean() names the field at fault, and the database refuses what it can."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from scheduler_app.models import BlackoutWindow, CalendarDay, ScheduledTask, TaskExecution
from tests.factories import CalendarFactory, ScheduledTaskFactory, TaskExecutionFactory

pytestmark = pytest.mark.django_db

MANUAL = ScheduledTask.TaskType.MANUAL_TASK
COMMON = ScheduledTask.TaskType.COMMON_TASK


def build(**fields) -> ScheduledTask:
    defaults = {"name": "a task", "task_type": COMMON, "interval_seconds": 60, "config": {}}
    return ScheduledTask(**{**defaults, **fields})


def field_errors(task: ScheduledTask) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        task.full_clean()
    return caught.value.message_dict


class TestScheduledTaskClean:
    def test_valid_tasks_pass(self):
        build().full_clean()
        build(interval_seconds=None, cron_expression="0 18 * * 1-5").full_clean()
        build(task_type=MANUAL, interval_seconds=None).full_clean()

    def test_manual_task_with_cron(self):
        errors = field_errors(build(task_type=MANUAL, interval_seconds=None, cron_expression="0 * * * *"))
        assert "manual task" in errors["cron_expression"][0]

    def test_manual_task_with_interval(self):
        errors = field_errors(build(task_type=MANUAL, interval_seconds=30))
        assert "manual task" in errors["interval_seconds"][0]

    def test_scheduled_task_without_schedule(self):
        errors = field_errors(build(interval_seconds=None, cron_expression=""))
        assert "needs a cron expression or an interval" in errors["cron_expression"][0]

    def test_workflow_without_schedule(self):
        errors = field_errors(build(task_type=ScheduledTask.TaskType.WORKFLOW, interval_seconds=None))
        assert "cron_expression" in errors

    def test_scheduled_task_with_both(self):
        errors = field_errors(build(cron_expression="0 * * * *", interval_seconds=60))
        assert "not both" in errors["interval_seconds"][0]

    @pytest.mark.parametrize("interval", [0])
    def test_interval_must_be_positive(self, interval):
        errors = field_errors(build(interval_seconds=interval))
        assert "at least 1 second" in errors["interval_seconds"][0]

    def test_negative_interval_is_refused_by_the_field(self):
        assert "interval_seconds" in field_errors(build(interval_seconds=-1))

    def test_invalid_cron_names_the_field_and_the_problem(self):
        errors = field_errors(build(interval_seconds=None, cron_expression="61 * * * *"))
        assert errors["cron_expression"] == ["Invalid minute field: 61 is out of range 0-59"]

    def test_cron_whitespace_is_normalised(self):
        task = build(interval_seconds=None, cron_expression="  0   18 * *   1-5 ")
        task.full_clean()
        assert task.cron_expression == "0 18 * * 1-5"

    @pytest.mark.parametrize("config", [[], "text", 3, None])
    def test_config_must_be_an_object(self, config):
        errors = field_errors(build(config=config))
        assert "config" in errors

    def test_config_size_is_limited(self, settings):
        settings.SCHEDULER_MAX_CONFIG_BYTES = 1000
        errors = field_errors(build(config={"blob": "x" * 2000}))
        assert "limit is 1000 bytes" in errors["config"][0]

    def test_config_limit_read_from_environment_text(self, settings):
        settings.SCHEDULER_MAX_CONFIG_BYTES = "1000"
        assert "config" in field_errors(build(config={"blob": "x" * 2000}))

    def test_description_is_bounded(self):
        build(description="描" * 2000).full_clean()  # characters, not bytes
        errors = field_errors(build(description="x" * 2001))
        assert errors["description"] == ["Ensure this value has at most 2000 characters (it has 2001)."]

    def test_unknown_timezone(self):
        assert "Unknown timezone" in field_errors(build(timezone="Mars/Olympus"))["timezone"][0]

    def test_retry_backoff_below_one(self):
        assert "retry_backoff" in field_errors(build(retry_backoff=0.5))

    def test_bad_choices(self):
        errors = field_errors(build(task_type="nope", overlap_policy="sometimes"))
        assert {"task_type", "overlap_policy"} <= set(errors)

    def test_duplicate_name(self):
        ScheduledTaskFactory(name="daily")
        assert "name" in field_errors(build(name="daily"))

    def test_name_required(self):
        assert "name" in field_errors(build(name="   "))


class TestScheduledTaskDefaults:
    def test_defaults(self, settings):
        settings.SCHEDULER_TIMEZONE = "Europe/Berlin"
        task = build()
        assert task.timezone == "Europe/Berlin"
        assert (task.max_retries, task.retry_interval, task.retry_backoff) == (3, 60, 1.0)
        assert task.overlap_policy == "skip"
        assert task.misfire_grace_seconds == 300
        assert task.catch_up == "once"
        assert task.enabled is True
        assert task.paused is False

    def test_job_id_is_generated_unique_and_stable_across_renames(self):
        first, second = ScheduledTaskFactory(), ScheduledTaskFactory()
        assert first.job_id != second.job_id
        job_id = first.job_id
        first.name = "renamed"
        first.save()
        first.refresh_from_db()
        assert first.job_id == job_id

    def test_choices_are_stored_lowercase(self):
        task = ScheduledTaskFactory(task_type=COMMON)
        raw = ScheduledTask.objects.filter(pk=task.pk).values_list("task_type", flat=True).get()
        assert raw == "common_task"


class TestDatabaseConstraints:
    """What the database itself refuses, even when clean() is bypassed."""

    @pytest.mark.parametrize(
        "fields",
        [
            {"task_type": MANUAL, "interval_seconds": 30},
            {"task_type": MANUAL, "interval_seconds": None, "cron_expression": "0 * * * *"},
            {"interval_seconds": None},
            {"interval_seconds": 60, "cron_expression": "0 * * * *"},
            {"interval_seconds": 0},
            {"interval_seconds": None, "cron_expression": ""},
            {"retry_backoff": 0.5},
            {"interval_seconds": 60, "run_at": datetime(2030, 1, 1, tzinfo=UTC)},
            {"task_type": MANUAL, "interval_seconds": None, "run_at": datetime(2030, 1, 1, tzinfo=UTC)},
            {"paused_until": datetime(2030, 1, 1, tzinfo=UTC)},  # without paused
            {"valid_from": datetime(2030, 1, 2, tzinfo=UTC), "valid_until": datetime(2030, 1, 1, tzinfo=UTC)},
            {"jitter_seconds": 3601},
        ],
    )
    def test_invalid_rows_are_refused(self, fields):
        with pytest.raises(IntegrityError), transaction.atomic():
            build(**fields).save()
        assert not ScheduledTask.objects.exists()

    def test_duplicate_name_refused(self):
        build(name="same").save()
        with pytest.raises(IntegrityError), transaction.atomic():
            build(name="same").save()

    def test_one_execution_per_occurrence(self, task):
        from django.utils import timezone

        due = timezone.now()
        TaskExecutionFactory(task=task, scheduled_for=due, occurrence_at=due, trigger="schedule")
        with pytest.raises(IntegrityError), transaction.atomic():
            TaskExecutionFactory(task=task, scheduled_for=due, occurrence_at=due, trigger="schedule")
        assert task.executions.count() == 1
        # Other runs carry no occurrence: any number of them may be due at the same instant.
        TaskExecutionFactory(task=task, scheduled_for=due, trigger="manual")
        TaskExecutionFactory(task=task, scheduled_for=due, trigger="retry")
        assert task.executions.count() == 3


class TestTaskExecution:
    def test_default_ordering_is_newest_first(self, task):
        older, newer = TaskExecutionFactory(task=task), TaskExecutionFactory(task=task)
        assert list(TaskExecution.objects.all()) == [newer, older]

    def test_logical_foreign_key_cascades_in_the_orm(self, task):
        TaskExecutionFactory.create_batch(3, task=task)
        task.delete()
        assert not TaskExecution.objects.exists()

    def test_status_values_are_lowercase(self):
        assert {s.value for s in TaskExecution.Status} == {
            "pending",
            "running",
            "paused",
            "success",
            "failed",
            "completed",
            "terminated",
            "skipped",
        }
        assert {t.value for t in TaskExecution.Trigger} == {"schedule", "manual", "retry", "workflow", "resume"}

    def test_parent_and_children(self, task):
        parent = TaskExecutionFactory(task=task)
        child = TaskExecutionFactory(task=task, parent=parent, trigger="workflow")
        assert list(parent.children.all()) == [child]
        parent.delete()
        child.refresh_from_db()
        assert child.parent_id is None

    def test_querysets(self, task):
        for status in TaskExecution.Status:
            TaskExecutionFactory(task=task, status=status)
        assert set(TaskExecution.objects.active().values_list("status", flat=True)) == {"pending", "running", "paused"}
        assert set(TaskExecution.objects.started().values_list("status", flat=True)) == {"running", "paused"}
        assert TaskExecution.objects.finished().count() == 5

    def test_schedulable_tasks(self):
        keep = ScheduledTaskFactory()
        ScheduledTaskFactory(enabled=False)
        ScheduledTaskFactory(task_type=MANUAL, interval_seconds=None)
        assert list(ScheduledTask.objects.schedulable()) == [keep]


@pytest.mark.django_db
class TestCalendarsAndWindows:
    def test_a_one_shot_task_and_its_refusals(self):
        task = build(interval_seconds=None, run_at=datetime(2030, 1, 1, tzinfo=UTC))
        task.full_clean()
        task.save()
        both = build(name="both", cron_expression="0 9 * * *", interval_seconds=None, run_at=task.run_at)
        with pytest.raises(ValidationError) as error:
            both.full_clean()
        assert "run_at" in error.value.message_dict

    def test_one_row_per_calendar_day_and_closing_times_on_half_days_only(self):
        calendar = CalendarFactory(days=[date(2024, 2, 12)])
        with pytest.raises(IntegrityError), transaction.atomic():
            CalendarDay.objects.create(calendar=calendar, date=date(2024, 2, 12), kind="open")
        with pytest.raises(IntegrityError), transaction.atomic():
            CalendarDay.objects.create(calendar=calendar, date=date(2024, 2, 13), kind="closed", closes_at=time(11))
        CalendarDay.objects.create(calendar=calendar, date=date(2024, 2, 13), kind="half_day", closes_at=time(11))

    @pytest.mark.parametrize(
        "fields",
        [
            {"kind": "daily", "from_time": time(11, 30)},
            {"kind": "daily", "from_time": time(11, 30), "until_time": time(11, 30)},
            {
                "kind": "once",
                "starts_at": datetime(2030, 1, 2, tzinfo=UTC),
                "ends_at": datetime(2030, 1, 1, tzinfo=UTC),
            },
            {
                "kind": "once",
                "starts_at": datetime(2030, 1, 1, tzinfo=UTC),
                "ends_at": datetime(2030, 1, 2, tzinfo=UTC),
                "from_time": time(1),
            },
        ],
    )
    def test_the_database_refuses_a_window_that_is_neither_daily_nor_once(self, fields):
        with pytest.raises(IntegrityError), transaction.atomic():
            BlackoutWindow.objects.create(name="w", **fields)
        assert not BlackoutWindow.objects.exists()
