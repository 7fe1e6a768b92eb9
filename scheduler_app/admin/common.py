"""Shared admin pieces: status badges, progress bars, the scheduler banner and the permission methods."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app import selectors
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.services import permissions as rules

Status = TaskExecution.Status

# Labels for every status a badge can show: execution statuses and computed schedule statuses.
BADGE_LABELS: dict[str, Any] = {
    **dict(ScheduledTask.ScheduleStatus.choices),
    **dict(TaskExecution.Status.choices),
    "not_started": _("Not started"),
}
SCHEDULE_STATUS_LABELS: dict[str, Any] = dict(ScheduledTask.ScheduleStatus.choices)
BROKEN_TASKS_SHOWN = 10


def badge(status: str | None, *, label: Any = None, execution_id: int | None = None) -> SafeString:
    """A coloured status label; with `execution_id` the live-update script keeps it current."""
    if not status:
        return format_html('<span class="zq-muted">{}</span>', "-")
    text = label if label is not None else BADGE_LABELS.get(status, status)
    if execution_id is None:
        return format_html('<span class="zq-badge zq-badge--{}">{}</span>', status, text)
    return format_html('<span class="zq-badge zq-badge--{}" data-zq-status="{}">{}</span>', status, execution_id, text)


def progress_bar(
    *, percent: float | None, status: str | None, execution_id: int | None = None, item: str = ""
) -> SafeString:
    """A progress bar; bars of active executions carry their id so that the polling script moves them.

    The width is in data-zq-percent, which live.js applies: the Content-Security-Policy refuses style
    attributes.
    """
    percent = max(0.0, min(100.0, float(percent or 0)))
    active = status in TaskExecution.ACTIVE_STATUSES
    attrs = format_html(' data-zq-progress="{}" data-zq-active="{}"', execution_id, "1" if active else "0")
    return format_html(
        '<div class="zq-progress zq-progress--{}"{} data-zq-percent="{}" title="{}">'
        '<div class="zq-progress__bar"></div>'
        '<span class="zq-progress__label">{}%</span></div>',
        status or "none",
        attrs if execution_id is not None else "",
        f"{percent:.1f}",
        item,
        f"{percent:.0f}",
    )


def local_time(value: Any) -> str:
    """A datetime in the current timezone, compact and the same in every language: 2025-01-06 18:00:05."""
    if value is None:
        return "-"
    return formats.date_format(timezone.localtime(value), "Y-m-d H:i:s")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = float(seconds)
    if seconds < 60:
        return gettext("%(n).1f s") % {"n": seconds}
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return gettext("%(m)d min %(s)d s") % {"m": minutes, "s": rest}
    hours, minutes = divmod(minutes, 60)
    return gettext("%(h)d h %(m)d min") % {"h": hours, "m": minutes}


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)


def safe_next(request: HttpRequest, default: str) -> str:
    """The `next` parameter of a POST when it points into this site, else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return default


def execution_actions(execution: TaskExecution) -> list[str]:
    """The control actions the execution's state allows (spec 8.3, matching the execution services)."""
    actions: list[str] = []
    if execution.status in TaskExecution.ACTIVE_STATUSES:
        actions.append("terminate")
    if execution.status == Status.RUNNING and not execution.is_paused:
        actions.append("pause")
    started = execution.status in TaskExecution.STARTED_STATUSES
    if (
        execution.status == Status.PAUSED
        or (started and execution.is_paused)
        or execution.status in (Status.FAILED, Status.TERMINATED)
    ):
        actions.append("resume")
    if execution.status not in TaskExecution.ACTIVE_STATUSES:
        actions.append("rerun")
    return actions


def scheduler_banner_context(request: HttpRequest) -> dict[str, Any]:
    """What the banner on every scheduler page needs: is a scheduler alive, which triggers are broken.

    Whether a scheduler is alive (and its last heartbeat) is shown on every scheduler page: the pages'
    data depend on it. Which processes lead (host, pid) needs SCHEDULER_VIEW; the broken tasks, TASK_VIEW.
    """
    status = selectors.scheduler_status()
    if not rules.SCHEDULER_VIEW.allows(request.user):
        status = {**status, "leader": None, "standbys": []}
    broken = []
    if rules.TASK_VIEW.allows(request.user):
        broken = list(
            ScheduledTask.objects.exclude(schedule_error="")
            .order_by("name")
            .values("pk", "name", "schedule_error")[: BROKEN_TASKS_SHOWN + 1]
        )
    for row in broken:
        row["url"] = reverse("admin:scheduler_app_scheduledtask_change", args=[row["pk"]])
    return {
        "zq_scheduler": status,
        "zq_scheduler_offline": not status["online"],
        "zq_broken_tasks": broken[:BROKEN_TASKS_SHOWN],
        "zq_broken_more": len(broken) > BROKEN_TASKS_SHOWN,
        "zq_broken_url": reverse("admin:scheduler_app_scheduledtask_changelist") + "?broken=yes",
    }


class RulePermissionsMixin:
    """A ModelAdmin whose permission methods are the rules of services.permissions (`permission_rules`).

    Django's own defaults ask `user.has_perm()` for the same model permissions; naming the rules makes
    the admin and the API share one definition (view = view or change, as Django has it).
    """

    permission_rules: dict[str, rules.Rule] = {}

    def _allows(self, request: HttpRequest, what: str) -> bool:
        rule = self.permission_rules.get(what)
        return rule is not None and rule.allows(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allows(request, "view")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allows(request, "add")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allows(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allows(request, "delete")


class SchedulerBannerMixin:
    """Adds the scheduler banner's context to the changelist, add, change and delete pages."""

    def _with_banner(self, request: HttpRequest, extra_context: dict[str, Any] | None) -> dict[str, Any]:
        return {**scheduler_banner_context(request), **(extra_context or {})}

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, self._with_banner(request, extra_context))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, self._with_banner(request, extra_context))

    def delete_view(self, request, object_id, extra_context=None):
        return super().delete_view(request, object_id, self._with_banner(request, extra_context))


class PageLoadingChangeList(ChangeList):
    """A changelist that loads the computed columns for the rows of the current page only.

    The list query filters and orders (computed columns are SQL aliases there); the ModelAdmin's
    `load_page(rows)` then reads what the page shows, in a fixed number of queries (selectors.task_page).
    """

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        self.result_list = self.model_admin.load_page(list(self.result_list))
