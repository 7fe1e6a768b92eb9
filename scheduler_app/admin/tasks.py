"""Task admin: the annotated list with row buttons, bulk actions, the task form and the dashboard link.

Every write goes through scheduler_app.services.tasks, as the API's do; the services' refusals
(domain exceptions, validation errors, PermissionDenied) become error messages, never server errors.
Who may do what is services.permissions, for the admin's own checks too (buttons, custom views).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router, transaction
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from simple_history.admin import SimpleHistoryAdmin

from scheduler_app import selectors
from scheduler_app.actions import action_catalogue
from scheduler_app.admin import views
from scheduler_app.admin.common import (
    SCHEDULE_STATUS_LABELS,
    PageLoadingChangeList,
    RulePermissionsMixin,
    SchedulerBannerMixin,
    badge,
    local_time,
    pretty_json,
    progress_bar,
    safe_next,
    scheduler_banner_context,
)
from scheduler_app.admin.filters import BrokenTriggerFilter, ScheduleStatusFilter
from scheduler_app.admin.forms import ReasonActionForm, RunWithParametersForm, ScheduledTaskForm
from scheduler_app.exceptions import SchedulerError
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services import permissions as rules
from scheduler_app.services import tasks as task_services

FINISHED_FOR_RATE = (
    TaskExecution.Status.SUCCESS,
    TaskExecution.Status.FAILED,
    TaskExecution.Status.COMPLETED,
    TaskExecution.Status.TERMINATED,
)


def _reason(request: HttpRequest) -> str:
    """The operator's optional reason for a manual action (the action bar's field, or a button's form)."""
    return str(request.POST.get("reason", "")).strip()


def load_task_page(tasks: list[ScheduledTask]) -> list[ScheduledTask]:
    """selectors.task_page() for these rows, plus the counts of the success-rate column (one more query)."""
    page = selectors.task_page(ids=[task.pk for task in tasks])
    counts = {
        row["task_id"]: row
        for row in TaskExecution.objects.filter(task_id__in=[task.pk for task in page])
        .order_by()
        .values("task_id")
        .annotate(
            success=Count("pk", filter=Q(status=TaskExecution.Status.SUCCESS)),
            finished=Count("pk", filter=Q(status__in=FINISHED_FOR_RATE)),
        )
    }
    for task in page:
        row = counts.get(task.pk, {})
        task.success_runs = row.get("success", 0)
        task.finished_runs = row.get("finished", 0)
    return page


def _error_text(error: Exception) -> str:
    if isinstance(error, SchedulerError):
        return error.message
    if isinstance(error, ValidationError):
        if hasattr(error, "message_dict"):
            return " ".join(f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items())
        return " ".join(error.messages)
    return str(error)


# Row and bulk state changes: verb -> service, the row message and the pluralised bulk message.
STATE_CHANGES: dict[str, dict[str, Any]] = {
    "enable": {
        "service": task_services.task_enable,
        "one": _('Task "%(name)s" was enabled.'),
        "bulk": lambda n: ngettext("%(count)d task was enabled.", "%(count)d tasks were enabled.", n),
    },
    "disable": {
        "service": task_services.task_disable,
        "one": _('Task "%(name)s" was disabled.'),
        "bulk": lambda n: ngettext("%(count)d task was disabled.", "%(count)d tasks were disabled.", n),
    },
    "pause": {
        "service": task_services.task_pause,
        "one": _('Task "%(name)s" was paused.'),
        "bulk": lambda n: ngettext("%(count)d task was paused.", "%(count)d tasks were paused.", n),
    },
    "resume": {
        "service": task_services.task_resume,
        "one": _('Task "%(name)s" was resumed.'),
        "bulk": lambda n: ngettext("%(count)d task was resumed.", "%(count)d tasks were resumed.", n),
    },
}


@admin.register(ScheduledTask)
class ScheduledTaskAdmin(RulePermissionsMixin, SchedulerBannerMixin, SimpleHistoryAdmin):
    form = ScheduledTaskForm
    action_form = ReasonActionForm
    permission_rules = {
        "view": rules.TASK_VIEW,
        "add": rules.TASK_ADD,
        "change": rules.TASK_CHANGE,
        "delete": rules.TASK_DELETE,
        "run": rules.TASK_RUN,
        "copy": rules.TASK_COPY,
        "command": rules.TASK_COMMAND,
    }
    dashboard_template = "admin/scheduler_app/scheduledtask/dashboard.html"
    # Compact on purpose: the list fits 1366 px wide with the navigation sidebar open (see admin.css). The
    # task type sits under the name and the enabled/paused state is the schedule status (disabled, paused).
    list_display = (
        "name_column",
        "schedule_column",
        "status_column",
        "next_run_column",
        "latest_run_column",
        "success_rate_column",
    )
    list_display_links = ("name_column",)
    list_filter = ("task_type", "enabled", "paused", ScheduleStatusFilter, BrokenTriggerFilter)
    search_fields = ("name", "description")
    ordering = ("name",)
    list_per_page = 50
    actions = [
        "run_tasks_now",
        "enable_tasks",
        "disable_tasks",
        "pause_tasks",
        "resume_tasks",
        "copy_tasks",
        "delete_selected",
    ]
    readonly_fields = (
        "schedule_preview",
        "action_picker",
        "workflow_editor",
        "job_id",
        "schedule_error_display",
        "created_by",
        "created_at",
        "updated_by",
        "updated_at",
    )
    fieldsets = [
        (None, {"fields": ["name", "task_type", "description", ("enabled", "paused", "paused_until")]}),
        (
            _("Schedule"),
            {
                "fields": [
                    "cron_expression",
                    "interval_seconds",
                    "run_at",
                    "timezone",
                    "schedule_preview",
                    ("misfire_grace_seconds", "catch_up"),
                ],
                "classes": ["zq-schedule"],
                "description": _(
                    "Set a cron expression, an interval or a one-shot time (one of them); manual tasks have none."
                ),
            },
        ),
        (
            _("Calendar and limits"),
            {
                "fields": [
                    "calendar",
                    ("calendar_rule", "calendar_n"),
                    "event_calendar",
                    ("valid_from", "valid_until"),
                    "jitter_seconds",
                ],
                "classes": ["zq-schedule"],
                "description": _(
                    "The cron expression (or interval) picks the times and the candidate days; a calendar keeps only "
                    "its occurrence days (every open day, the n-th or n-th to last of each week or month, or T+n "
                    "after each event day). Blackout windows are kept under Blackout windows."
                ),
            },
        ),
        (
            _("What to run"),
            {
                "fields": ["action_picker", "config", "workflow_editor"],
                "description": _(
                    'Scheduled and manual tasks: {"task_action": "example_task", ...} or {"command": "python -m ..."}. '
                    'Workflows: {"workflow_type": "serial", "tasks": [{"task_id": 1, "dependencies": []}]}.'
                ),
            },
        ),
        (
            _("Retries, limits and overlaps"),
            {"fields": [("max_retries", "retry_interval", "retry_backoff"), "timeout_seconds", "overlap_policy"]},
        ),
        (
            _("History"),
            {
                "fields": [("retention_days", "retention_max_runs")],
                "description": _(
                    "Empty: the site's defaults. Each task's last success and last failure are always kept."
                ),
            },
        ),
        (
            _("Record"),
            {
                "fields": [
                    "job_id",
                    "schedule_error_display",
                    ("created_by", "created_at"),
                    ("updated_by", "updated_at"),
                ],
                "classes": ["collapse"],
            },
        ),
    ]

    class Media:
        css = {"all": ["scheduler_app/admin.css"]}
        js = ["scheduler_app/live.js"]

    # ------------------------------------------------------------------------------------ permissions

    def has_run_permission(self, request: HttpRequest) -> bool:
        return self._allows(request, "run")

    def has_copy_permission(self, request: HttpRequest) -> bool:
        return self._allows(request, "copy")

    def get_readonly_fields(self, request: HttpRequest, obj: ScheduledTask | None = None):
        """What a command task runs (type, config) is read-only to a user without TASK_COMMAND: only they
        may change it (the service refuses it anyway; this says so before anyone types)."""
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and rules.Work.of(obj).runs_program and not self._allows(request, "command"):
            return (*fields, "task_type", "config")
        return fields

    def get_form(self, request: HttpRequest, obj: ScheduledTask | None = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.actor = request.user  # a class made for this request: the form checks what the task runs for them
        return form

    # ------------------------------------------------------------------------------------ list

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScheduledTask]:
        queryset = selectors.task_list()  # computed columns as aliases: filters and ordering only
        ordering = self.get_ordering(request)
        return queryset.order_by(*ordering) if ordering else queryset

    def get_changelist(self, request: HttpRequest, **kwargs):
        return PageLoadingChangeList

    def load_page(self, tasks: list[ScheduledTask]) -> list[ScheduledTask]:
        return load_task_page(tasks)

    def get_list_display(self, request: HttpRequest):
        return [*self.list_display, self._row_buttons_column(request)]

    def get_fieldsets(self, request: HttpRequest, obj: ScheduledTask | None = None):
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:-1]  # nothing to record before the first save

    @admin.display(description=_("schedule"), ordering="cron_expression")
    def schedule_column(self, task: ScheduledTask) -> SafeString:
        raw = (
            f"Cron: {task.cron_expression}"
            if task.cron_expression
            else gettext("Interval: %(n)s s") % {"n": task.interval_seconds}
            if task.interval_seconds
            else ""
        )
        text = selectors.schedule_description(task)
        if not raw:
            return format_html('<span class="zq-muted">{}</span>', text)
        return format_html('<span title="{}">{}</span><br><code class="zq-small">{}</code>', raw, text, raw)

    @admin.display(description=_("name"), ordering="name")
    def name_column(self, task: ScheduledTask) -> SafeString:
        return format_html('{}<br><span class="zq-small">{}</span>', task.name, task.get_task_type_display())

    @admin.display(description=_("status"), ordering="schedule_status")
    def status_column(self, task: ScheduledTask) -> SafeString:
        status = getattr(task, "schedule_status", None)
        html = badge(status, label=SCHEDULE_STATUS_LABELS.get(status))
        if task.enabled and task.paused and task.paused_until is not None:
            html += format_html(
                '<br><span class="zq-small">{}</span>',
                gettext("Paused until %(time)s") % {"time": local_time(task.paused_until)},
            )
        if task.schedule_error:
            html += format_html(
                ' <span class="zq-badge zq-badge--failed" title="{}">{}</span>',
                task.schedule_error,
                gettext("trigger broken"),
            )
        return html

    @admin.display(description=_("next run"), ordering="next_run_time")
    def next_run_column(self, task: ScheduledTask) -> str:
        return local_time(getattr(task, "next_run_time", None))

    @admin.display(description=_("latest run"), ordering="latest_execution_time")
    def latest_run_column(self, task: ScheduledTask) -> SafeString:
        execution_id = getattr(task, "latest_execution_id", None)
        if not execution_id:
            return format_html('<span class="zq-muted">{}</span>', gettext("never"))
        status = task.latest_execution_status
        url = reverse("admin:scheduler_app_taskexecution_change", args=[execution_id])
        html = format_html(
            '<a href="{}">{}</a><br><span class="zq-small">{}</span>',
            url,
            badge(status, execution_id=execution_id),
            local_time(task.latest_execution_time) if task.latest_execution_time else gettext("queued"),
        )
        if status in TaskExecution.ACTIVE_STATUSES:
            html += progress_bar(
                percent=task.latest_execution_progress,
                status=status,
                execution_id=execution_id,
                item=task.latest_execution_current_item or "",
            )
        return html

    @admin.display(description=_("success rate"))
    def success_rate_column(self, task: ScheduledTask) -> SafeString | str:
        finished = getattr(task, "finished_runs", 0)
        if not finished:
            return "-"
        return format_html(
            '{}%<br><span class="zq-small">{}/{}</span>',
            f"{100 * task.success_runs / finished:.1f}",
            task.success_runs,
            finished,
        )

    def _row_buttons_column(self, request: HttpRequest):
        can_run = self.has_run_permission(request)
        can_change = self.has_change_permission(request)
        can_copy = self.has_copy_permission(request)
        can_see_runs = rules.EXECUTION_VIEW.allows(request.user)
        history = reverse("admin:scheduler_app_taskexecution_changelist")

        @admin.display(description=_("actions"))
        def row_buttons(task: ScheduledTask) -> SafeString:
            buttons: list[tuple[str, str, str, str]] = []  # (verb, label, css, disabled attribute)
            if can_run:
                running = task.latest_execution_status in TaskExecution.STARTED_STATUSES
                buttons.append(("run", gettext("Run now"), "zq-btn--primary", " disabled" if running else ""))
            if can_change:
                if task.enabled:
                    if task.paused:
                        buttons.append(("resume", gettext("Resume"), "", ""))
                    elif task.is_scheduled:  # a manual task has no schedule to hold
                        buttons.append(("pause", gettext("Pause"), "", ""))
                    buttons.append(("disable", gettext("Disable"), "", ""))
                else:
                    buttons.append(("enable", gettext("Enable"), "", ""))
            if can_copy:
                buttons.append(("copy", gettext("Copy"), "", ""))
            rendered = [
                format_html(
                    '<button type="submit" form="zq-row-action" formaction="{}" class="zq-btn {}" '
                    'data-zq-verb="{}"{}>{}</button>',
                    reverse(f"admin:scheduler_app_scheduledtask_{verb}", args=[task.pk]),
                    css,
                    verb,
                    mark_safe(disabled),
                    label,
                )
                for verb, label, css, disabled in buttons
            ]
            if can_see_runs:
                rendered.append(
                    format_html(
                        '<a class="zq-btn zq-btn--link" href="{}?task__id__exact={}">{}</a>',
                        history,
                        task.pk,
                        gettext("History"),
                    )
                )
            # Run now stays in sight; the rarer actions fold into a menu so the column stays narrow.
            first = rendered.pop(0) if can_run else SafeString("")
            menu = (
                format_html(
                    '<details class="zq-menu"><summary class="zq-btn" title="{}">{}</summary>'
                    '<div class="zq-menu__items">{}</div></details>',
                    gettext("More actions"),
                    gettext("More"),
                    format_html_join("", "{}", ((item,) for item in rendered)),
                )
                if rendered
                else ""
            )
            return format_html('<div class="zq-row-buttons">{}{}</div>', first, menu)

        return row_buttons

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None):
        extra = {
            "has_run_permission": self.has_run_permission(request),
            "dashboard_url": reverse("admin:scheduler_app_scheduledtask_dashboard"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    # ------------------------------------------------------------------------------------ the form

    @admin.display(description=_("preview"))
    def schedule_preview(self, task: ScheduledTask) -> SafeString:
        return views.schedule_preview_html(task)

    @admin.display(description=_("action"))
    def action_picker(self, task: ScheduledTask) -> SafeString:
        return views.action_picker_html(task)

    @admin.display(description=_("workflow steps"))
    def workflow_editor(self, task: ScheduledTask) -> SafeString:
        return views.workflow_editor_html(task)

    @admin.display(description=_("schedule error"))
    def schedule_error_display(self, task: ScheduledTask) -> SafeString:
        if not task.schedule_error:
            return format_html('<span class="zq-muted">{}</span>', gettext("none"))
        return format_html('<pre class="zq-pre zq-pre--error">{}</pre>', task.schedule_error)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.update(
            {
                "has_run_permission": self.has_run_permission(request),
                "dashboard_url": reverse("admin:scheduler_app_scheduledtask_dashboard"),
                "history_url": reverse("admin:scheduler_app_taskexecution_changelist"),
                "zq_form_config": json_script(views.task_form_config(request), "zq-task-form-config"),
            }
        )
        if obj is not None and obj.pk:
            context["task_buttons"] = self._object_buttons(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _object_buttons(self, request: HttpRequest, task: ScheduledTask) -> list[dict[str, str]]:
        """The state buttons of the change page, as on the list (spec 8.3)."""
        page = selectors.task_page(ids=[task.pk])
        latest = page[0].latest_execution_status if page else None
        buttons: list[dict[str, Any]] = []
        if self.has_run_permission(request):
            buttons.append({"verb": "run", "label": gettext("Run now"), "disabled": latest in ("running", "paused")})
        if self.has_change_permission(request, task):
            if task.enabled:
                if task.paused or task.is_scheduled:
                    buttons.append({"verb": "resume" if task.paused else "pause", "label": ""})
                buttons.append({"verb": "disable", "label": gettext("Disable")})
            else:
                buttons.append({"verb": "enable", "label": gettext("Enable")})
        if self.has_copy_permission(request):
            buttons.append({"verb": "copy", "label": gettext("Copy")})
        for button in buttons:
            if not button["label"]:
                button["label"] = gettext("Resume") if button["verb"] == "resume" else gettext("Pause")
            button["url"] = reverse(f"admin:scheduler_app_scheduledtask_{button['verb']}", args=[task.pk])
        return buttons

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (SchedulerError, ValidationError) as error:
            # A refusal the form could not foresee (e.g. a concurrent change); the transaction was rolled back.
            self.message_user(request, _error_text(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request: HttpRequest, obj: ScheduledTask, form, change: bool) -> None:
        restoring = getattr(request, "zq_restoring", None)
        if restoring is not None:
            # The history's "revert" page: the version itself is restored, through the task service.
            task_services.task_restore(task=obj, history_id=restoring, user=request.user, reason=_reason(request))
            return
        data = {name: form.cleaned_data[name] for name in form.cleaned_data if name in task_services.EDITABLE_FIELDS}
        if change:
            saved = task_services.task_update(task=obj, data=data, user=request.user)
        else:
            saved = task_services.task_create(data=data, user=request.user)
        obj.pk = saved.pk
        obj.job_id = saved.job_id
        obj._state.adding = False

    # ------------------------------------------------------------------------------------ deletion

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """An earlier version, and on POST its restore (TASK_CHANGE; task_restore() validates it again)."""
        if not str(version_id).isdigit():
            raise Http404
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            request.zq_restoring = int(version_id)
        try:
            with transaction.atomic(using=router.db_for_write(ScheduledTask)):
                return super().history_form_view(request, object_id, version_id, extra_context)
        except (SchedulerError, ValidationError) as error:
            self.message_user(request, _error_text(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request: HttpRequest, obj: ScheduledTask) -> None:
        task_services.task_delete(task=obj, user=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except SchedulerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:scheduler_app_scheduledtask_change", args=[object_id]))

    @admin.action(permissions=["delete"], description=_("Delete selected tasks"))
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[ScheduledTask]):
        """Django's confirmation page, then task_delete() per task, so that refusals are reported one by one."""
        if not request.POST.get("post"):
            return admin.actions.delete_selected(self, request, queryset)
        deleted = 0
        for task in list(queryset):
            try:
                task_services.task_delete(task=task, user=request.user)
            except SchedulerError as error:
                self.message_user(
                    request,
                    gettext('Task "%(name)s" was not deleted: %(reason)s') % {"name": task.name, "reason": error},
                    messages.ERROR,
                )
                continue
            self.log_deletions(request, [task])
            deleted += 1
        if deleted:
            self.message_user(
                request,
                ngettext("%(count)d task was deleted.", "%(count)d tasks were deleted.", deleted) % {"count": deleted},
                messages.SUCCESS,
            )
        return None

    # ------------------------------------------------------------------------------------ bulk actions

    def _bulk(self, request: HttpRequest, queryset: QuerySet[ScheduledTask], verb: str) -> None:
        change = STATE_CHANGES[verb]
        done = 0
        with transaction.atomic(using=router.db_for_write(ScheduledTask)):  # one schedule version bump
            for task in queryset:
                try:
                    change["service"](task=task, user=request.user, reason=_reason(request))
                except (SchedulerError, ValidationError) as error:
                    self._refused(request, task, error)
                else:
                    done += 1
        if done:
            message = change["bulk"](done) % {"count": done}
            self.message_user(request, message, messages.SUCCESS)

    def _refused(self, request: HttpRequest, task: ScheduledTask, error: Exception) -> None:
        self.message_user(
            request,
            gettext('Task "%(name)s": %(reason)s') % {"name": task.name, "reason": _error_text(error)},
            messages.ERROR,
        )

    @admin.action(permissions=["run"], description=_("Run selected tasks now"))
    def run_tasks_now(self, request: HttpRequest, queryset: QuerySet[ScheduledTask]) -> None:
        queued = 0
        for task in queryset:
            try:
                task_services.task_trigger(task=task, user=request.user, reason=_reason(request))
            except (SchedulerError, ValidationError) as error:
                self._refused(request, task, error)
            else:
                queued += 1
        if queued:
            message = ngettext(
                "%(count)d task was queued to run now; the scheduler starts it.",
                "%(count)d tasks were queued to run now; the scheduler starts them.",
                queued,
            ) % {"count": queued}
            self.message_user(request, message, messages.SUCCESS)

    @admin.action(permissions=["change"], description=_("Enable selected tasks"))
    def enable_tasks(self, request, queryset):
        self._bulk(request, queryset, "enable")

    @admin.action(permissions=["change"], description=_("Disable selected tasks"))
    def disable_tasks(self, request, queryset):
        self._bulk(request, queryset, "disable")

    @admin.action(permissions=["change"], description=_("Pause selected tasks"))
    def pause_tasks(self, request, queryset):
        self._bulk(request, queryset, "pause")

    @admin.action(permissions=["change"], description=_("Resume selected tasks"))
    def resume_tasks(self, request, queryset):
        self._bulk(request, queryset, "resume")

    @admin.action(permissions=["copy"], description=_("Copy selected tasks (the copies are disabled)"))
    def copy_tasks(self, request: HttpRequest, queryset: QuerySet[ScheduledTask]) -> None:
        copies: list[ScheduledTask] = []
        for task in queryset:
            try:
                copies.append(task_services.task_copy(task=task, user=request.user))
            except (SchedulerError, ValidationError) as error:
                self._refused(request, task, error)
        if copies:
            message = ngettext(
                "%(count)d task was copied: %(names)s.", "%(count)d tasks were copied: %(names)s.", len(copies)
            ) % {"count": len(copies), "names": ", ".join(copy.name for copy in copies)}
            self.message_user(request, message, messages.SUCCESS)

    # ------------------------------------------------------------------------------------ custom pages

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        custom = [
            path("dashboard/", wrap(self.dashboard_view), name=f"{prefix}_dashboard"),
            path("<path:object_id>/run/", wrap(self.run_view), name=f"{prefix}_run"),
            path(
                "<path:object_id>/run-with-parameters/",
                wrap(self.run_with_parameters_view),
                name=f"{prefix}_run_with_parameters",
            ),
            path("<path:object_id>/copy/", wrap(self.copy_view), name=f"{prefix}_copy"),
        ]
        for verb in STATE_CHANGES:
            custom.append(
                path(
                    f"<path:object_id>/{verb}/",
                    wrap(self.state_view),
                    {"verb": verb},
                    name=f"{prefix}_{verb}",
                )
            )
        return custom + super().get_urls()

    def _task_or_404(self, object_id: str) -> ScheduledTask:
        if not str(object_id).isdigit() or int(object_id) > task_services.MAX_TASK_ID:
            raise Http404
        return get_object_or_404(ScheduledTask, pk=object_id)

    def _back(self, request: HttpRequest, task: ScheduledTask | None = None) -> HttpResponseRedirect:
        default = (
            reverse("admin:scheduler_app_scheduledtask_change", args=[task.pk])
            if task is not None
            else reverse("admin:scheduler_app_scheduledtask_changelist")
        )
        return HttpResponseRedirect(safe_next(request, default))

    def dashboard_view(self, request: HttpRequest) -> TemplateResponse:
        if not rules.DASHBOARD.allows(request.user):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            **scheduler_banner_context(request),
            **views.dashboard_context(request),
            "opts": self.opts,
            "title": gettext("Scheduler dashboard"),
            "has_run_permission": self.has_run_permission(request),
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.dashboard_template, context)

    def run_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._run)(request, object_id)

    def _run(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_run_permission(request):
            raise PermissionDenied
        task = self._task_or_404(object_id)
        try:
            execution = task_services.task_trigger(task=task, user=request.user, reason=_reason(request))
        except (SchedulerError, ValidationError) as error:
            self._refused(request, task, error)
            return self._back(request, task)
        self._queued_message(request, task, execution)
        return self._back(request, task)

    def run_with_parameters_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Run now with config keys replaced for this run: a form (GET), the run queued (POST)."""
        task = self._task_or_404(object_id)
        if not (self.has_run_permission(request) and self.has_view_permission(request, task)):
            raise PermissionDenied
        form = RunWithParametersForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                execution = task_services.task_trigger(task=task, user=request.user, config=form.cleaned_data["config"])
            except ValidationError as error:
                for message in error.message_dict.get("config", error.messages):
                    form.add_error("config", message)
            except SchedulerError as error:
                form.add_error(None, _error_text(error))
            else:
                self._queued_message(request, task, execution)
                return HttpResponseRedirect(reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk]))
        name = task.config.get("task_action") if isinstance(task.config, dict) else None
        found = next((entry for entry in action_catalogue() if entry["name"] == name), None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": task,
            "title": gettext("Run %(name)s with parameters") % {"name": task.name},
            "form": form,
            "task_config": pretty_json(task.config),
            "action": found,
        }
        return TemplateResponse(request, "admin/scheduler_app/scheduledtask/run_with_parameters.html", context)

    def _queued_message(self, request: HttpRequest, task: ScheduledTask, execution: TaskExecution) -> None:
        url = reverse("admin:scheduler_app_taskexecution_change", args=[execution.pk])
        self.message_user(
            request,
            format_html(
                gettext('Task "{name}" was queued as <a href="{url}">execution #{id}</a>; the scheduler starts it.'),
                name=task.name,
                url=url,
                id=execution.pk,
            ),
            messages.SUCCESS,
        )

    def state_view(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        return require_POST(self._state)(request, object_id, verb)

    def _state(self, request: HttpRequest, object_id: str, verb: str) -> HttpResponse:
        task = self._task_or_404(object_id)
        if not self.has_change_permission(request, task):
            raise PermissionDenied
        change = STATE_CHANGES[verb]
        try:
            change["service"](task=task, user=request.user, reason=_reason(request))
        except (SchedulerError, ValidationError) as error:
            self._refused(request, task, error)
        else:
            self.message_user(request, change["one"] % {"name": task.name}, messages.SUCCESS)
        return self._back(request, task)

    def copy_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._copy)(request, object_id)

    def _copy(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_copy_permission(request):
            raise PermissionDenied
        task = self._task_or_404(object_id)
        try:
            copy = task_services.task_copy(task=task, user=request.user)
        except (SchedulerError, ValidationError) as error:
            self._refused(request, task, error)
            return self._back(request, task)
        self.message_user(
            request,
            gettext('Task "%(name)s" was copied as "%(copy)s" (disabled); edit it, then enable it.')
            % {"name": task.name, "copy": copy.name},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:scheduler_app_scheduledtask_change", args=[copy.pk]))
