"""A task's APScheduler trigger: its cron, interval or one instant, limited to the days of a calendar
rule and to its validity window; and the schedule in words.

    ValidityTrigger(CalendarTrigger(CrontabTrigger | IntervalTrigger))   or   OneShotTrigger

How the parts combine (README, "Time zones and cron"): the cron expression (or the interval) picks
the times of day and the candidate days, in the task's timezone; the calendar rule keeps a candidate
only if its local date is an occurrence day (calendar_rules.DayRule). A day that is not one is
simply not an occurrence: nothing is recorded for it. The validity window then drops every
occurrence before `valid_from` or after `valid_until` (both included). Blackout windows and jitter
are applied when an occurrence fires (occurrences.py), not here.

Triggers are pickled into django-apscheduler's job table, so their state is text and ids only: a
calendar is named by id and revision, and its days are read through `calendar_snapshot`, a cache
per process keyed by the revision (every change of a calendar bumps its revision and the schedule
version, so the scheduler rebuilds the triggers that use it, and they read the new days once).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from django.utils.translation import gettext as _

from scheduler_app import calendar_rules
from scheduler_app.calendar_rules import CalendarDays, DayRule, ListedDay, describe_day_rule
from scheduler_app.models import Calendar, CalendarDay
from scheduler_app.schedules import (
    InvalidSchedule,
    build_trigger,
    describe_schedule,
    get_zone,
    parse_weekdays,
)

logger = logging.getLogger("scheduler_app.scheduler")

# ---------------------------------------------------------------------------------------------- calendar days


class UnknownCalendar(InvalidSchedule):
    """A task or window names a calendar that does not exist (any more)."""


_snapshots: dict[int, CalendarDays] = {}
_snapshots_lock = threading.Lock()


def _load(calendar_id: int) -> CalendarDays:
    row = Calendar.objects.filter(pk=calendar_id).values("name", "weekdays", "known_until", "revision").first()
    if row is None:
        raise UnknownCalendar(_("The calendar %(id)s does not exist.") % {"id": calendar_id})
    listed = {
        day: ListedDay(kind=kind, note=note, closes_at=closes_at)
        for day, kind, note, closes_at in CalendarDay.objects.filter(calendar_id=calendar_id).values_list(
            "date", "kind", "note", "closes_at"
        )
    }
    return CalendarDays(
        name=row["name"],
        weekdays=parse_weekdays(row["weekdays"]),
        listed=listed,
        known_until=row["known_until"],
        revision=row["revision"],
    )


def calendar_snapshot(calendar_id: int, revision: int | None = None) -> CalendarDays:
    """The days of a calendar at `revision` (None: whatever is current, one query to learn it).

    Read from the database once per revision per process (two queries), then from memory. A stale
    revision gets the current days: the caller's trigger is about to be rebuilt anyway.
    """
    if revision is None:
        current = Calendar.objects.filter(pk=calendar_id).values_list("revision", flat=True).first()
        if current is None:
            raise UnknownCalendar(_("The calendar %(id)s does not exist.") % {"id": calendar_id})
        revision = current
    with _snapshots_lock:
        cached = _snapshots.get(calendar_id)
    if cached is not None and cached.revision >= revision:
        return cached
    loaded = _load(calendar_id)
    with _snapshots_lock:
        _snapshots[calendar_id] = loaded
    return loaded


def forget_calendar_snapshots() -> None:
    """Drop the cache (tests that rewrite calendars behind the services' back)."""
    with _snapshots_lock:
        _snapshots.clear()


# ---------------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class TaskTiming:
    """Everything that decides a task's fire times (and nothing else): the trigger's input."""

    cron_expression: str | None
    interval_seconds: int | None
    timezone: str
    run_at: datetime | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    calendar_id: int | None = None
    calendar_revision: int | None = None
    calendar_rule: str = calendar_rules.OPEN_DAYS
    calendar_n: int | None = None
    event_calendar_id: int | None = None
    event_calendar_revision: int | None = None

    @property
    def signature(self) -> str:
        """Changes exactly when a fire time may change (the scheduler rebuilds the trigger then): the
        cron or interval, the zone, the one-shot time, the validity window, the calendar rule, or the
        days of a calendar it uses (their revisions). A plain cron or interval keeps the short form
        "cron|interval|zone", so its job is not rebuilt (and an interval not re-anchored) on upgrade."""
        base = f"{self.cron_expression}|{self.interval_seconds}|{self.timezone}"
        extra = [_iso(self.run_at), _iso(self.valid_from), _iso(self.valid_until)]
        if self.calendar_id is not None:
            extra += [
                self.calendar_id,
                self.calendar_revision,
                self.calendar_rule,
                self.calendar_n,
                self.event_calendar_id,
                self.event_calendar_revision,
            ]
        if all(part is None for part in extra):
            return base
        return base + "|" + "|".join("" if part is None else str(part) for part in extra)

    def day_rule(self) -> DayRule | None:
        if self.calendar_id is None:
            return None
        events = None
        if self.event_calendar_id is not None:
            events = calendar_snapshot(self.event_calendar_id, self.event_calendar_revision)
        return DayRule(
            rule=self.calendar_rule,
            calendar=calendar_snapshot(self.calendar_id, self.calendar_revision),
            n=self.calendar_n,
            events=events,
        )


def timing_of(task: Any) -> TaskTiming:
    """The timing of a task (a ScheduledTask, or any object with its field names, such as the
    scheduler's TaskSchedule); revisions it does not carry are read when the days are."""
    return TaskTiming(
        cron_expression=task.cron_expression or None,
        interval_seconds=task.interval_seconds,
        timezone=task.timezone,
        run_at=task.run_at,
        valid_from=task.valid_from,
        valid_until=task.valid_until,
        calendar_id=task.calendar_id,
        calendar_revision=getattr(task, "calendar_revision", None),
        calendar_rule=task.calendar_rule or calendar_rules.OPEN_DAYS,
        calendar_n=task.calendar_n,
        event_calendar_id=task.event_calendar_id,
        event_calendar_revision=getattr(task, "event_calendar_revision", None),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# ---------------------------------------------------------------------------------------------- triggers


class OneShotTrigger(BaseTrigger):
    """Fires once, at `run_at` (as APScheduler's DateTrigger: asked without a previous fire, it
    answers `run_at` even when that has passed, so a run missed while no scheduler ran is caught up
    by the misfire and catch-up rules; the scheduler does not rebuild one that is recorded)."""

    def __init__(self, run_at: datetime) -> None:
        self.run_at = run_at.astimezone(UTC)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        return self.run_at if previous_fire_time is None else None

    def __getstate__(self) -> dict:
        return {"version": 1, "run_at": self.run_at.isoformat()}

    def __setstate__(self, state: dict) -> None:
        self.__init__(datetime.fromisoformat(state["run_at"]))

    def __str__(self) -> str:
        return f"once[{self.run_at.isoformat()}]"


class CalendarTrigger(BaseTrigger):
    """Keeps the fire times of `inner` whose local date (in `timezone`) is an occurrence day of the
    calendar rule; from a day that is not one, asks `inner` again from the start of the next day
    that is (so a closed month costs one step, not one per fire time)."""

    def __init__(self, inner: BaseTrigger, timing: TaskTiming) -> None:
        self.inner = inner
        self.timing = timing
        self.zone = get_zone(timing.timezone)

    @property
    def rule(self) -> DayRule:
        return self.timing.day_rule()

    def day_start(self, day: date) -> datetime:
        """The first instant of a local date (UTC): local midnight, or the jump if midnight is skipped."""
        return datetime.combine(day, time(), tzinfo=self.zone).astimezone(UTC)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        rule = self.rule
        candidate = self.inner.get_next_fire_time(previous_fire_time, now)
        horizon: date | None = None
        while candidate is not None:
            day = candidate.astimezone(self.zone).date()
            if rule.allows(day):
                return candidate
            following = rule.next_allowed(day)
            # A cron expression that never fires on an occurrence day (Saturdays on a Monday-to-Friday
            # calendar) would be asked forever: past one calendar cycle beyond the listed days, none will.
            horizon = horizon or rule.calendar.search_horizon(day)
            if following is None or following > horizon:
                return None
            candidate = self.inner.get_next_fire_time(None, self.day_start(following))
        return None

    def __getstate__(self) -> dict:
        return {"version": 1, "inner": self.inner, "timing": _timing_state(self.timing)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["inner"], _timing_from_state(state["timing"]))

    def __str__(self) -> str:
        return f"{self.inner} on {self.timing.calendar_rule} of calendar {self.timing.calendar_id}"


class ValidityTrigger(BaseTrigger):
    """Keeps the fire times of `inner` within [valid_from, valid_until], both included."""

    def __init__(self, inner: BaseTrigger, *, valid_from: datetime | None, valid_until: datetime | None) -> None:
        self.inner = inner
        self.valid_from = None if valid_from is None else valid_from.astimezone(UTC)
        self.valid_until = None if valid_until is None else valid_until.astimezone(UTC)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        if previous_fire_time is None and self.valid_from is not None and now < self.valid_from:
            now = self.valid_from
        candidate = self.inner.get_next_fire_time(previous_fire_time, now)
        if candidate is not None and self.valid_from is not None and candidate < self.valid_from:
            candidate = self.inner.get_next_fire_time(None, self.valid_from)
        if candidate is None or (self.valid_until is not None and candidate > self.valid_until):
            return None
        return candidate

    def __getstate__(self) -> dict:
        return {
            "version": 1,
            "inner": self.inner,
            "valid_from": _iso(self.valid_from),
            "valid_until": _iso(self.valid_until),
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(
            state["inner"], valid_from=_instant(state["valid_from"]), valid_until=_instant(state["valid_until"])
        )

    def __str__(self) -> str:
        return f"{self.inner} within [{_iso(self.valid_from)}, {_iso(self.valid_until)}]"


_TIMING_FIELDS = ("calendar_id", "calendar_revision", "calendar_rule", "calendar_n")
_TIMING_EVENT_FIELDS = ("event_calendar_id", "event_calendar_revision")


def _timing_state(timing: TaskTiming) -> dict:
    # Only what the calendar filter reads: ids, revisions, the rule and the zone.
    names = ("timezone", *_TIMING_FIELDS, *_TIMING_EVENT_FIELDS)
    return {name: getattr(timing, name) for name in names}


def _timing_from_state(state: dict) -> TaskTiming:
    return TaskTiming(cron_expression=None, interval_seconds=None, **state)


def with_revisions(timing: TaskTiming) -> TaskTiming:
    """The timing with the current revision of each calendar it names and does not pin (one query)."""
    wanted = {
        field: calendar_id
        for field, calendar_id in (
            ("calendar_revision", timing.calendar_id),
            ("event_calendar_revision", timing.event_calendar_id),
        )
        if calendar_id is not None and getattr(timing, field) is None
    }
    if not wanted:
        return timing
    revisions = dict(Calendar.objects.filter(pk__in=set(wanted.values())).values_list("pk", "revision"))
    missing = sorted(set(wanted.values()) - set(revisions))
    if missing:
        raise UnknownCalendar(_("The calendar %(id)s does not exist.") % {"id": missing[0]})
    return replace(timing, **{field: revisions[calendar_id] for field, calendar_id in wanted.items()})


def build_task_trigger(timing: TaskTiming, *, start_date: datetime | None = None) -> BaseTrigger:
    """The trigger of a task (module docstring). An interval counts from `valid_from` when the task
    has one, otherwise from `start_date` (cut to the whole second, see schedules.build_trigger).

    Raises InvalidSchedule (UnknownCalendar included) for anything that cannot run; the services call
    it before saving, so a task is refused with the very code that will fire it.
    """
    timing = with_revisions(timing)
    if timing.run_at is not None:
        if timing.cron_expression or timing.interval_seconds:
            raise InvalidSchedule(_("Set one of a cron expression, an interval and a one-shot time, not several."))
        get_zone(timing.timezone)
        return OneShotTrigger(timing.run_at)
    anchor = timing.valid_from if timing.valid_from is not None and timing.interval_seconds else start_date
    trigger = build_trigger(
        cron_expression=timing.cron_expression,
        interval_seconds=timing.interval_seconds,
        timezone=timing.timezone,
        start_date=anchor,
    )
    if timing.calendar_id is not None:
        timing.day_rule()  # reads the days now: into the cache, and a missing calendar is refused here
        trigger = CalendarTrigger(trigger, timing)
    if timing.valid_from is not None or timing.valid_until is not None:
        trigger = ValidityTrigger(trigger, valid_from=timing.valid_from, valid_until=timing.valid_until)
    return trigger


def fire_times(timing: TaskTiming, *, count: int, now: datetime, start_date: datetime | None = None) -> list[datetime]:
    """The next `count` fire times at or after `now` (UTC), from the trigger the scheduler would
    build; an interval without a validity window counts from `start_date` (default: now)."""
    trigger = build_task_trigger(timing, start_date=start_date or now)
    times: list[datetime] = []
    previous = None
    if timing.interval_seconds and timing.valid_from is None and start_date is None:
        previous = now  # a new interval job fires one interval from now
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None or fire < now:
            break
        times.append(fire)
        previous = fire
    return times


# ---------------------------------------------------------------------------------------------- in words


def describe_timing(
    timing: TaskTiming, *, calendar_name: str | None = None, event_calendar_name: str | None = None
) -> str:
    """The whole schedule in words, in the active language: the cron or interval (or the one-shot
    time), then the calendar rule and the validity window. Needs the calendars' names only.

    "At 16:30, only on open days of SSE", "在 16:30，仅在 SSE 的开放日".
    """
    zone = get_zone(timing.timezone)
    if timing.run_at is not None:
        return _("Once, at %(time)s") % {"time": timing.run_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")}
    parts = [describe_schedule(cron_expression=timing.cron_expression, interval_seconds=timing.interval_seconds)]
    if timing.calendar_id is not None:
        parts.append(
            describe_day_rule(
                rule=timing.calendar_rule,
                n=timing.calendar_n,
                calendar=calendar_name or str(timing.calendar_id),
                events=event_calendar_name,
            )
        )
    if timing.valid_from is not None:
        parts.append(_("from %(time)s") % {"time": timing.valid_from.astimezone(zone).strftime("%Y-%m-%d %H:%M")})
    if timing.valid_until is not None:
        parts.append(_("until %(time)s") % {"time": timing.valid_until.astimezone(zone).strftime("%Y-%m-%d %H:%M")})
    return _(", ").join(parts)
