"""What the custom admin pages and widgets show: schedule preview, workflow editor data, dashboard, progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from scheduler_app import selectors
from scheduler_app.actions import action_catalogue
from scheduler_app.admin.common import (
    BADGE_LABELS,
    duration_text,
    execution_actions,
    local_time,
    pretty_json,
)
from scheduler_app.exceptions import SchedulerError
from scheduler_app.models import ScheduledTask, TaskExecution
from scheduler_app.schedules import InvalidSchedule

PREVIEW_COUNT = 5
DASHBOARD_DAYS = 14
TIMELINE_RUNS = 25
LIVE_TEXT_CHARS = 20_000  # of a run's result and output in each live answer
UPCOMING_RUNS = 10
RUNNING_SHOWN = 20
Status = TaskExecution.Status


def _api_url(name: str) -> str:
    try:
        return reverse(f"scheduler_api:{name}")
    except NoReverseMatch:  # the API is not mounted: the form still works, without the live checks
        return ""


def fire_time_text(value: datetime) -> str:
    """A fire time in its own timezone, as the preview script writes it: 2025-01-06 18:00:00 +08:00 Mon."""
    offset = value.strftime("%z")
    return f"{value:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]} {WEEKDAYS_ABBR[value.weekday()]}"


# ---------------------------------------------------------------------------------------------- task form


def _run_item(run: dict[str, Any]) -> SafeString:
    viewer = ""
    if run["at_viewer"].utcoffset() != run["at"].utcoffset():
        viewer = format_html(' <span class="zq-preview__viewer">= {}</span>', fire_time_text(run["at_viewer"]))
    note = ""
    if run["note"]:
        marks = " ".join(f"zq-mark--{mark}" for mark in run["marks"])
        note = format_html(' <span class="zq-preview__note {}">{}</span>', marks, run["note"])
    return format_html("<li>{}{}{}</li>", fire_time_text(run["at"]), viewer, note)


def schedule_preview_html(task: ScheduledTask) -> SafeString:
    """The preview box under the schedule fields: filled for a saved task, refreshed by the script on
    input. Each run in the task's timezone (and the viewer's, when it differs), with what moved it;
    the occurrences something removed, with why; and the notes (previews.py)."""
    description, answer, error = "", {}, ""
    if task.is_scheduled and (task.cron_expression or task.interval_seconds or task.run_at):
        try:
            answer = selectors.task_next_runs(task=task, count=PREVIEW_COUNT)
            description = answer["description"]
        except (InvalidSchedule, SchedulerError) as problem:
            error = str(problem)
        except Exception:
            description = task.cron_expression or ""
    elif not task.is_scheduled:
        description = gettext("Manual: runs only on demand")
    runs, removed, notes = answer.get("runs", []), answer.get("removed", []), answer.get("notes", [])
    removed_items = format_html_join(
        "",
        "<li>{} — {}</li>",
        ((fire_time_text(entry["planned"]), entry["reason"]) for entry in removed),
    )
    return format_html(
        '<div id="zq-schedule-preview" class="zq-preview" aria-live="polite" data-task-id="{}">'
        '<p class="zq-preview__description">{}</p>'
        '<p class="zq-preview__error errornote"{}>{}</p>'
        '<p class="zq-preview__heading"{}>{}</p><ol class="zq-preview__runs">{}</ol>'
        '<p class="zq-preview__removed-heading"{}>{}</p><ul class="zq-preview__removed">{}</ul>'
        '<ul class="zq-preview__notes">{}</ul></div>',
        task.pk or "",
        description,
        "" if error else " hidden",
        error,
        "" if runs else " hidden",
        gettext("Next %(count)s runs (in the task's timezone):") % {"count": PREVIEW_COUNT},
        format_html_join("", "{}", ((_run_item(run),) for run in runs)),
        "" if removed else " hidden",
        gettext("Not run (until the last of these runs):"),
        removed_items,
        format_html_join("", "<li>{}</li>", ((note,) for note in notes)),
    )


def workflow_candidates(task: ScheduledTask) -> list[dict[str, Any]]:
    """Tasks a workflow may list as steps (all but itself), with their latest status for the DAG colours."""
    ids = list(ScheduledTask.objects.exclude(pk=task.pk).order_by("name").values_list("pk", flat=True))
    return [
        {
            "id": row.pk,
            "name": row.name,
            "type": row.task_type,
            "enabled": row.enabled,
            "status": row.latest_execution_status or "",
        }
        for row in selectors.task_page(ids=ids)
    ]


def workflow_editor_html(task: ScheduledTask) -> SafeString:
    """Where the script builds the step table and draws the DAG; the JSON config stays the source of truth."""
    return format_html(
        '<div id="zq-workflow-editor" class="zq-workflow" data-task-id="{}">'
        '<div class="zq-workflow__table"></div>'
        '<ul class="zq-workflow__errors errorlist" hidden></ul>'
        '<p class="zq-workflow__valid" hidden>{}</p>'
        '<div id="zq-dag" class="zq-dag" role="img" aria-label="{}"></div>'
        "<noscript>{}</noscript>{}</div>",
        task.pk or "",
        gettext("The workflow configuration is valid."),
        gettext("Workflow graph"),
        gettext("Edit the steps in the JSON config above."),
        json_script(workflow_candidates(task), "zq-workflow-tasks"),
    )


def action_picker_html(task: ScheduledTask) -> SafeString:
    """The action picker (action_picker.js fills it in from the catalogue); the JSON config stays the truth."""
    actions = [entry for entry in action_catalogue() if entry["kind"] == "action"]
    options = format_html_join("", '<option value="{}">{}</option>', ((a["name"], a["name"]) for a in actions))
    return format_html(
        '<div id="zq-action-picker" class="zq-action-picker" hidden>'
        '<select class="zq-action-picker__select" aria-label="{}"><option value="">{}</option>{}</select>'
        '<p class="zq-action-picker__description help"></p>'
        '<p class="zq-action-picker__invalid errornote" hidden>{}</p>'
        '<div class="zq-action-picker__fields"></div></div>'
        "<noscript>{}</noscript>{}",
        gettext("Action"),
        gettext("— a command or raw JSON —"),
        options,
        gettext("The config is not valid JSON; fix it to pick an action here."),
        gettext("Write the action and its parameters in the JSON config."),
        json_script(actions, "zq-actions"),
    )


def task_form_config(request: HttpRequest) -> dict[str, Any]:
    """Settings and texts for task_form.js (no other translation catalogue is loaded in the admin)."""
    return {
        "previewUrl": _api_url("schedule-preview"),
        "validateUrl": _api_url("workflow-validate"),
        "count": PREVIEW_COUNT,
        "weekdays": [str(WEEKDAYS_ABBR[(index + 6) % 7]) for index in range(7)],  # index 0 = Sunday, as getUTCDay()
        "statusLabels": {key: str(value) for key, value in BADGE_LABELS.items()},
        "text": {
            "manual": gettext("Manual: runs only on demand"),
            "needSchedule": gettext("Give a cron expression, an interval or a one-shot time."),
            "checking": gettext("Checking…"),
            "step": gettext("Step task"),
            "dependsOn": gettext("Runs after"),
            "addStep": gettext("Add a step"),
            "remove": gettext("Remove"),
            "workflowType": gettext("Order"),
            "serial": gettext("serial (one at a time)"),
            "parallel": gettext("parallel (as dependencies allow)"),
            "onFailure": gettext("When a step fails"),
            "stop": gettext("stop the workflow"),
            "continue": gettext("continue with the others"),
            "maxParallel": gettext("At most in parallel"),
            "choose": gettext("choose a task…"),
            "disabled": gettext("disabled"),
            "invalidJson": gettext("The config is not valid JSON; fix it to edit the steps here."),
            "valid": gettext("The workflow configuration is valid."),
            "noSteps": gettext("No steps yet."),
        },
    }


# ---------------------------------------------------------------------------------------------- progress


def progress_payload(execution_ids: list[int], *, can_control: bool) -> dict[str, Any]:
    """The live state of some executions and of their child runs (two queries)."""
    executions = selectors.executions_with_task_names(selectors.execution_list().filter(pk__in=execution_ids))
    child_rows = selectors.executions_with_task_names(
        TaskExecution.objects.filter(parent_id__in=[execution.pk for execution in executions]).order_by("pk")
    )
    children: dict[int, list[dict[str, Any]]] = {}
    for child in child_rows:
        children.setdefault(child.parent_id, []).append(
            {
                "id": child.pk,
                "task_id": child.task_id,
                "task_name": child.task_name,
                "trigger": child.trigger,
                "status": child.status,
                "status_label": str(BADGE_LABELS.get(child.status, child.status)),
                "progress_percent": child.progress_percent,
                "url": reverse("admin:scheduler_app_taskexecution_change", args=[child.pk]),
            }
        )
    return {
        "executions": {
            str(execution.pk): execution_state(
                execution, children=children.get(execution.pk, []), can_control=can_control
            )
            for execution in executions
        },
        "now": timezone.now().isoformat(),
    }


def status_note(execution: TaskExecution) -> str:
    """What the status badge cannot say: that a stop was asked for and the run has not ended yet."""
    return gettext("stopping…") if execution.terminate_requested and execution.is_active else ""


def execution_state(execution: TaskExecution, *, children: list[dict[str, Any]], can_control: bool) -> dict[str, Any]:
    result = execution.result if isinstance(execution.result, dict) else {}
    duration = execution.duration_seconds
    if duration is None and execution.start_time and execution.status in TaskExecution.STARTED_STATUSES:
        duration = (timezone.now() - execution.start_time).total_seconds()
    # Everything the execution page shows of a run that changes while it runs: the page renders these same
    # values first, and live.js applies each answer, so the page never mixes two moments of the run.
    return {
        "id": execution.pk,
        "task_name": getattr(execution, "task_name", ""),
        "status": execution.status,
        "status_label": str(BADGE_LABELS.get(execution.status, execution.status)),
        "status_note": status_note(execution),
        "result": pretty_json(execution.result)[:LIVE_TEXT_CHARS] if execution.result else "",
        "output_tail": execution.output_tail[-LIVE_TEXT_CHARS:],
        "is_active": execution.is_active,
        "is_paused": execution.is_paused,
        "terminate_requested": execution.terminate_requested,
        "progress_percent": round(execution.progress_percent or 0, 1),
        "current_item": execution.current_item,
        "processed_items": execution.processed_items,
        "total_items": execution.total_items,
        "message": str(result.get("message") or ""),
        "start_time": local_time(execution.start_time),
        "end_time": local_time(execution.end_time),
        "estimated_end_time": local_time(execution.estimated_end_time),
        "duration": duration_text(duration),
        "error_message": execution.error_message[:2000],
        "actions": execution_actions(execution) if can_control else [],
        "children": children,
    }


# ---------------------------------------------------------------------------------------------- dashboard


def _timeline(now: datetime) -> dict[str, Any]:
    """The last runs as bars on one time axis (positions in percent of the window)."""
    runs = selectors.executions_with_task_names(
        selectors.execution_list().filter(start_time__isnull=False)[:TIMELINE_RUNS]
    )
    if not runs:
        return {"rows": [], "start": None, "end": None}
    start = min(run.start_time for run in runs)
    end = max([now, *[run.end_time for run in runs if run.end_time]])
    span = max((end - start).total_seconds(), 1.0)
    rows = []
    for run in runs:
        finish = run.end_time or now
        left = (run.start_time - start).total_seconds() / span * 100
        width = max((finish - run.start_time).total_seconds() / span * 100, 0.6)
        rows.append(
            {
                "execution": run,
                "left": f"{min(left, 99.4):.2f}",
                "width": f"{min(width, 100 - min(left, 99.4)):.2f}",
                "label": str(BADGE_LABELS.get(run.status, run.status)),
                "start": local_time(run.start_time),
                "duration": duration_text(
                    run.duration_seconds
                    if run.duration_seconds is not None
                    else (finish - run.start_time).total_seconds()
                ),
            }
        )
    return {"rows": rows, "start": local_time(start), "end": local_time(end)}


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """Everything the dashboard shows, from the selectors, in a fixed number of queries."""
    now = timezone.now()
    stats = selectors.task_stats(days=DASHBOARD_DAYS, now=now)
    chart = {
        "labels": [day["date"].strftime("%m-%d") for day in stats["by_day"]],
        "series": [
            {"key": "success", "label": gettext("Success"), "data": [day["success"] for day in stats["by_day"]]},
            {"key": "failed", "label": gettext("Failed"), "data": [day["failed"] for day in stats["by_day"]]},
            {"key": "other", "label": gettext("Other"), "data": [day["other"] for day in stats["by_day"]]},
        ],
        "title": gettext("Runs per day by status"),
    }
    task_counts = ScheduledTask.objects.aggregate(
        total=Count("pk"),
        enabled_count=Count("pk", filter=Q(enabled=True)),
        paused_count=Count("pk", filter=Q(enabled=True, paused=True)),
    )
    upcoming_ids = (
        selectors.task_list()
        .filter(next_run_time__isnull=False)
        .order_by("next_run_time", "pk")
        .values_list("pk", flat=True)[:UPCOMING_RUNS]
    )
    upcoming = selectors.task_page(ids=list(upcoming_ids))
    for task in upcoming:
        task.schedule_text = selectors.schedule_description(task)
    running = selectors.executions_with_task_names(
        selectors.execution_list().filter(status__in=TaskExecution.ACTIVE_STATUSES)[:RUNNING_SHOWN]
    )
    return {
        "stats": stats,
        "success_rate_percent": f"{stats['success_rate'] * 100:.1f}",
        "avg_duration": duration_text(stats["avg_duration_seconds"]),
        "chart_json": json_script(chart, "zq-dashboard-chart"),
        "task_counts": task_counts,
        "timeline": _timeline(now),
        "upcoming": upcoming,
        "running": running,
        "days": DASHBOARD_DAYS,
        "now": now,
    }


def _interval_messages() -> None:  # pragma: no cover - never called
    """Lists the texts schedules.describe_interval() translates from variables, so that makemessages finds them."""
    ngettext("Every day", "Every %(n)s days", 1)
    ngettext("Every hour", "Every %(n)s hours", 1)
    ngettext("Every minute", "Every %(n)s minutes", 1)
