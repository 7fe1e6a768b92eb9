"""factory_boy factories for the scheduler's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from scheduler_app.models import ScheduledTask, TaskExecution


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
    class Meta:
        model = TaskExecution

    task = factory.SubFactory(ScheduledTaskFactory)
    status = TaskExecution.Status.PENDING
    trigger = TaskExecution.Trigger.MANUAL
