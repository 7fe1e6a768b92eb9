"""factory_boy factories for the scheduler's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from scheduler_app.models import BlackoutWindow, Calendar, CalendarDay, ScheduledTask, TaskExecution


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class ScheduledTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduledTask

    name = factory.Sequence(lambda n: f"task-{n}")
    task_type = ScheduledTask.TaskType.COMMON_TASK
    interval_seconds = 60
    timezone = "Asia/Shanghai"
    config = factory.LazyFunction(lambda: {"task_action": "example_task", "steps": 2, "duration_seconds": 0})


class TaskExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskExecution

    task = factory.SubFactory(ScheduledTaskFactory)
    status = TaskExecution.Status.PENDING
    trigger = TaskExecution.Trigger.MANUAL


class CalendarFactory(factory.django.DjangoModelFactory):
    """A calendar written directly (tests of the calendar services write through them instead)."""

    class Meta:
        model = Calendar
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"calendar-{n}")
    weekdays = "1-5"
    revision = 1

    @factory.post_generation
    def days(self, create, extracted, **kwargs):
        """days=[(date, kind, note), ...] or [date, ...] (closed)."""
        rows = []
        for item in extracted or ():
            day, kind, note = (item, "closed", "") if not isinstance(item, tuple) else (*item, "")[:3]
            rows.append(CalendarDay(calendar=self, date=day, kind=kind, note=note))
        CalendarDay.objects.bulk_create(rows)


class BlackoutWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BlackoutWindow

    name = factory.Sequence(lambda n: f"window-{n}")
    kind = BlackoutWindow.Kind.DAILY
    action = BlackoutWindow.Action.SKIP
    timezone = "Asia/Shanghai"
