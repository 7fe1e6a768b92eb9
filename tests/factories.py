"""factory_boy factories for the scheduler's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from scheduler_app.models import BlackoutWindow, Calendar, CalendarDay, ScheduledTask, TaskExecution
from scheduler_app.runtime.summaries import EndedRun, day_stats_add, tasks_refresh_latest


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


def user_with(username: str, *codenames: str, **fields):
    """A user holding exactly these scheduler_app permissions (codenames), with the given model fields."""
    user = UserFactory(username=username, **fields)
    if codenames:
        user.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="scheduler_app", codename__in=codenames)
        )
    return user


def operator_user(username: str = "operator"):
    """A user with every scheduler_app permission: neither staff nor superuser, so the rules decide."""
    codenames = Permission.objects.filter(content_type__app_label="scheduler_app").values_list("codename", flat=True)
    return user_with(username, *codenames)


class ScheduledTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduledTask

    name = factory.Sequence(lambda n: f"task-{n}")
    task_type = ScheduledTask.TaskType.COMMON_TASK
    interval_seconds = 60
    timezone = "Asia/Shanghai"
    config = factory.LazyFunction(lambda: {"task_action": "example_task", "steps": 2, "duration_seconds": 0})


class TaskExecutionFactory(factory.django.DjangoModelFactory):
    """An execution row in any state, written as the lifecycle would leave it: the task's stored latest
    execution and, for an ended run, the day statistics are kept true (runtime.summaries)."""

    class Meta:
        model = TaskExecution

    task = factory.SubFactory(ScheduledTaskFactory)
    status = TaskExecution.Status.PENDING
    trigger = TaskExecution.Trigger.MANUAL

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        execution = super()._create(model_class, *args, **kwargs)
        if execution.status in TaskExecution.TERMINAL_STATUSES:
            day_stats_add(
                ended=[EndedRun(execution.task_id, execution.status, execution.start_time, execution.duration_seconds)]
            )
        tasks_refresh_latest(task_ids=[execution.task_id])
        return execution


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
