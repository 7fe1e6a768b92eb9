"""Calendar services: create, update and delete calendars, replace their days, publish them for an app.

Every change of a calendar or of its days bumps the calendar's `revision` and, on commit, the
schedule version (services.state.schedule_touch): the scheduler then rebuilds the triggers of the
tasks and windows that use it, which read its days again once (triggers.calendar_snapshot). A write
that changes nothing bumps nothing.

Who may: the calendar rules of services.permissions, checked first (the actor is the request's
user, or SYSTEM); a calendar's listed days are part of it and change with CALENDAR_CHANGE.
`calendar_publish` has no actor: it is how the site's own apps publish (scheduler_app.calendars).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.exceptions import CalendarInUse, CalendarPublished
from scheduler_app.models import BlackoutWindow, Calendar, CalendarDay, ScheduledTask
from scheduler_app.services.permissions import CALENDAR_ADD, CALENDAR_CHANGE, CALENDAR_DELETE, Actor
from scheduler_app.services.state import schedule_touch

EDITABLE_FIELDS: tuple[str, ...] = ("name", "description", "weekdays", "known_until")

CALENDAR_REVISION_NOTE = _("revision %(revision)s, %(days)s listed days")
CALENDAR_NAME_TAKEN = _("A calendar with this name already exists.")
CALENDAR_IN_USE = _("The calendar is used by %(users)s; change them first.")
CALENDAR_DAY_TWICE = _("%(date)s is listed more than once.")
CALENDAR_KEPT_BY_HAND = _(
    'A calendar named "%(name)s" exists and is not published by %(source)s; rename it, or delete it, '
    "so that %(source)s can publish its own."
)
CALENDAR_PUBLISHED_ELSEWHERE = _('The calendar "%(name)s" is published by %(other)s, not by %(source)s.')
CALENDAR_DAYS_PUBLISHED = _('The days of "%(name)s" are published by %(source)s; they change when it publishes them.')


@dataclass(frozen=True)
class DaySpec:
    """One listed day of a calendar, as a service takes it."""

    date: date
    kind: str = CalendarDay.Kind.CLOSED
    note: str = ""
    closes_at: time | None = None


def _editable(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(data) - set(EDITABLE_FIELDS))
    if unknown:
        raise TypeError(f"Not editable calendar fields: {', '.join(unknown)}")
    return dict(data)


def _save(calendar: Calendar) -> None:
    try:
        with transaction.atomic():
            calendar.save()
    except IntegrityError:
        if Calendar.objects.filter(name=calendar.name).exclude(pk=calendar.pk).exists():
            raise ValidationError({"name": [gettext(CALENDAR_NAME_TAKEN)]}) from None
        raise


def _changed(calendar: Calendar) -> None:
    """The calendar's days or rules changed: a new revision, and the scheduler rebuilds on commit.

    Saved (the row is locked or new in this transaction), so the history keeps the revision as a
    version, with the number of listed days it has then as its change reason."""
    calendar.refresh_from_db(fields=["revision"])
    calendar.revision += 1
    calendar.updated_at = timezone.now()
    days = CalendarDay.objects.filter(calendar=calendar).count()
    calendar._change_reason = gettext(CALENDAR_REVISION_NOTE) % {"revision": calendar.revision, "days": days}
    calendar.save(update_fields=["revision", "updated_at"])
    schedule_touch()


def _day_rows(calendar: Calendar, days: Iterable[DaySpec]) -> list[CalendarDay]:
    """The days as rows, each checked like the model checks it; every problem is reported at once."""
    rows, errors, seen = [], [], set()
    for spec in days:
        if spec.date in seen:
            errors.append(gettext(CALENDAR_DAY_TWICE) % {"date": spec.date.isoformat()})
            continue
        seen.add(spec.date)
        row = CalendarDay(calendar=calendar, date=spec.date, kind=spec.kind, note=spec.note, closes_at=spec.closes_at)
        try:
            row.full_clean(exclude=["calendar"], validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            errors.extend(
                f"{spec.date.isoformat()}: {message}"
                for messages in error.message_dict.values()
                for message in messages
            )
        rows.append(row)
    if errors:
        raise ValidationError({"days": errors})
    return sorted(rows, key=lambda row: row.date)


def _current_days(calendar: Calendar) -> set[tuple]:
    return set(CalendarDay.objects.filter(calendar=calendar).values_list("date", "kind", "note", "closes_at"))


def _replace_days(calendar: Calendar, rows: Sequence[CalendarDay]) -> bool:
    wanted = {(row.date, row.kind, row.note, row.closes_at) for row in rows}
    if wanted == _current_days(calendar):
        return False
    CalendarDay.objects.filter(calendar=calendar).delete()
    CalendarDay.objects.bulk_create(rows, batch_size=500)
    return True


@transaction.atomic
def calendar_create(*, data: Mapping[str, Any], actor: Actor, days: Iterable[DaySpec] = ()) -> Calendar:
    """Create a calendar kept here (not published by an app), with its listed days (CALENDAR_ADD)."""
    CALENDAR_ADD.check(actor)
    calendar = Calendar(**_editable(data))
    calendar.full_clean()
    _save(calendar)
    rows = _day_rows(calendar, days)
    CalendarDay.objects.bulk_create(rows, batch_size=500)
    _changed(calendar)
    return calendar


@transaction.atomic
def calendar_update(*, calendar: Calendar, data: Mapping[str, Any], actor: Actor) -> Calendar:
    """Change the fields in `data` (CALENDAR_CHANGE); a published calendar keeps its weekdays and range (its app's)."""
    CALENDAR_CHANGE.check(actor)
    fields = _editable(data)
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    if calendar.source and any(name in fields for name in ("weekdays", "known_until")):
        fields = {name: value for name, value in fields.items() if name not in ("weekdays", "known_until")}
    before = {name: getattr(calendar, name) for name in fields}
    for name, value in fields.items():
        setattr(calendar, name, value)
    calendar.full_clean()
    if {name: getattr(calendar, name) for name in fields} == before:
        return calendar
    _save(calendar)
    _changed(calendar)  # a rename changes the schedule's words; the weekdays its days
    return calendar


@transaction.atomic
def calendar_days_replace(*, calendar: Calendar, days: Iterable[DaySpec], actor: Actor) -> bool:
    """Make these the calendar's listed days (CALENDAR_CHANGE); returns whether anything changed.

    Refused (CalendarPublished) for a calendar an app publishes: the next publication would undo it.
    """
    CALENDAR_CHANGE.check(actor)
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    if calendar.source:
        raise CalendarPublished(gettext(CALENDAR_DAYS_PUBLISHED) % {"name": calendar.name, "source": calendar.source})
    if not _replace_days(calendar, _day_rows(calendar, days)):
        return False
    _changed(calendar)
    return True


def calendar_users(*, calendar: Calendar) -> list[str]:
    """What uses the calendar, named for a message: tasks, event tasks, blackout windows."""
    tasks = ScheduledTask.objects.filter(calendar=calendar) | ScheduledTask.objects.filter(event_calendar=calendar)
    names = [f'"{name}"' for name in tasks.order_by("name").values_list("name", flat=True).distinct()[:10]]
    windows = BlackoutWindow.objects.filter(calendar=calendar).order_by("name").values_list("name", flat=True)[:10]
    names += [gettext('blackout window "%(name)s"') % {"name": name} for name in windows]
    return names


@transaction.atomic
def calendar_delete(*, calendar: Calendar, actor: Actor) -> None:
    """Delete a calendar and its days (CALENDAR_DELETE); refused (CalendarInUse) while a task or a window uses it."""
    CALENDAR_DELETE.check(actor)
    calendar = Calendar.objects.select_for_update().get(pk=calendar.pk)
    users = calendar_users(calendar=calendar)
    if users:
        raise CalendarInUse(gettext(CALENDAR_IN_USE) % {"users": ", ".join(users)})
    calendar.delete()
    schedule_touch()


@transaction.atomic
def calendar_publish(
    *,
    name: str,
    source: str,
    weekdays: str,
    days: Iterable[DaySpec],
    known_until: date | None,
    description: str = "",
) -> tuple[Calendar, bool]:
    """Create or replace the calendar `name` as `source` publishes it; returns it and whether it changed.

    The calendar belongs to its source: one kept by hand, or published by another source, is not
    overwritten (CalendarPublished). Publishing the same days again changes nothing and bumps no
    version, so an app may publish after every sync.
    """
    calendar = Calendar.objects.select_for_update().filter(name=name).first()
    if calendar is not None and calendar.source != source:
        message = CALENDAR_PUBLISHED_ELSEWHERE if calendar.source else CALENDAR_KEPT_BY_HAND
        raise CalendarPublished(gettext(message) % {"name": name, "source": source, "other": calendar.source})
    created = calendar is None
    if created:
        calendar = Calendar(name=name, source=source)
    before = (calendar.weekdays, calendar.known_until, calendar.description)
    calendar.weekdays, calendar.known_until = weekdays, known_until
    calendar.description = description or calendar.description
    calendar.full_clean()
    rows_changed = False
    if created or before != (calendar.weekdays, calendar.known_until, calendar.description):
        _save(calendar)
        rows_changed = True
    rows_changed = _replace_days(calendar, _day_rows(calendar, days)) or rows_changed
    if rows_changed:
        _changed(calendar)
    return calendar, rows_changed
