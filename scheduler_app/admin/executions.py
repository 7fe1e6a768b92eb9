"""Execution admin: a read-only history with live progress and the controls the state allows.

Terminate, pause, resume and rerun call scheduler_app.services.executions, like the API, and need
EXECUTION_CONTROL (services.permissions: `run_scheduledtask` and the view permission). Progress is
polled from a small JSON view (`progress/?ids=`), which needs EXECUTION_VIEW like the pages.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from scheduler_app import selectors
from scheduler_app.admin import views
from scheduler_app.admin.common import (
    PageLoadingChangeList,
    RulePermissionsMixin,
    SchedulerBannerMixin,
    badge,
    duration_text,
    execution_actions,
    local_time,
    pretty_json,
    progress_bar,
    safe_next,
)
from scheduler_app.admin.dates import date_drilldown
from scheduler_app.exceptions import SchedulerError
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.runtime.transitions import MARKABLE
from scheduler_app.services import executions as execution_services
from scheduler_app.services import permissions as rules
from scheduler_app.services.audit import REASON_MAX_LENGTH
from scheduler_app.services.executions import MARK_ACTIONS
from scheduler_app.workflows import WorkflowConfigError, parse_workflow_config

MAX_PROGRESS_IDS = 200

CONTROLS: dict[str, dict[str, Any]] = {
    "terminate": {"service": execution_services.execution_terminate, "label": _("Terminate")},
    "pause": {"service": execution_services.execution_pause, "label": _("Pause")},
    "resume": {"service": execution_services.execution_resume, "label": _("Resume")},
    "rerun": {"service": execution_services.execution_rerun, "label": _("Rerun")},
}


def mark_choices(execution: TaskExecution) -> list[tuple[str, str]]:
    """The marks the run's state allows, as (status, button label)."""
    labels = {
        TaskExecution.Status.SUCCESS: gettext("Mark success"),
        TaskExecution.Status.FAILED: gettext("Mark failed"),
    }
    return [(status, labels[status]) for status, leaves in MARKABLE.items() if execution.status in leaves]


def _control_message(verb: str, before: TaskExecution, after: TaskExecution) -> SafeString:
    if after.pk != before.pk:  # resume of a finished run, or rerun: a new run was queued
        url = reverse("admin:scheduler_app_taskexecution_change", args=[after.pk])
        return format_html(
            gettext('Queued <a href="{url}">execution #{id}</a>; the scheduler starts it.'), url=url, id=after.pk
        )
    texts = {
        "terminate": gettext("Execution #%(id)s was cancelled.")
        if not after.is_active
        else gettext("Execution #%(id)s was asked to stop; it ends within a second or two."),
        "pause": gettext("Execution #%(id)s was asked to pause."),
        "resume": gettext("Execution #%(id)s continues."),
    }
    return format_html("{}", texts[verb] % {"id": after.pk})


@admin.register(TaskExecution)
class TaskExecutionAdmin(RulePermissionsMixin, SchedulerBannerMixin, admin.ModelAdmin):
    permission_rules = {
        "view": rules.EXECUTION_VIEW,
        "delete": rules.EXECUTION_DELETE,
        "run": rules.EXECUTION_CONTROL,  # the controls: terminate, pause, resume, rerun
    }
    list_display = (
        "id",
        "task_link",
        "status_column",
        "trigger",
        "scheduled_column",
        "started_column",
        "duration_column",
        "progress_column",
        "worker",
    )
    list_display_links = ("id",)
    list_filter = ("status", "trigger", ("task", admin.RelatedOnlyFieldListFilter))
    search_fields = ("task__name", "=id", "current_item", "error_message")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = (
        "task_link",
        "status_column",
        "progress_detail",
        "duration_column",
        "timing",
        "result_pretty",
        "error_pre",
        "output_pre",
        "parent_link",
        "children_table",
        "workflow_graph",
        "liveness",
        "mark_run",
        "triggered_by",
    )
    fieldsets = [
        (None, {"fields": ["task_link", "status_column", "trigger", "progress_detail", "timing", "retry_count"]}),
        (_("Result"), {"fields": ["config_override", "result_pretty", "error_pre", "output_pre"]}),
        (_("Related runs"), {"fields": ["parent_link", "children_table", "workflow_graph"]}),
        (_("Where it ran"), {"fields": ["triggered_by", "liveness"], "classes": ["collapse"]}),
    ]

    class Media:
        css = {"all": ["scheduler_app/admin.css"]}
        js = ["scheduler_app/live.js"]

    def get_fieldsets(self, request: HttpRequest, obj: TaskExecution | None = None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and self.has_run_permission(request) and mark_choices(obj):
            fieldsets.append((_("Correct the outcome"), {"fields": ["mark_run"]}))
        return fieldsets

    @admin.display(description=_("mark as"))
    def mark_run(self, execution: TaskExecution) -> SafeString:
        """Mark success / mark failed with an optional reason (posted through the page's action form)."""
        url = reverse("admin:scheduler_app_taskexecution_mark", args=[execution.pk])
        buttons = format_html_join(
            " ",
            '<button type="submit" form="zq-row-action" formaction="{}" name="status" value="{}" class="zq-btn">'
            "{}</button>",
            ((url, status, label) for status, label in mark_choices(execution)),
        )
        return format_html(
            '<input type="text" name="reason" form="zq-row-action" maxlength="{}" size="50" placeholder="{}" '
            'aria-label="{}"> {}',
            REASON_MAX_LENGTH,
            gettext("reason (optional)"),
            gettext("reason"),
            buttons,
        )

    def mark_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST status (success | failed) and an optional reason: correct how the run ended."""
        if not self.has_run_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404
        execution = get_object_or_404(TaskExecution, pk=object_id)
        default = reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk])
        status = request.POST.get("status", "")
        reason = request.POST.get("reason", "")
        if status not in MARK_ACTIONS or len(reason) > REASON_MAX_LENGTH:
            self.message_user(
                request, gettext("Choose success or failed, with a reason of at most 500 characters."), messages.ERROR
            )
            return HttpResponseRedirect(safe_next(request, default))
        try:
            after = execution_services.execution_mark(
                execution=execution, status=status, reason=reason, user=request.user
            )
        except SchedulerError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, after.get_result().get("message", ""), messages.SUCCESS)
        return HttpResponseRedirect(safe_next(request, default))

    # ------------------------------------------------------------------------------------ permissions

    def has_run_permission(self, request: HttpRequest) -> bool:
        return self._allows(request, "run")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are queued by "run now", never written by hand

    def has_change_permission(self, request: HttpRequest, obj: TaskExecution | None = None) -> bool:
        return False  # the history is read-only; the controls below change a run's state

    def has_delete_permission(self, request: HttpRequest, obj: TaskExecution | None = None) -> bool:
        if obj is not None and obj.is_active:
            return False  # terminate it first
        return super().has_delete_permission(request, obj)

    # ------------------------------------------------------------------------------------ list

    def get_queryset(self, request: HttpRequest) -> QuerySet[TaskExecution]:
        queryset = selectors.execution_list()
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_changelist(self, request: HttpRequest, **kwargs):
        return PageLoadingChangeList

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        extra = {"zq_dates": date_drilldown(request, TaskExecution, self.date_hierarchy), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def load_page(self, executions: list[TaskExecution]) -> list[TaskExecution]:
        return selectors.executions_with_task_names(executions)

    def get_list_display(self, request: HttpRequest):
        return [*self.list_display, self._controls_column(request)]

    @admin.display(description=_("task"), ordering="task__name")
    def task_link(self, execution: TaskExecution) -> SafeString:
        url = reverse("admin:scheduler_app_scheduledtask_change", args=[execution.task_id])
        name = getattr(execution, "task_name", None) or execution.task.name
        return format_html('<a href="{}">{}</a>', url, name)

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, execution: TaskExecution) -> SafeString:
        return format_html(
            '{} <span class="zq-small" data-zq-field="status_note" data-zq-execution="{}">{}</span>',
            badge(execution.status, execution_id=execution.pk),
            execution.pk,
            views.status_note(execution),
        )

    @admin.display(description=_("scheduled for"), ordering="scheduled_for")
    def scheduled_column(self, execution: TaskExecution) -> str:
        return local_time(execution.scheduled_for)

    @admin.display(description=_("started"), ordering="start_time")
    def started_column(self, execution: TaskExecution) -> SafeString:
        return format_html(
            '<span data-zq-field="start_time" data-zq-execution="{}">{}</span>',
            execution.pk,
            local_time(execution.start_time),
        )

    @admin.display(description=_("duration"), ordering="duration_seconds")
    def duration_column(self, execution: TaskExecution) -> SafeString:
        return format_html(
            '<span data-zq-field="duration" data-zq-execution="{}">{}</span>',
            execution.pk,
            duration_text(execution.duration_seconds),
        )

    @admin.display(description=_("progress"), ordering="progress_percent")
    def progress_column(self, execution: TaskExecution) -> SafeString:
        return progress_bar(
            percent=execution.progress_percent,
            status=execution.status,
            execution_id=execution.pk,
            item=execution.current_item,
        )

    def _controls_column(self, request: HttpRequest):
        can_control = self.has_run_permission(request)

        @admin.display(description=_("actions"))
        def controls(execution: TaskExecution) -> SafeString:
            if not can_control:
                return SafeString("")
            return self._buttons(execution, form_id="zq-row-action")

        return controls

    def _buttons(self, execution: TaskExecution, *, form_id: str) -> SafeString:
        """Every control button; those the state does not allow are hidden (the live script shows them)."""
        allowed = execution_actions(execution)
        return format_html(
            '<div class="zq-row-buttons">{}</div>',
            format_html_join(
                "",
                '<button type="submit" form="{}" formaction="{}" class="zq-btn{}" data-zq-action="{}" '
                'data-zq-execution="{}"{}{}>{}</button>',
                (
                    (
                        form_id,
                        reverse(f"admin:scheduler_app_taskexecution_{verb}", args=[execution.pk]),
                        " zq-btn--danger" if verb == "terminate" else "",
                        verb,
                        execution.pk,
                        format_html(' data-zq-confirm="{}"', gettext("Terminate this run?"))
                        if verb == "terminate"
                        else "",
                        "" if verb in allowed else SafeString(" hidden"),
                        control["label"],
                    )
                    for verb, control in CONTROLS.items()
                ),
            ),
        )

    # ------------------------------------------------------------------------------------ the run's page

    @admin.display(description=_("progress"))
    def progress_detail(self, execution: TaskExecution) -> SafeString:
        counts = (
            f"{execution.processed_items}/{execution.total_items}"
            if execution.total_items
            else str(execution.processed_items or "")
        )
        message = (execution.result or {}).get("message", "") if isinstance(execution.result, dict) else ""
        return format_html(
            '{}<div class="zq-progress-detail">'
            '<span data-zq-field="current_item" data-zq-execution="{}">{}</span> '
            '<span data-zq-field="counts" data-zq-execution="{}">{}</span> '
            '<span data-zq-field="message" data-zq-execution="{}">{}</span></div>',
            progress_bar(
                percent=execution.progress_percent,
                status=execution.status,
                execution_id=execution.pk,
                item=execution.current_item,
            ),
            execution.pk,
            execution.current_item,
            execution.pk,
            counts,
            execution.pk,
            message,
        )

    @admin.display(description=_("timing"))
    def timing(self, execution: TaskExecution) -> SafeString:
        rows = [
            (gettext("scheduled for"), local_time(execution.scheduled_for), "scheduled_for"),
            (gettext("started"), local_time(execution.start_time), "start_time"),
            (gettext("ended"), local_time(execution.end_time), "end_time"),
            (gettext("duration"), duration_text(execution.duration_seconds), "duration"),
            (gettext("estimated end"), local_time(execution.estimated_end_time), "estimated_end_time"),
        ]
        return format_html(
            '<table class="zq-kv">{}</table>',
            format_html_join(
                "",
                '<tr><th>{}</th><td data-zq-field="{}" data-zq-execution="{}">{}</td></tr>',
                ((label, field, execution.pk, value) for label, value, field in rows),
            ),
        )

    @admin.display(description=_("result"))
    def result_pretty(self, execution: TaskExecution) -> SafeString:
        return live_text(
            execution,
            field="result",
            value=pretty_json(execution.result) if execution.result else "",
            css="zq-pre",
            empty=gettext("none yet"),
        )

    @admin.display(description=_("error"))
    def error_pre(self, execution: TaskExecution) -> SafeString:
        return live_text(
            execution,
            field="error_message",
            value=execution.error_message,
            css="zq-pre zq-pre--error",
            empty=gettext("none"),
        )

    @admin.display(description=_("output tail"))
    def output_pre(self, execution: TaskExecution) -> SafeString:
        return live_text(
            execution,
            field="output_tail",
            value=execution.output_tail,
            css="zq-pre zq-pre--output",
            empty=gettext("none"),
        )

    @admin.display(description=_("parent run"))
    def parent_link(self, execution: TaskExecution) -> SafeString:
        if not execution.parent_id:
            return format_html('<span class="zq-muted">{}</span>', gettext("none"))
        parents = selectors.executions_with_task_names(TaskExecution.objects.filter(pk=execution.parent_id))
        parent = parents[0] if parents else None
        if parent is None:
            return format_html("#{} ({})", execution.parent_id, gettext("deleted"))
        url = reverse("admin:scheduler_app_taskexecution_change", args=[parent.pk])
        return format_html('<a href="{}">#{} {}</a> {}', url, parent.pk, parent.task_name, badge(parent.status))

    @admin.display(description=_("child runs"))
    def children_table(self, execution: TaskExecution) -> SafeString:
        children = selectors.executions_with_task_names(
            TaskExecution.objects.filter(parent_id=execution.pk).order_by("pk")
        )
        if not children:
            return format_html('<span class="zq-muted">{}</span>', gettext("none"))
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:scheduler_app_taskexecution_change", args=[child.pk]),
                    child.pk,
                    child.task_name,
                    child.get_trigger_display(),
                    badge(child.status, execution_id=child.pk),
                    progress_bar(
                        percent=child.progress_percent,
                        status=child.status,
                        execution_id=child.pk,
                        item=child.current_item,
                    ),
                )
                for child in children
            ),
        )
        head = format_html(
            "<thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>",
            gettext("run"),
            gettext("task"),
            gettext("trigger"),
            gettext("status"),
            gettext("progress"),
        )
        return format_html('<table class="zq-children">{}<tbody>{}</tbody></table>', head, rows)

    @admin.display(description=_("workflow steps"))
    def workflow_graph(self, execution: TaskExecution) -> SafeString:
        graph = workflow_run_graph(execution)
        if graph is None:
            return format_html('<span class="zq-muted">{}</span>', gettext("not a workflow run"))
        return format_html(
            '<div id="zq-run-dag" class="zq-dag" data-zq-execution="{}" role="img" aria-label="{}"></div>{}',
            execution.pk,
            gettext("Workflow graph"),
            json_script(graph, "zq-run-graph"),
        )

    @admin.display(description=_("liveness"))
    def liveness(self, execution: TaskExecution) -> SafeString:
        return format_html(
            '<table class="zq-kv"><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr>'
            "<tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr></table>",
            gettext("host"),
            execution.host or "-",
            gettext("pid"),
            execution.pid or "-",
            gettext("worker"),
            execution.worker or "-",
            gettext("heartbeat"),
            local_time(execution.heartbeat_at),
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["execution_buttons"] = (
                self._buttons(obj, form_id="zq-row-action") if self.has_run_permission(request) else ""
            )
            context["execution_active"] = obj.is_active
            named = selectors.executions_with_task_names([obj])[0]
            context["subtitle"] = f"#{obj.pk} {named.task_name}"  # the window title: no status to go stale
            # The heading names the task and shows the current status, kept live like the fields below.
            context["execution_heading"] = format_html(
                '#{} <span data-zq-field="task_name" data-zq-execution="{}">{}</span> {}',
                obj.pk,
                obj.pk,
                named.task_name,
                badge(obj.status, execution_id=obj.pk),
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    # ------------------------------------------------------------------------------------ custom views

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path("progress/", wrap(self.progress_view), name=f"{prefix}_progress"),
            path("<path:object_id>/progress/", wrap(self.progress_view), name=f"{prefix}_progress_one"),
        ]
        custom.append(path("<path:object_id>/mark/", wrap(require_POST(self.mark_view)), name=f"{prefix}_mark"))
        for verb in CONTROLS:
            custom.append(
                path(
                    f"<path:object_id>/{verb}/",
                    wrap(require_POST(self.control_view)),
                    {"verb": verb},
                    name=f"{prefix}_{verb}",
                )
            )
        return custom + super().get_urls()

    def progress_view(self, request: HttpRequest, object_id: str | None = None) -> JsonResponse:
        """Live state for the polling script: `progress/?ids=1,2` or `<id>/progress/`."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        raw = [object_id] if object_id is not None else request.GET.get("ids", "").split(",")
        ids = [int(value) for value in raw if value and value.strip().isdigit()][:MAX_PROGRESS_IDS]
        payload = views.progress_payload(ids, can_control=self.has_run_permission(request))
        if object_id is not None and not payload["executions"]:
            raise Http404
        return JsonResponse(payload)

    def control_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        if not self.has_run_permission(request):
            raise PermissionDenied
        if not str(object_id).isdigit():
            raise Http404
        execution = get_object_or_404(TaskExecution, pk=object_id)
        default = reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk])
        try:
            reason = str(request.POST.get("reason", "")).strip()  # the operator's, kept with the action's record
            after = CONTROLS[verb]["service"](execution=execution, user=request.user, reason=reason)
        except SchedulerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(safe_next(request, default))
        self.message_user(request, _control_message(verb, execution, after), messages.SUCCESS)
        if after.pk != execution.pk:
            return HttpResponseRedirect(reverse("admin:scheduler_app_taskexecution_change", args=[after.pk]))
        return HttpResponseRedirect(safe_next(request, default))


def live_text(execution: TaskExecution, *, field: str, value: str, css: str, empty: str) -> SafeString:
    """A text box of the run page that live.js keeps current, with the placeholder shown while it is empty."""
    return format_html(
        '<pre class="{}" data-zq-field="{}" data-zq-execution="{}"{}>{}</pre>'
        '<span class="zq-muted" data-zq-empty="{}" data-zq-execution="{}"{}>{}</span>',
        css,
        field,
        execution.pk,
        "" if value else SafeString(" hidden"),
        value,
        field,
        execution.pk,
        SafeString(" hidden") if value else "",
        empty,
    )


def workflow_run_graph(execution: TaskExecution) -> dict[str, Any] | None:
    """Nodes (the steps, with their child run's state) and edges (dependencies) of a workflow run."""
    task = ScheduledTask.objects.filter(pk=execution.task_id).only("pk", "task_type", "config").first()
    if task is None or task.task_type != ScheduledTask.TaskType.WORKFLOW:
        return None
    runs = {
        row["task_id"]: row
        for row in TaskExecution.objects.filter(parent_id=execution.pk, trigger=TaskExecution.Trigger.WORKFLOW)
        .order_by("pk")
        .values("pk", "task_id", "status")
    }
    try:
        steps = [(step.task_id, list(step.dependencies)) for step in parse_workflow_config(task.config).steps]
    except WorkflowConfigError:
        steps = [(task_id, []) for task_id in runs]
    names = dict(ScheduledTask.objects.filter(pk__in=[task_id for task_id, _deps in steps]).values_list("pk", "name"))
    nodes = []
    for task_id, _deps in steps:
        run = runs.get(task_id)
        nodes.append(
            {
                "id": str(task_id),
                "label": names.get(task_id, f"#{task_id}"),
                "status": run["status"] if run else "not_started",
                "execution": run["pk"] if run else None,
                "url": reverse("admin:scheduler_app_taskexecution_change", args=[run["pk"]]) if run else "",
            }
        )
    edges = [{"source": str(dep), "target": str(task_id)} for task_id, deps in steps for dep in deps]
    return {"nodes": nodes, "edges": edges}
