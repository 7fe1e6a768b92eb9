"""django-filter FilterSets of the API: task list and execution lists (filters, search, ordering)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.db.models import F, Q, QuerySet
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services.tasks import MAX_TASK_ID


class SafeIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 datetime that still exists once converted to UTC (no year 0 or 10000), handed on in
    UTC: a database need not accept every offset Python does (PostgreSQL refuses -18:53)."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is not None:
            try:
                parsed = parsed.astimezone(UTC)
            except OverflowError:
                raise forms.ValidationError("The date is out of range.", code="invalid") from None
        return parsed


class SafeIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = SafeIsoDateTimeField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.Filter):
    """An object id: a whole number in the range of the primary keys (anything else is a 400)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_TASK_ID)
        super().__init__(*args, **kwargs)


class NullsLastOrderingFilter(filters.OrderingFilter):
    """Ordering where rows without a value (no next run, never ran) come last, with the id as tie-breaker."""

    def filter(self, qs: QuerySet, value: list[str] | None) -> QuerySet:
        if not value:
            return qs
        ordering = []
        for param in value:
            if not param:
                continue
            name = self.get_ordering_value(param)
            descending = name.startswith("-")
            expression = F(name.lstrip("-"))
            ordering.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
        if not ordering:
            return qs
        return qs.order_by(*ordering, "-pk" if value[0].startswith("-") else "pk")


class TaskFilter(filters.FilterSet):
    task_type = filters.ChoiceFilter(choices=ScheduledTask.TaskType.choices)
    enabled = filters.BooleanFilter()
    paused = filters.BooleanFilter()
    schedule_status = filters.ChoiceFilter(
        choices=ScheduledTask.ScheduleStatus.choices, help_text="The computed schedule status."
    )
    search = filters.CharFilter(method="filter_search", max_length=100, help_text="Part of the name or description.")
    ordering = NullsLastOrderingFilter(
        fields=(
            "name",
            "id",
            "task_type",
            "created_at",
            "updated_at",
            "next_run_time",
            "latest_execution_time",
            "schedule_status",
        ),
        help_text="Sort key; prefix with - for descending. Default: name.",
    )

    class Meta:
        model = ScheduledTask
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class TaskExecutionFilter(filters.FilterSet):
    """Filters of one task's history."""

    status = filters.MultipleChoiceFilter(choices=TaskExecution.Status.choices, help_text="Repeat for several.")
    trigger = filters.MultipleChoiceFilter(choices=TaskExecution.Trigger.choices, help_text="Repeat for several.")
    since = SafeIsoDateTimeFilter(
        field_name="start_time", lookup_expr="gte", help_text="Started at or after (ISO 8601); excludes unstarted runs."
    )
    until = SafeIsoDateTimeFilter(
        field_name="start_time", lookup_expr="lt", help_text="Started before (ISO 8601); excludes unstarted runs."
    )
    ordering = NullsLastOrderingFilter(
        fields=("id", "start_time", "end_time", "duration_seconds", "scheduled_for"),
        help_text="Sort key; prefix with - for descending. Default: -id (newest first).",
    )

    class Meta:
        model = TaskExecution
        fields: list[str] = []


class ExecutionFilter(TaskExecutionFilter):
    """Filters of the list of all executions."""

    task = IdFilter(field_name="task_id", help_text="Only the runs of this task.")
    parent = IdFilter(field_name="parent_id", help_text="Only the child runs of this execution.")

    class Meta(TaskExecutionFilter.Meta):
        pass
