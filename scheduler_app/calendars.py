"""The calendar API for other apps: publish a calendar's days to the scheduler, or register a source.

    from scheduler_app.calendars import DaySpec, PublishedCalendar, calendar_publish, calendar_source

    @calendar_source("marketdata.trading_calendar", description="Exchange trading days")
    def trading_calendars() -> list[PublishedCalendar]:
        return [PublishedCalendar(name="SSE", weekdays="1-5", known_until=..., days=[DaySpec(...)])]

    calendar_publish(calendar, source="marketdata.trading_calendar")   # e.g. after each sync

An app that keeps days of its own (an exchange's trading calendar, report dates) hands them to the
scheduler as a named calendar, which tasks then use like any other (ScheduledTask.calendar). The
scheduler never imports the app: the app calls this module, which writes through the calendar
services (one revision and one schedule version bump per change; publishing the same days again
changes nothing). A published calendar belongs to its source: the admin shows its days read-only,
and a calendar of the same name kept by hand is never overwritten.

`calendar_sources_publish()` publishes every registered source (init_scheduler does, so the demo
has the market-data app's sample trading calendar). Sources are registered when their module is
imported: put them in the app's `scheduler_actions` module, which the scheduler imports at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from scheduler_app.exceptions import CalendarPublished
from scheduler_app.models import CalendarDay
from scheduler_app.services.calendars import DaySpec
from scheduler_app.services.calendars import calendar_publish as _publish

logger = logging.getLogger("scheduler_app.calendars")

CLOSED = CalendarDay.Kind.CLOSED
OPEN = CalendarDay.Kind.OPEN
HALF_DAY = CalendarDay.Kind.HALF_DAY

__all__ = [
    "CLOSED",
    "HALF_DAY",
    "OPEN",
    "CalendarPublished",
    "CalendarSource",
    "DaySpec",
    "PublishedCalendar",
    "calendar_publish",
    "calendar_source",
    "calendar_sources_publish",
    "registered_calendar_sources",
]


@dataclass(frozen=True)
class PublishedCalendar:
    """A calendar as an app publishes it: open weekdays (cron's day-of-week field, "1-5"), the listed
    days (holidays on open weekdays, open days on closed ones, half days), and the last day the lists
    are complete for (later days follow the weekdays alone)."""

    name: str
    weekdays: str
    days: list[DaySpec] = field(default_factory=list)
    known_until: date | None = None
    description: str = ""


@dataclass(frozen=True)
class CalendarSource:
    name: str
    func: Callable[[], list[PublishedCalendar]]
    description: str = ""


_sources: dict[str, CalendarSource] = {}


def calendar_source(name: str, *, description: str = "") -> Callable:
    """Register the decorated function, `() -> list[PublishedCalendar]`, as the calendar source `name`."""

    def decorator(func: Callable[[], list[PublishedCalendar]]) -> Callable[[], list[PublishedCalendar]]:
        _sources[name] = CalendarSource(name=name, func=func, description=description or (func.__doc__ or "").strip())
        return func

    return decorator


def registered_calendar_sources() -> list[CalendarSource]:
    return [_sources[name] for name in sorted(_sources)]


def calendar_publish(calendar: PublishedCalendar, *, source: str) -> bool:
    """Create or replace the named calendar with these days; returns whether anything changed.

    Raises ValidationError for days that cannot be stored, CalendarPublished when a calendar of that
    name is kept by hand or by another source.
    """
    _calendar, changed = _publish(
        name=calendar.name,
        source=source,
        weekdays=calendar.weekdays,
        days=calendar.days,
        known_until=calendar.known_until,
        description=calendar.description,
    )
    if changed:
        logger.info("calendar %r published by %s (%s listed days)", calendar.name, source, len(calendar.days))
    return changed


@dataclass
class PublishReport:
    published: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def calendar_sources_publish() -> PublishReport:
    """Publish the calendars of every registered source; a refused one is reported, not raised."""
    report = PublishReport()
    for source in registered_calendar_sources():
        for calendar in source.func():
            try:
                changed = calendar_publish(calendar, source=source.name)
            except CalendarPublished as error:
                report.refused.append(f"{calendar.name}: {error.message}")
                continue
            (report.published if changed else report.unchanged).append(calendar.name)
    return report
