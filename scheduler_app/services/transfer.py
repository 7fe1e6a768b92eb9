"""Export and import of the scheduler's configuration: tasks, calendars (weekdays and listed days),
blackout windows and notification subscriptions, as one document (JSON or YAML, by the commands).

The document names everything by name, never by id: a workflow's steps and their dependencies, a
task's calendars, a window's task and calendar, a subscription's task. So an export loads into an
empty database, and importing it again changes nothing (idempotent by name). The format and its two
directions live together here so that they cannot drift apart; the export is a read, the import
writes through the task, calendar and blackout services (their validation, their schedule version
bump) in one transaction: a document with any problem changes nothing.

Not exported: ids, job ids, timestamps, run history, and webhook secrets (a subscription imported
into another database gets a new secret; one that exists keeps its own). Calendars published by an
app are exported with their days for reference; an import leaves a published calendar to its app.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime, parse_time

from scheduler_app.models import BlackoutWindow, Calendar, CalendarDay, NotificationSubscription, ScheduledTask
from scheduler_app.services import blackouts, calendars, tasks
from scheduler_app.services.audit import action_record
from scheduler_app.services.permissions import SYSTEM, Actor

FORMAT_VERSION = 1
TASK_FIELDS = tuple(name for name in tasks.EDITABLE_FIELDS if name not in ("calendar", "event_calendar"))
TASK_DATETIMES = ("run_at", "valid_from", "valid_until", "paused_until")
WINDOW_FIELDS = tuple(name for name in blackouts.EDITABLE_FIELDS if name not in ("task", "calendar"))
WINDOW_TIMES = ("from_time", "until_time")
WINDOW_DATETIMES = ("starts_at", "ends_at")
SUBSCRIPTION_FIELDS = (
    "name",
    "channel",
    "email_to",
    "webhook_url",
    "on_failure",
    "on_recovery",
    "on_skip",
    "on_stuck",
    "on_no_scheduler",
    "on_handover_stuck",
    "enabled",
)
SECTIONS = ("calendars", "tasks", "blackout_windows", "subscriptions")


class ImportRefused(ValueError):
    """A document that cannot be imported; the message is one readable line."""


def _text(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------------------------------- export


def _workflow_config_out(config: Any, names: Mapping[int, str]) -> Any:
    """A workflow's steps and dependencies by task name instead of id."""
    if not isinstance(config, dict) or not isinstance(config.get("tasks"), list):
        return config
    steps = []
    for step in config["tasks"]:
        step = dict(step)
        step["task"] = names.get(step.pop("task_id", None))
        step["dependencies"] = [names.get(dep) for dep in step.get("dependencies", [])]
        steps.append(step)
    return {**config, "tasks": steps}


def export_document() -> dict[str, Any]:
    """Everything the import reads, sorted by name, so that the same configuration exports the same text."""
    names = dict(ScheduledTask.objects.values_list("pk", "name"))
    calendar_names = dict(Calendar.objects.values_list("pk", "name"))
    document: dict[str, Any] = {"format": FORMAT_VERSION}
    document["calendars"] = [
        {
            "name": calendar.name,
            "description": calendar.description,
            "weekdays": calendar.weekdays,
            "known_until": _text(calendar.known_until),
            "source": calendar.source,
            "days": [
                {"date": _text(day.date), "kind": day.kind, "note": day.note, "closes_at": _text(day.closes_at)}
                for day in CalendarDay.objects.filter(calendar=calendar).order_by("date")
            ],
        }
        for calendar in Calendar.objects.order_by("name")
    ]
    document["tasks"] = []
    for task in ScheduledTask.objects.order_by("name"):
        row = {name: _text(getattr(task, name)) for name in TASK_FIELDS}
        if task.task_type == ScheduledTask.TaskType.WORKFLOW:
            row["config"] = _workflow_config_out(task.config, names)
        row["calendar"] = calendar_names.get(task.calendar_id)
        row["event_calendar"] = calendar_names.get(task.event_calendar_id)
        document["tasks"].append(row)
    document["blackout_windows"] = [
        {
            **{name: _text(getattr(window, name)) for name in WINDOW_FIELDS},
            "task": names.get(window.task_id),
            "calendar": calendar_names.get(window.calendar_id),
        }
        for window in BlackoutWindow.objects.order_by("name", "task_id", "pk")
    ]
    document["subscriptions"] = [
        {**{name: getattr(row, name) for name in SUBSCRIPTION_FIELDS}, "task": names.get(row.task_id)}
        for row in NotificationSubscription.objects.order_by("name", "task_id", "pk")
    ]
    return document


# ---------------------------------------------------------------------------------------------- import


def _rows(document: Mapping[str, Any], section: str) -> list[dict[str, Any]]:
    rows = document.get(section, [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) and row.get("name") for row in rows):
        raise ImportRefused(f'"{section}" must be a list of objects, each with a "name".')
    names = [row["name"] for row in rows]
    if section in ("calendars", "tasks") and len(set(names)) != len(names):
        twice = sorted({name for name in names if names.count(name) > 1})
        raise ImportRefused(f'"{section}" names {", ".join(twice)} more than once.')
    return rows


def _parsed(row: Mapping[str, Any], fields: tuple[str, ...], parsers: Mapping[str, Callable]) -> dict[str, Any]:
    data = {}
    for name in fields:
        if name not in row:
            continue
        value = row[name]
        if name in parsers and isinstance(value, str):
            parsed = parsers[name](value)
            if parsed is None:
                raise ImportRefused(f'"{row["name"]}": {name} "{value}" is not a valid date or time.')
            value = parsed
        data[name] = value
    return data


def _describe(kind: str, name: str, before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """The diff lines of one object: created, or the fields that change."""
    if before is None:
        return [f"+ {kind} {name}"]
    lines = [
        f"~ {kind} {name}: {field} {_text(before.get(field))!r} -> {_text(value)!r}"
        for field, value in after.items()
        if _text(before.get(field)) != _text(value)
    ]
    return lines


def _calendar(name: Any, calendars_by_name: Mapping[str, Calendar], owner: str) -> Calendar | None:
    if name in (None, ""):
        return None
    if name not in calendars_by_name:
        raise ImportRefused(f'{owner}: no calendar named "{name}".')
    return calendars_by_name[name]


def _task_ref(name: Any, tasks_by_name: Mapping[str, ScheduledTask], owner: str) -> ScheduledTask | None:
    if name in (None, ""):
        return None
    if name not in tasks_by_name:
        raise ImportRefused(f'{owner}: no task named "{name}".')
    return tasks_by_name[name]


def _workflow_config_in(config: Any, ids: Mapping[str, int], owner: str) -> Any:
    if not isinstance(config, dict) or not isinstance(config.get("tasks"), list):
        return config
    steps = []
    for step in config["tasks"]:
        if not isinstance(step, dict) or "task" not in step:
            raise ImportRefused(f'{owner}: every workflow step needs a "task" (a task name).')
        step = dict(step)
        name = step.pop("task")
        if name not in ids:
            raise ImportRefused(f'{owner}: the step "{name}" is not a task.')
        step["task_id"] = ids[name]
        dependencies = step.get("dependencies", [])
        unknown = [dep for dep in dependencies if dep not in ids]
        if unknown:
            raise ImportRefused(f"{owner}: the dependencies {unknown} are not tasks.")
        step["dependencies"] = [ids[dep] for dep in dependencies]
        steps.append(step)
    return {**config, "tasks": steps}


def _first_error(error: ValidationError, owner: str) -> ImportRefused:
    if hasattr(error, "message_dict"):
        field, messages = next(iter(error.message_dict.items()))
        return ImportRefused(f"{owner}: {field}: {messages[0]}")
    return ImportRefused(f"{owner}: {error.messages[0]}")


def _import_calendars(rows: list[dict[str, Any]], user: Actor, lines: list[str]) -> dict[str, Calendar]:
    existing = {calendar.name: calendar for calendar in Calendar.objects.all()}
    for row in rows:
        owner = f'calendar "{row["name"]}"'
        data = _parsed(row, ("name", "description", "weekdays", "known_until"), {"known_until": parse_date})
        days = []
        for day in row.get("days", []) or []:
            if not isinstance(day, dict) or parse_date(str(day.get("date", ""))) is None:
                raise ImportRefused(f"{owner}: every day needs a date (YYYY-MM-DD).")
            closes_at = day.get("closes_at")
            days.append(
                calendars.DaySpec(
                    date=parse_date(str(day["date"])),
                    kind=day.get("kind", CalendarDay.Kind.CLOSED),
                    note=day.get("note", ""),
                    closes_at=parse_time(closes_at) if isinstance(closes_at, str) else closes_at,
                )
            )
        calendar = existing.get(row["name"])
        try:
            if calendar is None:
                existing[row["name"]] = calendars.calendar_create(data=data, days=days, actor=user)
                lines.append(f"+ calendar {row['name']}")
                continue
            if calendar.source:
                continue  # published by an app: its days are the app's
            before = {name: getattr(calendar, name) for name in data}
            lines.extend(_describe("calendar", row["name"], before, data))
            calendar = calendars.calendar_update(calendar=calendar, data=data, actor=user)
            if calendars.calendar_days_replace(calendar=calendar, days=days, actor=user):
                lines.append(f"~ calendar {row['name']}: days ({len(days)} listed)")
            existing[row["name"]] = calendar
        except ValidationError as error:
            raise _first_error(error, owner) from None
    return existing


def _task_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps before the workflows that list them (a workflow of workflows too)."""
    by_name = {row["name"]: row for row in rows}
    done: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(row: dict[str, Any], path: tuple[str, ...]) -> None:
        if row["name"] in seen or row["name"] in path:
            return
        config = row.get("config")
        if row.get("task_type") == ScheduledTask.TaskType.WORKFLOW and isinstance(config, dict):
            for step in config.get("tasks", []) or []:
                if isinstance(step, dict) and step.get("task") in by_name:
                    visit(by_name[step["task"]], (*path, row["name"]))
        seen.add(row["name"])
        done.append(row)

    for row in rows:
        visit(row, ())
    return done


def _import_tasks(rows: list[dict[str, Any]], calendars_by_name: dict[str, Calendar], user: Actor, lines: list[str]):
    existing = {task.name: task for task in ScheduledTask.objects.all()}
    ids = {name: task.pk for name, task in existing.items()}
    parsers = dict.fromkeys(TASK_DATETIMES, parse_datetime)
    for row in _task_order(rows):
        owner = f'task "{row["name"]}"'
        data = _parsed(row, TASK_FIELDS, parsers)
        if row.get("task_type") == ScheduledTask.TaskType.WORKFLOW and "config" in data:
            data["config"] = _workflow_config_in(data["config"], ids, owner)
        for field in ("calendar", "event_calendar"):
            if field in row:
                data[field] = _calendar(row[field], calendars_by_name, owner)
        task = existing.get(row["name"])
        try:
            if task is None:
                task = tasks.task_create(data=data, user=user)
                lines.append(f"+ task {row['name']}")
            else:
                before = {name: getattr(task, name) for name in data}
                changes = _describe("task", row["name"], before, data)
                if changes:
                    lines.extend(changes)
                    task = tasks.task_update(task=task, data=data, user=user)
        except ValidationError as error:
            raise _first_error(error, owner) from None
        existing[row["name"]] = task
        ids[row["name"]] = task.pk
    return existing


def _import_windows(rows, tasks_by_name, calendars_by_name, user: Actor, lines: list[str]) -> None:
    existing = {(window.name, window.task_id): window for window in BlackoutWindow.objects.all()}
    parsers = {**dict.fromkeys(WINDOW_TIMES, parse_time), **dict.fromkeys(WINDOW_DATETIMES, parse_datetime)}
    for row in rows:
        owner = f'blackout window "{row["name"]}"'
        data = _parsed(row, WINDOW_FIELDS, parsers)
        data["task"] = _task_ref(row.get("task"), tasks_by_name, owner)
        data["calendar"] = _calendar(row.get("calendar"), calendars_by_name, owner)
        window = existing.get((row["name"], data["task"].pk if data["task"] else None))
        try:
            if window is None:
                blackouts.blackout_create(data=data, actor=user)
                lines.append(f"+ blackout window {row['name']}")
                continue
            before = {name: getattr(window, name) for name in data}
            changes = _describe("blackout window", row["name"], before, data)
            if changes:
                lines.extend(changes)
                blackouts.blackout_update(window=window, data=data, actor=user)
        except ValidationError as error:
            raise _first_error(error, owner) from None


def _import_subscriptions(rows, tasks_by_name, lines: list[str]) -> None:
    existing = {(row.name, row.task_id): row for row in NotificationSubscription.objects.all()}
    for row in rows:
        owner = f'subscription "{row["name"]}"'
        data = {name: row[name] for name in SUBSCRIPTION_FIELDS if name in row}
        task = _task_ref(row.get("task"), tasks_by_name, owner)
        subscription = existing.get((row["name"], task.pk if task else None))
        if subscription is None:
            subscription = NotificationSubscription(task=task)
            lines.append(f"+ subscription {row['name']}")
        else:
            changes = _describe("subscription", row["name"], {n: getattr(subscription, n) for n in data}, data)
            if not changes:
                continue
            lines.extend(changes)
        for name, value in data.items():
            setattr(subscription, name, value)
        try:
            subscription.full_clean()
        except ValidationError as error:
            raise _first_error(error, owner) from None
        subscription.save()


@transaction.atomic
def scheduler_import(*, document: Any, user: Actor = SYSTEM, dry_run: bool = False) -> list[str]:
    """Load an export_document(): create what is missing, change what differs, by name; returns the diff
    ("+ task x", "~ task x: field old -> new"). Nothing is deleted. With `dry_run` every write is
    rolled back: the diff is what an import would do. Raises ImportRefused (one line) and changes
    nothing when any object is refused; the services' validation and permission checks apply."""
    if not isinstance(document, dict):
        raise ImportRefused("The document must be an object with the sections " + ", ".join(SECTIONS) + ".")
    if document.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise ImportRefused(f"Unknown format {document.get('format')!r}; this version reads format {FORMAT_VERSION}.")
    unknown = sorted(set(document) - {"format", *SECTIONS})
    if unknown:
        raise ImportRefused(f"Unknown sections: {', '.join(unknown)}.")
    sections = {section: _rows(document, section) for section in SECTIONS}
    lines: list[str] = []
    calendars_by_name = _import_calendars(sections["calendars"], user, lines)
    tasks_by_name = _import_tasks(sections["tasks"], calendars_by_name, user, lines)
    _import_windows(sections["blackout_windows"], tasks_by_name, calendars_by_name, user, lines)
    _import_subscriptions(sections["subscriptions"], tasks_by_name, lines)
    if dry_run:
        transaction.set_rollback(True)
    elif lines:
        action_record(actor=user, action="import", details={"changes": len(lines)})
    return lines
