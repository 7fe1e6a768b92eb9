"""API views: parse with an input serializer, call one service or selector, render with an output serializer.

No view writes a model itself (style rule R12): every write goes through scheduler_app.services, so
the API, the admin and the scheduler share one behaviour. Errors are mapped in exception_handler.py.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.utils.translation import gettext
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.generics import get_object_or_404
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scheduler_app import selectors
from scheduler_app.actions import action_catalogue
from scheduler_app.api import serializers as s
from scheduler_app.api.exception_handler import exception_handler
from scheduler_app.api.filters import ExecutionFilter, TaskExecutionFilter, TaskFilter
from scheduler_app.api.pagination import StandardPagination
from scheduler_app.api.permissions import SchedulerPermission
from scheduler_app.api.schema import SchedulerSchema
from scheduler_app.calendar_rules import day_rule_errors
from scheduler_app.conf import scheduler_settings
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.schedules import InvalidSchedule, get_zone
from scheduler_app.services import executions as execution_services
from scheduler_app.services import permissions as rules
from scheduler_app.services import tasks as task_services
from scheduler_app.triggers import TaskTiming

ERROR = s.ErrorSerializer
FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="Field name → list of messages.")
NOT_FOUND = OpenApiResponse(ERROR, description="No such object.")
CONFLICT = OpenApiResponse(ERROR, description="The current state does not allow it; `code` says why.")


def _task_out(task: ScheduledTask) -> dict[str, Any]:
    return s.TaskOutputSerializer(selectors.task_get(pk=task.pk)).data


def _execution_out(execution: TaskExecution) -> dict[str, Any]:
    execution.refresh_from_db()
    return s.ExecutionOutputSerializer(selectors.executions_with_task_names([execution])[0]).data


def _reason(request: Request) -> str:
    """The optional `reason` of a manual action's body (400 when it is not a short string)."""
    body = s.ReasonInputSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return body.validated_data["reason"]


class SchedulerAPIMixin:
    """What every scheduler endpoint is, whatever the project's REST_FRAMEWORK settings: JSON bodies, the
    filters the contract names, domain errors mapped to 400/404/409 and the schema that documents them.
    Authentication, renderers and throttles stay the project's."""

    parser_classes = [JSONParser]
    filter_backends = [DjangoFilterBackend]
    schema = SchedulerSchema()

    def get_exception_handler(self):
        return exception_handler


class SchedulerViewMixin(SchedulerAPIMixin):
    permission_classes = [SchedulerPermission]
    pagination_class = StandardPagination
    required_permissions: dict[str, rules.Rule] = {}


# ---------------------------------------------------------------------------------------------- tasks


@extend_schema_view(
    list=extend_schema(summary="List tasks", responses={200: s.TaskOutputSerializer(many=True), 400: FIELD_ERRORS}),
    retrieve=extend_schema(summary="Read a task", responses={200: s.TaskOutputSerializer, 404: NOT_FOUND}),
    create=extend_schema(
        summary="Create a task",
        request=s.TaskInputSerializer,
        responses={201: s.TaskOutputSerializer, 400: FIELD_ERRORS},
    ),
    update=extend_schema(
        summary="Replace a task (fields left out take their defaults)",
        request=s.TaskInputSerializer,
        responses={200: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a task",
        request=s.TaskInputSerializer(partial=True),
        responses={200: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    ),
    destroy=extend_schema(
        summary="Delete a task and its history (refused while a workflow uses it or a run has started)",
        responses={204: None, 404: NOT_FOUND, 409: CONFLICT},
    ),
)
class TaskViewSet(SchedulerViewMixin, viewsets.GenericViewSet):
    """Scheduled tasks: CRUD, state changes and "run now"."""

    queryset = ScheduledTask.objects.all()
    serializer_class = s.TaskOutputSerializer
    filterset_class = TaskFilter
    required_permissions = {
        "list": rules.TASK_VIEW,
        "retrieve": rules.TASK_VIEW,
        "next_runs": rules.TASK_VIEW,
        "workflow_tasks": rules.TASK_VIEW,
        "history": rules.TASK_VIEW,
        "actions": rules.TASK_VIEW,
        "stats": rules.EXECUTION_VIEW,  # statistics of the task's runs
        "create": rules.TASK_ADD,
        "copy": rules.TASK_COPY,
        "update": rules.TASK_CHANGE,
        "partial_update": rules.TASK_CHANGE,
        "enable": rules.TASK_CHANGE,
        "disable": rules.TASK_CHANGE,
        "pause": rules.TASK_CHANGE,
        "resume": rules.TASK_CHANGE,
        "destroy": rules.TASK_DELETE,
        "trigger": rules.TASK_RUN,
    }

    def get_queryset(self):
        return selectors.task_list().order_by("name")

    def _page(self, queryset) -> list[ScheduledTask]:
        # Paginate ids only (an index scan), then load the page with its computed fields.
        ids = self.paginate_queryset(queryset.values_list("pk", flat=True))
        return selectors.task_page(ids=ids)

    def _task(self) -> ScheduledTask:
        """The task of a detail route, without filters or annotations (writes re-read it afterwards)."""
        return get_object_or_404(ScheduledTask, pk=self.kwargs["pk"])

    def list(self, request: Request) -> Response:
        page = self._page(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(s.TaskOutputSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.TaskOutputSerializer(selectors.task_get(pk=pk)).data)

    def create(self, request: Request) -> Response:
        serializer = s.TaskInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        task = task_services.task_create(data=serializer.validated_data, user=request.user)
        return Response(_task_out(task), status=HTTPStatus.CREATED)

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        task = self._task()
        serializer = s.TaskInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if not partial:
            data = {**s.task_replace_defaults(), **data}
        task = task_services.task_update(task=task, data=data, user=request.user)
        return Response(_task_out(task))

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        task_services.task_delete(task=self._task(), user=request.user)
        return Response(status=HTTPStatus.NO_CONTENT)

    def _state_change(self, service) -> Response:
        reason = _reason(self.request)
        task = service(task=self._task(), user=self.request.user, reason=reason)
        return Response(_task_out(task))

    @extend_schema(
        summary="Enable (idempotent)",
        request=s.ReasonInputSerializer,
        responses={200: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, pk: str) -> Response:
        return self._state_change(task_services.task_enable)

    @extend_schema(
        summary="Disable (idempotent; refused while an enabled workflow uses the task)",
        request=s.ReasonInputSerializer,
        responses={200: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str) -> Response:
        return self._state_change(task_services.task_disable)

    @extend_schema(
        summary="Pause (idempotent); with `until`, resume by itself then",
        request=s.PauseInputSerializer,
        responses={200: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        body = s.PauseInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        task = task_services.task_pause(
            task=self._task(),
            user=request.user,
            until=body.validated_data.get("until"),
            reason=body.validated_data["reason"],
        )
        return Response(_task_out(task))

    @extend_schema(
        summary="Resume (idempotent)",
        request=s.ReasonInputSerializer,
        responses={200: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._state_change(task_services.task_resume)

    @extend_schema(
        summary="Copy: a disabled copy named <name>_副本",
        request=None,
        responses={201: s.TaskOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["post"])
    def copy(self, request: Request, pk: str) -> Response:
        task = task_services.task_copy(task=self._task(), user=request.user)
        return Response(_task_out(task), status=HTTPStatus.CREATED)

    @extend_schema(
        summary="Run now: queue a manual run (the scheduler process runs it), optionally with config overrides",
        request=s.TriggerInputSerializer,
        responses={202: s.ExecutionOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def trigger(self, request: Request, pk: str) -> Response:
        body = s.TriggerInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        execution = task_services.task_trigger(
            task=self._task(),
            user=request.user,
            config=body.validated_data.get("config"),
            reason=body.validated_data["reason"],
        )
        return Response(_execution_out(execution), status=HTTPStatus.ACCEPTED)

    @extend_schema(
        summary="Statistics of this task's runs",
        parameters=[s.StatsQuerySerializer],
        responses={200: s.StatsSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None)
    def stats(self, request: Request, pk: str) -> Response:
        query = s.StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        stats = selectors.task_stats(task=self._task(), days=query.validated_data["days"])
        return Response(s.StatsSerializer(stats).data)

    @extend_schema(
        summary="The readable schedule and the next N fire times (none for a manual task)",
        parameters=[s.NextRunsQuerySerializer],
        responses={200: s.NextRunsSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], url_path="next-runs", filterset_class=None, pagination_class=None)
    def next_runs(self, request: Request, pk: str) -> Response:
        query = s.NextRunsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        answer = selectors.task_next_runs(
            task=self._task(), count=query.validated_data["count"], now=query.validated_data.get("after")
        )
        return Response(s.NextRunsSerializer(answer).data)

    @extend_schema(
        summary="The steps of a workflow, in config order",
        responses={200: s.TaskOutputSerializer(many=True), 400: OpenApiResponse(ERROR), 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], url_path="workflow-tasks", filterset_class=None, pagination_class=None)
    def workflow_tasks(self, request: Request, pk: str) -> Response:
        steps = selectors.workflow_steps(task=self._task())
        return Response(s.TaskOutputSerializer(steps, many=True).data)

    @extend_schema(
        summary="The task's versions, newest first: who changed what, when, and why",
        responses={200: s.TaskVersionSerializer(many=True), 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def history(self, request: Request, pk: str) -> Response:
        task = self._task()
        page = self.paginate_queryset(selectors.task_history(task_id=task.pk))
        versions = selectors.task_versions(records=page)
        return self.get_paginated_response(s.TaskVersionSerializer(versions, many=True).data)

    @extend_schema(
        summary="The operators' actions on the task and its runs, newest first",
        responses={200: s.OperatorActionSerializer(many=True), 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def actions(self, request: Request, pk: str) -> Response:
        task = self._task()
        page = self.paginate_queryset(selectors.task_actions(task_id=task.pk))
        return self.get_paginated_response(s.OperatorActionSerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(
        summary="A task's run history, newest first",
        responses={200: s.ExecutionOutputSerializer(many=True), 400: FIELD_ERRORS, 404: NOT_FOUND},
    )
)
class TaskExecutionViewSet(SchedulerViewMixin, viewsets.GenericViewSet):
    """GET tasks/{task_pk}/executions/: one task's executions."""

    queryset = TaskExecution.objects.all()
    serializer_class = s.ExecutionOutputSerializer
    filterset_class = TaskExecutionFilter
    required_permissions = {"list": rules.EXECUTION_VIEW}

    def get_queryset(self):
        return selectors.execution_list().filter(task_id=self.kwargs["task_pk"])

    def list(self, request: Request, task_pk: str) -> Response:
        task = get_object_or_404(ScheduledTask.objects.only("pk", "name"), pk=task_pk)
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        for execution in page:
            execution.task_name = task.name
        return self.get_paginated_response(s.ExecutionOutputSerializer(page, many=True).data)


# ---------------------------------------------------------------------------------------------- executions


@extend_schema_view(
    list=extend_schema(
        summary="All executions, newest first",
        responses={200: s.ExecutionOutputSerializer(many=True), 400: FIELD_ERRORS},
    ),
    retrieve=extend_schema(summary="Read an execution", responses={200: s.ExecutionDetailSerializer, 404: NOT_FOUND}),
)
class ExecutionViewSet(SchedulerViewMixin, viewsets.GenericViewSet):
    """Executions: history and the operator's controls."""

    queryset = TaskExecution.objects.all()
    serializer_class = s.ExecutionOutputSerializer
    filterset_class = ExecutionFilter
    required_permissions = {
        "list": rules.EXECUTION_VIEW,
        "retrieve": rules.EXECUTION_VIEW,
        "pause": rules.EXECUTION_CONTROL,
        "resume": rules.EXECUTION_CONTROL,
        "terminate": rules.EXECUTION_CONTROL,
        "rerun": rules.EXECUTION_CONTROL,
        "mark": rules.EXECUTION_CONTROL,
    }

    def get_queryset(self):
        return selectors.execution_list()

    def _execution(self) -> TaskExecution:
        return get_object_or_404(TaskExecution, pk=self.kwargs["pk"])

    def list(self, request: Request) -> Response:
        page = selectors.executions_with_task_names(self.paginate_queryset(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(s.ExecutionOutputSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ExecutionDetailSerializer(selectors.execution_get(pk=pk)).data)

    @extend_schema(
        summary="Ask the runner to pause a running execution",
        request=s.ReasonInputSerializer,
        responses={200: s.ExecutionOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        execution = execution_services.execution_pause(
            execution=self._execution(), user=request.user, reason=_reason(request)
        )
        return Response(_execution_out(execution))

    @extend_schema(
        summary="Continue a paused run (200), or restart a failed or terminated one from its checkpoint (202)",
        request=s.ReasonInputSerializer,
        responses={
            200: s.ExecutionOutputSerializer,
            202: OpenApiResponse(s.ExecutionOutputSerializer, description="The new run."),
            400: FIELD_ERRORS,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        execution = self._execution()
        resumed = execution_services.execution_resume(execution=execution, user=request.user, reason=_reason(request))
        status = HTTPStatus.OK if resumed.pk == execution.pk else HTTPStatus.ACCEPTED
        return Response(_execution_out(resumed), status=status)

    @extend_schema(
        summary="Cancel a pending run (200) or ask the runner to stop a started one (202)",
        request=s.ReasonInputSerializer,
        responses={
            200: s.ExecutionOutputSerializer,
            202: OpenApiResponse(s.ExecutionOutputSerializer, description="Termination requested."),
            400: FIELD_ERRORS,
            404: NOT_FOUND,
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"])
    def terminate(self, request: Request, pk: str) -> Response:
        execution = execution_services.execution_terminate(
            execution=self._execution(), user=request.user, reason=_reason(request) or None
        )
        status = HTTPStatus.ACCEPTED if execution.is_active else HTTPStatus.OK
        return Response(_execution_out(execution), status=status)

    @extend_schema(
        summary="Queue a new manual run of the same task",
        request=s.ReasonInputSerializer,
        responses={202: s.ExecutionOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def rerun(self, request: Request, pk: str) -> Response:
        execution = execution_services.execution_rerun(
            execution=self._execution(), user=request.user, reason=_reason(request)
        )
        return Response(_execution_out(execution), status=HTTPStatus.ACCEPTED)

    @extend_schema(
        summary="Mark a finished run success (from failed, terminated, completed) or failed (from success, completed)",
        request=s.MarkInputSerializer,
        responses={200: s.ExecutionOutputSerializer, 400: FIELD_ERRORS, 404: NOT_FOUND, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def mark(self, request: Request, pk: str) -> Response:
        body = s.MarkInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        execution = execution_services.execution_mark(
            execution=self._execution(),
            status=body.validated_data["status"],
            reason=body.validated_data["reason"],
            user=request.user,
        )
        return Response(_execution_out(execution))


# ---------------------------------------------------------------------------------------------- the rest


class StatsView(SchedulerAPIMixin, APIView):
    """GET stats/: statistics of all executions."""

    permission_classes = [SchedulerPermission]
    required_permissions = {"get": rules.EXECUTION_VIEW}

    @extend_schema(
        summary="Statistics of all runs",
        parameters=[s.StatsQuerySerializer],
        responses={200: s.StatsSerializer, 400: FIELD_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = s.StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(s.StatsSerializer(selectors.task_stats(days=query.validated_data["days"])).data)


class WorkflowValidateView(SchedulerAPIMixin, APIView):
    """POST workflows/validate/: check a workflow config without saving (a read: the task form's check)."""

    permission_classes = [SchedulerPermission]
    required_permissions = {"post": rules.TASK_FORM}

    @extend_schema(
        summary="Check a workflow config without saving it",
        request=s.WorkflowValidateInputSerializer,
        responses={200: s.WorkflowValidateSerializer, 400: FIELD_ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = s.WorkflowValidateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        errors = task_services.workflow_config_errors(
            config=serializer.validated_data["config"], workflow_id=serializer.validated_data.get("task_id")
        )
        message = gettext("The configuration is valid.") if not errors else "; ".join(errors)
        return Response(s.WorkflowValidateSerializer({"valid": not errors, "message": message, "errors": errors}).data)


class SchedulePreviewView(SchedulerAPIMixin, APIView):
    """POST schedules/preview/: describe a schedule (cron, interval or one-shot time, with its calendar
    rule, validity window and jitter) and list its next runs, marked, with the occurrences removed."""

    permission_classes = [SchedulerPermission]
    required_permissions = {"post": rules.TASK_FORM}

    @extend_schema(
        summary="Check a schedule; its description, next runs (marked) and removed occurrences",
        request=s.SchedulePreviewInputSerializer,
        responses={
            200: s.SchedulePreviewSerializer,
            400: OpenApiResponse(s.SchedulePreviewSerializer, description="valid is false; errors by field."),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            serializer = s.SchedulePreviewInputSerializer(data=request.data)
        except ParseError as error:
            return self._invalid({"non_field_errors": [str(error.detail)]})
        if not serializer.is_valid():
            return self._invalid({key: [str(m) for m in value] for key, value in _flat(serializer.errors).items()})
        data = serializer.validated_data
        cron, interval, run_at = data.get("cron_expression"), data.get("interval_seconds"), data.get("run_at")
        cron = cron.strip() or None if isinstance(cron, str) else None
        zone = data.get("timezone") or scheduler_settings.TIMEZONE
        if cron and interval:
            both = gettext("Set either a cron expression or an interval, not both.")
            return self._invalid({"interval_seconds": [both]})
        if run_at is not None and (cron or interval):
            once = gettext("A one-shot task runs at its time: leave the cron expression and the interval empty.")
            return self._invalid({"run_at": [once]})
        if not cron and not interval and run_at is None:
            return self._invalid({"cron_expression": [gettext("Give a cron expression or an interval.")]})
        try:
            get_zone(zone)
        except InvalidSchedule as error:
            return self._invalid({"timezone": [str(error)]})
        calendar, events = data.get("calendar"), data.get("event_calendar")
        rule = data.get("calendar_rule") or ScheduledTask.CalendarRule.OPEN_DAYS
        errors = day_rule_errors(
            rule=rule,
            n=data.get("calendar_n"),
            has_calendar=calendar is not None,
            has_event_calendar=events is not None,
            has_days=bool(cron or interval),
        )
        valid_from, valid_until = data.get("valid_from"), data.get("valid_until")
        if valid_from is not None and valid_until is not None and valid_from >= valid_until:
            errors["valid_until"] = [gettext("The validity window must end after it starts.")]
        if errors:
            return self._invalid(errors)
        timing = TaskTiming(
            cron_expression=cron,
            interval_seconds=interval,
            timezone=zone,
            run_at=run_at,
            valid_from=valid_from,
            valid_until=valid_until,
            calendar_id=calendar.pk if calendar is not None else None,
            calendar_rule=rule,
            calendar_n=data.get("calendar_n"),
            event_calendar_id=events.pk if events is not None else None,
        )
        try:
            answer = selectors.schedule_preview(
                timing=timing,
                count=data["count"],
                task_id=data.get("task_id"),
                jitter_seconds=data.get("jitter_seconds") or 0,
                now=data.get("after"),
            )
        except InvalidSchedule as error:
            return self._invalid({"cron_expression" if cron else "interval_seconds": [str(error)]})
        return Response(s.SchedulePreviewSerializer({**answer, "valid": True, "errors": {}}).data)

    @staticmethod
    def _invalid(errors: dict[str, list[str]]) -> Response:
        answer = {
            "valid": False,
            "description": None,
            "timezone": None,
            "next_runs": [],
            "viewer_timezone": None,
            "runs": [],
            "removed": [],
            "removed_truncated": False,
            "notes": [],
            "errors": errors,
        }
        return Response(s.SchedulePreviewSerializer(answer).data, status=HTTPStatus.BAD_REQUEST)


def _flat(errors: Any) -> dict[str, list[str]]:
    if isinstance(errors, dict):
        return {key: value if isinstance(value, list) else [str(value)] for key, value in errors.items()}
    return {"non_field_errors": [str(error) for error in errors]}


class ActionListView(SchedulerAPIMixin, APIView):
    """GET actions/: what a task can run, each registered action with its parameters (the task form's picker)."""

    permission_classes = [SchedulerPermission]
    required_permissions = {"get": rules.TASK_FORM}
    filter_backends = []  # a fixed list: nothing to filter

    @extend_schema(
        summary="The registered actions with their parameter schemas, plus the command and workflow kinds",
        responses={200: s.ActionSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(s.ActionSerializer(action_catalogue(), many=True).data)


class SchedulerStatusView(SchedulerAPIMixin, APIView):
    """GET scheduler/status/: is a scheduler process alive, and which one leads."""

    permission_classes = [SchedulerPermission]
    required_permissions = {"get": rules.SCHEDULER_VIEW}

    @extend_schema(summary="Scheduler health: leader, heartbeats, jobs, version", responses=s.SchedulerStatusSerializer)
    def get(self, request: Request) -> Response:
        return Response(s.SchedulerStatusSerializer(selectors.scheduler_status()).data)
