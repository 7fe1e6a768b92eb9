"""Schedules: 5-field cron with crontab semantics, intervals, timezones, DST-safe fire times.

Why not APScheduler's CronTrigger: it numbers Monday as 0, uses AND where crontab ORs a restricted
day-of-month with a restricted day-of-week, and (3.11, zoneinfo) returns the same time forever or
goes back in time inside an autumn DST overlap. `CrontabTrigger` below replaces it and is still an
APScheduler trigger, so the scheduler and the job store use it unchanged.

DST rules (those of Vixie cron): a wall-clock time that falls in a spring gap runs once, shifted
forward by the size of the gap; a wall-clock time that occurs twice in an autumn overlap runs once
(the first time), unless the hour field is `*`, in which case the job follows real time and runs in
both passes of the repeated hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.utils import timezone as dj_timezone
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# How far ahead to look for a matching day: 8 years covers Feb 29 across a skipped leap year (2100).
_SEARCH_DAYS = 366 * 8 + 2
# Wider than any DST shift in the tz database, so every candidate near a transition is compared.
_DST_WINDOW = timedelta(hours=3)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {
    name: i
    for i, name in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_WEEKDAY_NAMES = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


class InvalidSchedule(ValueError):
    """A cron expression, interval or timezone that cannot be used; the message says why."""


@dataclass(frozen=True)
class _FieldSpec:
    label: str
    low: int
    high: int
    names: dict[str, int] | None = None
    allows_question_mark: bool = False


_FIELDS = (
    _FieldSpec("minute", 0, 59),
    _FieldSpec("hour", 0, 23),
    _FieldSpec("day of month", 1, 31, allows_question_mark=True),
    _FieldSpec("month", 1, 12, _MONTH_NAMES),
    # 0 and 7 both mean Sunday, as in crontab(5).
    _FieldSpec("day of week", 0, 7, _WEEKDAY_NAMES, allows_question_mark=True),
)


def _field_label(spec: _FieldSpec) -> str:
    labels = {
        "minute": _("minute"),
        "hour": _("hour"),
        "day of month": _("day of month"),
        "month": _("month"),
        "day of week": _("day of week"),
    }
    return labels[spec.label]


def _field_error(spec: _FieldSpec, message: str) -> InvalidSchedule:
    return InvalidSchedule(
        _("Invalid %(field)s field: %(message)s") % {"field": _field_label(spec), "message": message}
    )


def _parse_value(token: str, spec: _FieldSpec) -> int:
    lowered = token.lower()
    if spec.names and lowered in spec.names:
        return spec.names[lowered]
    if not re.fullmatch(r"\d+", token):
        raise _field_error(spec, _("'%(value)s' is not a number or a known name") % {"value": token})
    value = int(token)
    if not spec.low <= value <= spec.high:
        raise _field_error(
            spec,
            _("%(value)s is out of range %(low)s-%(high)s") % {"value": value, "low": spec.low, "high": spec.high},
        )
    return value


def _parse_field(text: str, spec: _FieldSpec) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _field_error(spec, _("empty list item in '%(text)s'") % {"text": text})
        base, _slash, step_text = item.partition("/")
        step = 1
        if _slash:
            if not re.fullmatch(r"\d+", step_text) or int(step_text) < 1:
                raise _field_error(
                    spec, _("step must be a whole number of at least 1, got '%(step)s'") % {"step": step_text}
                )
            step = int(step_text)
        if base == "*" or (base == "?" and spec.allows_question_mark):
            low, high = spec.low, spec.high
        elif "-" in base:
            start_text, _dash, end_text = base.partition("-")
            low, high = _parse_value(start_text, spec), _parse_value(end_text, spec)
            if low > high:
                raise _field_error(spec, _("range %(range)s runs backwards") % {"range": base})
        else:
            low = _parse_value(base, spec)
            # "5/15" means "from 5 to the end, every 15", as in Vixie cron.
            high = spec.high if _slash else low
        if step > spec.high - spec.low + 1:
            raise _field_error(spec, _("step %(step)s is larger than the field's range") % {"step": step})
        values.update(range(low, high + 1, step))
    if spec.label == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed 5-field cron expression; weekdays are numbered crontab-style, 0 = Sunday."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    # crontab(5): when both day fields are restricted, a day matches if EITHER matches; a field
    # written starting with "*" counts as unrestricted.
    days_restricted: bool
    weekdays_restricted: bool

    @property
    def every_hour(self) -> bool:
        return len(self.hours) == 24

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        day_ok = day.day in self.days
        weekday_ok = day.isoweekday() % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok


@lru_cache(maxsize=1024)
def parse_cron(expression: str) -> CronSchedule:
    """Parse and validate a cron expression; raises InvalidSchedule naming the faulty field."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule(_("The cron expression is empty."))
    text = " ".join(expression.split())
    text = MACROS.get(text.lower(), text)
    parts = text.split(" ")
    if len(parts) != 5:
        raise InvalidSchedule(
            _(
                "A cron expression has 5 fields (minute hour day-of-month month day-of-week), "
                "got %(count)s: '%(expression)s'."
            )
            % {"count": len(parts), "expression": expression.strip()}
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)
    )
    schedule = CronSchedule(
        expression=" ".join(expression.split()),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=months,
        weekdays=weekdays,
        days_restricted=not parts[2].startswith(("*", "?")),
        weekdays_restricted=not parts[4].startswith(("*", "?")),
    )
    if next_cron_time(schedule, datetime(2000, 1, 1, tzinfo=UTC), UTC) is None:
        raise InvalidSchedule(
            _("The cron expression '%(expression)s' never fires (no such date).") % {"expression": schedule.expression}
        )
    return schedule


def get_zone(name: str | None) -> ZoneInfo:
    """The ZoneInfo for an IANA name; raises InvalidSchedule for an unknown one."""
    if not name or not isinstance(name, str):
        raise InvalidSchedule(_("A timezone is required."))
    if name not in _available_zones():
        raise InvalidSchedule(
            _("Unknown timezone '%(name)s'; use an IANA name such as Asia/Shanghai.") % {"name": name}
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidSchedule(_("Unknown timezone '%(name)s'.") % {"name": name}) from error


@lru_cache(maxsize=1)
def _available_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _instants(wall: datetime, zone: tzinfo, *, both_passes: bool) -> Iterator[datetime]:
    """The real instants at which a naive wall-clock time happens in `zone`."""
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    first_utc, second_utc = first.astimezone(UTC), second.astimezone(UTC)
    if first_utc == second_utc:
        yield first_utc
    elif first_utc.astimezone(zone).replace(tzinfo=None) != wall:
        # Spring gap: the wall time does not exist; fold=0 reads it with the offset in force before
        # the jump, which shifts it forward by the size of the gap.
        yield first_utc
    else:
        # Autumn overlap: fold=0 is the first pass (the earlier instant).
        yield first_utc
        if both_passes:
            yield second_utc


def next_cron_time(schedule: CronSchedule, after: datetime, zone: tzinfo) -> datetime | None:
    """The first fire time strictly after `after` (aware), as a UTC instant; None if there is none.

    UTC on purpose: Python compares and subtracts two datetimes that share a tzinfo object by their
    wall clocks, which is wrong inside a DST overlap; UTC instants always compare correctly.
    """
    floor = after.astimezone(zone).replace(tzinfo=None) - _DST_WINDOW
    best: datetime | None = None
    best_wall: datetime | None = None
    day = floor.date()
    for _offset in range(_SEARCH_DAYS):
        if best_wall is not None and datetime.combine(day, time()) > best_wall + _DST_WINDOW:
            break
        if schedule.matches_day(day):
            for hour in schedule.hours:
                if day == floor.date() and hour < floor.hour:
                    continue
                for minute in schedule.minutes:
                    wall = datetime.combine(day, time(hour, minute))
                    if wall < floor:
                        continue
                    if best_wall is not None and wall > best_wall + _DST_WINDOW:
                        return best
                    for instant in _instants(wall, zone, both_passes=schedule.every_hour):
                        if instant > after and (best is None or instant < best):
                            best, best_wall = instant, wall
        day += timedelta(days=1)
    return best


class CrontabTrigger(BaseTrigger):
    """APScheduler trigger for a 5-field cron expression with crontab semantics and DST guards."""

    def __init__(self, expression: str, timezone: str | tzinfo) -> None:
        self.timezone = get_zone(timezone) if isinstance(timezone, str) else timezone
        self.schedule = parse_cron(expression)
        self.expression = self.schedule.expression

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # APScheduler asks for the first fire time >= now, or the first one after the previous fire.
        after = previous_fire_time if previous_fire_time is not None else now - timedelta(microseconds=1)
        return next_cron_time(self.schedule, after, self.timezone)

    def __getstate__(self) -> dict:
        return {"version": 1, "expression": self.expression, "timezone": str(self.timezone)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["expression"], state["timezone"])

    def __str__(self) -> str:
        return f"crontab[{self.expression}, {self.timezone}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.expression!r}, timezone='{self.timezone}')>"


def validate_interval(interval_seconds: object) -> int:
    """An interval in whole seconds, at least 1; raises InvalidSchedule otherwise."""
    if isinstance(interval_seconds, bool) or not isinstance(interval_seconds, int):
        raise InvalidSchedule(_("The interval must be a whole number of seconds."))
    if interval_seconds <= 0:
        raise InvalidSchedule(_("The interval must be at least 1 second."))
    return interval_seconds


def build_trigger(
    *,
    cron_expression: str | None,
    interval_seconds: int | None,
    timezone: str,
    start_date: datetime | None = None,
) -> BaseTrigger:
    """The APScheduler trigger for a schedule; exactly one of cron and interval must be given.

    An interval counts from `start_date` cut to the whole second, so interval tasks fire on whole
    seconds: readable times, and tasks due in the same second are recorded together.
    """
    zone = get_zone(timezone)
    if start_date is not None:
        start_date = start_date.replace(microsecond=0)
    if cron_expression and interval_seconds:
        raise InvalidSchedule(_("Set either a cron expression or an interval, not both."))
    if cron_expression:
        return CrontabTrigger(cron_expression, zone)
    if interval_seconds is not None:
        return IntervalTrigger(seconds=validate_interval(interval_seconds), timezone=zone, start_date=start_date)
    raise InvalidSchedule(_("A scheduled task needs a cron expression or an interval."))


def next_fire_times(
    *,
    cron_expression: str | None,
    interval_seconds: int | None,
    timezone: str,
    count: int,
    now: datetime | None = None,
) -> list[datetime]:
    """The next `count` fire times after `now`, shown in the schedule's timezone."""
    now = now or dj_timezone.now()
    trigger = build_trigger(
        cron_expression=cron_expression, interval_seconds=interval_seconds, timezone=timezone, start_date=now
    )
    times: list[datetime] = []
    previous = None
    if isinstance(trigger, IntervalTrigger):
        # A preview starts one interval from now, as a newly scheduled interval job does.
        previous = now
    while len(times) < count:
        fire = trigger.get_next_fire_time(previous, now)
        if fire is None:
            break
        times.append(fire)
        previous = fire
    zone = get_zone(timezone)
    return [fire.astimezone(zone) for fire in times]


def describe_interval(seconds: int) -> str:
    for unit_seconds, singular, plural in (
        (86400, "Every day", "Every %(n)s days"),
        (3600, "Every hour", "Every %(n)s hours"),
        (60, "Every minute", "Every %(n)s minutes"),
    ):
        if seconds % unit_seconds == 0:
            n = seconds // unit_seconds
            return ngettext(singular, plural, n) % {"n": n}
    return ngettext("Every second", "Every %(n)s seconds", seconds) % {"n": seconds}


def describe_schedule(*, cron_expression: str | None, interval_seconds: int | None) -> str:
    """A human-readable schedule in the active language ("At 18:30", "每 15 分钟")."""
    if cron_expression:
        from cron_descriptor import ExpressionDescriptor, Options

        schedule = parse_cron(cron_expression)
        options = Options()
        options.use_24hour_time_format = True
        options.locale_code = "zh_CN" if (translation.get_language() or "").startswith("zh") else "en_US"
        expression = MACROS.get(schedule.expression.lower(), schedule.expression)
        return ExpressionDescriptor(expression, options).get_description()
    if interval_seconds:
        return describe_interval(interval_seconds)
    return _("Manual: runs only on demand")
