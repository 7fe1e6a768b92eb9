"""API serializers: input serializers check types and ranges, output serializers render; no writes here."""

from __future__ import annotations

from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from django.db.models import NOT_PROVIDED
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scheduler_app.conf import scheduler_settings
from scheduler_app.models import Calendar, ScheduledTask, TaskExecution, config_problem
from scheduler_app.occurrences import MAX_JITTER_SECONDS
from scheduler_app.selectors import schedule_description
from scheduler_app.services.tasks import EDITABLE_FIELDS, MAX_TASK_ID

# PositiveIntegerField's range on every database we support.
INT_MAX = 2_147_483_647
MAX_RETRY_BACKOFF = 100.0
MAX_COUNT = 100
MAX_CALENDAR_N = 366


def _has_surrogates(value: Any) -> bool:
    """Lone UTF-16 surrogates (valid in JSON, not in UTF-8) anywhere in a JSON value."""
    if isinstance(value, str):
        return any(0xD800 <= ord(char) <= 0xDFFF for char in value)
    if isinstance(value, dict):
        return any(_has_surrogates(key) or _has_surrogates(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_surrogates(item) for item in value)
    return False


def validate_config_object(value: Any) -> dict[str, Any]:
    if _has_surrogates(value):
        raise serializers.ValidationError("The config contains text that is not valid Unicode.")
    problem = config_problem(value)
    if problem:
        raise serializers.ValidationError(problem)
    return value


class ZonedDateTimeField(serializers.DateTimeField):
    """An aware datetime rendered in its own timezone (a schedule's), not converted to the server's."""

    def to_representation(self, value: Any) -> str | None:
        return None if value is None else value.isoformat()


# ---------------------------------------------------------------------------------------------- tasks


class CalendarNameField(serializers.SlugRelatedField):
    """A calendar, named by its name in and out ("SSE"); null for none."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("required", False)
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", Calendar.objects.all())
        super().__init__(slug_field="name", **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        # PostgreSQL refuses NUL in any text it is sent, even in a lookup: no name can hold one.
        if isinstance(data, str):
            ProhibitNullCharactersValidator()(data)
        return super().to_internal_value(data)


class TaskInputSerializer(serializers.Serializer):
    """The editable fields of a task. Types and ranges here; the invariants in the task service."""

    name = serializers.CharField(max_length=100)
    task_type = serializers.ChoiceField(choices=ScheduledTask.TaskType.choices)
    cron_expression = serializers.CharField(max_length=100, allow_null=True, allow_blank=True, required=False)
    interval_seconds = serializers.IntegerField(min_value=1, max_value=INT_MAX, allow_null=True, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    enabled = serializers.BooleanField(required=False)
    paused = serializers.BooleanField(required=False)
    description = serializers.CharField(allow_blank=True, required=False, trim_whitespace=False)
    config = serializers.JSONField(required=False, validators=[validate_config_object])
    max_retries = serializers.IntegerField(min_value=0, max_value=INT_MAX, required=False)
    retry_interval = serializers.IntegerField(min_value=0, max_value=INT_MAX, required=False)
    retry_backoff = serializers.FloatField(min_value=1.0, max_value=MAX_RETRY_BACKOFF, required=False)
    timeout_seconds = serializers.IntegerField(min_value=1, max_value=INT_MAX, allow_null=True, required=False)
    overlap_policy = serializers.ChoiceField(choices=ScheduledTask.OverlapPolicy.choices, required=False)
    misfire_grace_seconds = serializers.IntegerField(min_value=0, max_value=INT_MAX, required=False)
    catch_up = serializers.ChoiceField(choices=ScheduledTask.CatchUp.choices, required=False)
    run_at = serializers.DateTimeField(allow_null=True, required=False, help_text="A one-shot task's instant.")
    calendar = CalendarNameField(help_text="The calendar's name: runs only on its open days (calendar_rule).")
    calendar_rule = serializers.ChoiceField(choices=ScheduledTask.CalendarRule.choices, required=False)
    calendar_n = serializers.IntegerField(min_value=0, max_value=MAX_CALENDAR_N, allow_null=True, required=False)
    event_calendar = CalendarNameField(help_text="For calendar_rule after_event (T+n): the event days' calendar.")
    valid_from = serializers.DateTimeField(allow_null=True, required=False)
    valid_until = serializers.DateTimeField(allow_null=True, required=False)
    jitter_seconds = serializers.IntegerField(min_value=0, max_value=MAX_JITTER_SECONDS, required=False)
    paused_until = serializers.DateTimeField(allow_null=True, required=False)
    retention_days = serializers.IntegerField(min_value=0, max_value=INT_MAX, allow_null=True, required=False)
    retention_max_runs = serializers.IntegerField(min_value=0, max_value=INT_MAX, allow_null=True, required=False)

    def validate_cron_expression(self, value: str | None) -> str | None:
        return value.strip() or None if isinstance(value, str) else value


def task_replace_defaults() -> dict[str, Any]:
    """What PUT (a full replace) gives every editable field that the request leaves out."""
    defaults: dict[str, Any] = {}
    for name in EDITABLE_FIELDS:
        field = ScheduledTask._meta.get_field(name)
        if field.default is not NOT_PROVIDED or field.null:
            defaults[name] = field.get_default()
    return defaults


class TaskOutputSerializer(serializers.ModelSerializer):
    """A task: every model field plus the computed columns of selectors.task_list()."""

    created_by_username = serializers.CharField(read_only=True, allow_null=True)
    updated_by_username = serializers.CharField(read_only=True, allow_null=True)
    latest_execution_id = serializers.IntegerField(read_only=True, allow_null=True)
    latest_execution_status = serializers.ChoiceField(
        choices=TaskExecution.Status.choices, read_only=True, allow_null=True
    )
    latest_execution_time = serializers.DateTimeField(read_only=True, allow_null=True)
    latest_execution_progress = serializers.FloatField(read_only=True, allow_null=True)
    latest_execution_current_item = serializers.CharField(read_only=True, allow_null=True)
    schedule_status = serializers.ChoiceField(choices=ScheduledTask.ScheduleStatus.choices, read_only=True)
    next_run_time = serializers.DateTimeField(read_only=True, allow_null=True)
    schedule_description = serializers.SerializerMethodField()
    # By name, as the input takes them (annotated by selectors.task_page, so a page costs no query more).
    calendar = serializers.CharField(source="calendar_name", read_only=True, allow_null=True)
    event_calendar = serializers.CharField(source="event_calendar_name", read_only=True, allow_null=True)

    class Meta:
        model = ScheduledTask
        fields = [
            *(field.name for field in ScheduledTask._meta.concrete_fields),
            "created_by_username",
            "updated_by_username",
            "latest_execution_id",
            "latest_execution_status",
            "latest_execution_time",
            "latest_execution_progress",
            "latest_execution_current_item",
            "schedule_status",
            "next_run_time",
            "schedule_description",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_schedule_description(self, task: ScheduledTask) -> str:
        return schedule_description(task)


# ---------------------------------------------------------------------------------------------- executions


class ExecutionOutputSerializer(serializers.ModelSerializer):
    """An execution: every model field, `task` and `parent` as ids, plus `task_name`."""

    task_name = serializers.CharField(read_only=True)

    class Meta:
        model = TaskExecution
        fields = [field.name for field in TaskExecution._meta.concrete_fields]
        fields.insert(2, "task_name")
        read_only_fields = fields


class ExecutionDetailSerializer(ExecutionOutputSerializer):
    """An execution with the ids of its child runs (workflow steps, retries, resumes)."""

    children = serializers.ListField(child=serializers.IntegerField(), source="children_ids", read_only=True)

    class Meta(ExecutionOutputSerializer.Meta):
        fields = [*ExecutionOutputSerializer.Meta.fields, "children"]
        read_only_fields = fields


# ---------------------------------------------------------------------------------------------- small shapes


class ErrorSerializer(serializers.Serializer):
    """DRF's error shape; `code` names the reason of a 409 (run_active, task_in_use, invalid_state)."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)


class DayStatsSerializer(serializers.Serializer):
    date = serializers.DateField()
    success = serializers.IntegerField()
    failed = serializers.IntegerField()
    other = serializers.IntegerField()
    total = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    success = serializers.IntegerField()
    failed = serializers.IntegerField(help_text="failed + terminated + completed (workflows with failed steps).")
    running = serializers.IntegerField(help_text="running + paused.")
    pending = serializers.IntegerField()
    skipped = serializers.IntegerField()
    success_rate = serializers.FloatField(help_text="success / (success + failed), from 0 to 1.")
    avg_duration_seconds = serializers.FloatField(allow_null=True)
    latest_execution_time = serializers.DateTimeField(allow_null=True)
    by_day = DayStatsSerializer(many=True)


class StatsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=366, default=30, help_text="Days in the by_day series.")


class NextRunsQuerySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, default=5)
    after = serializers.DateTimeField(required=False, help_text="The runs at or after this instant (default: now).")


class PreviewRunSerializer(serializers.Serializer):
    at = ZonedDateTimeField(help_text="When the run starts, in the schedule's timezone.")
    at_viewer = ZonedDateTimeField(help_text="The same instant in the viewer's timezone.")
    planned = ZonedDateTimeField(help_text="The occurrence it runs for (differs with jitter or a deferral).")
    marks = serializers.ListField(
        child=serializers.CharField(),
        help_text="dst_owed, dst_first_pass, dst_second_pass, deferred, jitter, half_day, beyond_calendar.",
    )
    note = serializers.CharField(help_text="What moved it, in words; empty when nothing did.")
    owed_for = serializers.CharField(allow_null=True, help_text="The wall time a spring jump skipped, if owed.")


class PreviewRemovedSerializer(serializers.Serializer):
    planned = ZonedDateTimeField(help_text="When the cron expression (or interval) would have fired.")
    planned_viewer = ZonedDateTimeField()
    reason = serializers.CharField()
    mark = serializers.CharField(help_text="calendar (one entry per day), blackout, covered, paused, dst_gap.")


class NextRunsSerializer(serializers.Serializer):
    description = serializers.CharField()
    timezone = serializers.CharField()
    next_runs = serializers.ListField(child=ZonedDateTimeField(), help_text="When each run starts, schedule's zone.")
    viewer_timezone = serializers.CharField(help_text="The request's active timezone.")
    runs = PreviewRunSerializer(many=True)
    removed = PreviewRemovedSerializer(many=True, help_text="Occurrences before the last run that do not run.")
    removed_truncated = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())


class ReasonInputSerializer(serializers.Serializer):
    """The body of a manual action: an optional reason, kept with the action's record."""

    reason = serializers.CharField(
        max_length=500, allow_blank=True, required=False, default="", help_text="Why (kept in the action's record)."
    )


class TriggerInputSerializer(ReasonInputSerializer):
    config = serializers.JSONField(
        required=False,
        validators=[validate_config_object],
        help_text="Config keys that replace the task's for this run only, validated like the task's config.",
    )


class MarkInputSerializer(ReasonInputSerializer):
    status = serializers.ChoiceField(
        choices=[TaskExecution.Status.SUCCESS, TaskExecution.Status.FAILED], help_text="How the run is to count."
    )


class PauseInputSerializer(ReasonInputSerializer):
    until = serializers.DateTimeField(
        allow_null=True, required=False, help_text="Resume by itself at this instant (in the future)."
    )


class TaskChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


HISTORY_TYPES = {"+": "created", "~": "changed", "-": "deleted"}


class TaskVersionSerializer(serializers.Serializer):
    """One version of a task: when, by whom, how (created, changed, deleted), why, and what changed."""

    history_id = serializers.IntegerField(source="record.history_id")
    history_date = serializers.DateTimeField(source="record.history_date")
    history_type = serializers.SerializerMethodField()
    history_user = serializers.SerializerMethodField()
    history_change_reason = serializers.CharField(source="record.history_change_reason", allow_null=True)
    changes = TaskChangeSerializer(many=True)

    def get_history_type(self, version) -> str:
        return HISTORY_TYPES.get(version.record.history_type, version.record.history_type)

    def get_history_user(self, version) -> str | None:
        user = version.record.history_user
        return user.get_username() if user is not None else None


class OperatorActionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    action = serializers.CharField()
    actor_name = serializers.CharField()
    task = serializers.IntegerField(source="task_id", allow_null=True)
    task_name = serializers.CharField()
    execution_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()
    details = serializers.JSONField()


class SchedulePreviewInputSerializer(serializers.Serializer):
    cron_expression = serializers.CharField(max_length=100, allow_null=True, allow_blank=True, required=False)
    interval_seconds = serializers.IntegerField(min_value=1, max_value=INT_MAX, allow_null=True, required=False)
    run_at = serializers.DateTimeField(allow_null=True, required=False)
    timezone = serializers.CharField(max_length=64, required=False)
    count = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, default=5)
    calendar = CalendarNameField()
    calendar_rule = serializers.ChoiceField(
        choices=ScheduledTask.CalendarRule.choices, required=False, allow_null=True, allow_blank=True
    )
    calendar_n = serializers.IntegerField(min_value=0, max_value=MAX_CALENDAR_N, allow_null=True, required=False)
    event_calendar = CalendarNameField()
    valid_from = serializers.DateTimeField(allow_null=True, required=False)
    valid_until = serializers.DateTimeField(allow_null=True, required=False)
    jitter_seconds = serializers.IntegerField(min_value=0, max_value=MAX_JITTER_SECONDS, required=False, default=0)
    task_id = serializers.IntegerField(
        min_value=1, max_value=MAX_TASK_ID, allow_null=True, required=False, help_text="The task being edited."
    )
    after = serializers.DateTimeField(
        allow_null=True, required=False, help_text="The runs at or after this instant (default: now)."
    )

    def validate_timezone(self, value: str) -> str:
        return value or scheduler_settings.TIMEZONE


class SchedulePreviewSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    description = serializers.CharField(allow_null=True)
    timezone = serializers.CharField(allow_null=True)
    next_runs = serializers.ListField(child=ZonedDateTimeField(), help_text="When each run starts, schedule's zone.")
    viewer_timezone = serializers.CharField(allow_null=True)
    runs = PreviewRunSerializer(many=True)
    removed = PreviewRemovedSerializer(many=True)
    removed_truncated = serializers.BooleanField()
    notes = serializers.ListField(child=serializers.CharField())
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class WorkflowValidateInputSerializer(serializers.Serializer):
    config = serializers.JSONField()
    task_id = serializers.IntegerField(
        min_value=1, max_value=MAX_TASK_ID, allow_null=True, required=False, help_text="The workflow being edited."
    )

    def validate_config(self, value: Any) -> Any:
        if _has_surrogates(value):
            raise serializers.ValidationError("The config contains text that is not valid Unicode.")
        return value


class WorkflowValidateSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    message = serializers.CharField()
    errors = serializers.ListField(child=serializers.CharField())


class SchedulerNodeSerializer(serializers.Serializer):
    node_id = serializers.CharField()
    host = serializers.CharField()
    pid = serializers.IntegerField()
    started_at = serializers.DateTimeField()
    last_heartbeat = serializers.DateTimeField()
    version_seen = serializers.IntegerField()
    jobs = serializers.IntegerField()


class SchedulerStatusSerializer(serializers.Serializer):
    online = serializers.BooleanField()
    leader = SchedulerNodeSerializer(allow_null=True)
    standbys = SchedulerNodeSerializer(many=True)
    jobs = serializers.IntegerField(help_text="Jobs in the job store.")
    version = serializers.IntegerField(help_text="The schedule version.")
    changed_at = serializers.DateTimeField(allow_null=True)
    last_heartbeat = serializers.DateTimeField(allow_null=True, help_text="Newest heartbeat of any scheduler process.")
    checked_at = serializers.DateTimeField()


# ---------------------------------------------------------------------------------------------- actions


class ActionParameterSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.ChoiceField(choices=["string", "integer", "number", "boolean", "date", "codes"])
    default = serializers.JSONField(allow_null=True)
    help = serializers.CharField(allow_blank=True)
    required = serializers.BooleanField()
    choices = serializers.ListField(child=serializers.JSONField())
    minimum = serializers.FloatField(allow_null=True)
    maximum = serializers.FloatField(allow_null=True)


class ActionSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The task_action value, or `command` / `workflow`.")
    kind = serializers.ChoiceField(choices=["action", "command", "workflow"])
    task_types = serializers.ListField(child=serializers.CharField(), help_text="Task types that can run it.")
    description = serializers.CharField(allow_blank=True)
    parameters = ActionParameterSerializer(many=True)
    schema = serializers.DictField(help_text="The JSON schema of a config that runs it.")
