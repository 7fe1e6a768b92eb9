"""Schedules: 5-field cron with Debian cron's semantics, intervals, timezones, DST-safe fire times.

Why not APScheduler's CronTrigger: it numbers Monday as 0, ANDs a restricted day-of-month with a
restricted day-of-week, and has none of cron's daylight-saving rules. `CrontabTrigger` replaces it
and is still an APScheduler trigger returning UTC instants, so the scheduler and the job store use
it unchanged.

Fields (`minute hour day-of-month month day-of-week`) are read on the wall clock of the task's zone,
with ASCII digits only. If either day field starts with `*` (including `*/n`) a day matches when both
fields match; if both are restricted, when either does. 0 and 7 are Sunday.

Daylight saving, as Debian's cron(8) handles it. A job is a *wildcard job* when its minute or hour
field starts with `*` (and `@hourly`), otherwise a *fixed-time job* (lists and ranges, even `0-23`,
are fixed). A wildcard job follows the wall clock: it runs at every matching wall time that exists,
never at one that does not, and in both passes of a repeated hour. A fixed-time job:
- spring gap (the clock jumps forward by less than 3 hours): each matching wall time inside the
  skipped interval is owed one run, right after the jump;
- autumn overlap (the clock goes back by less than 3 hours): a wall time in the repeated interval
  runs once, in the first pass.
A change of 3 hours or more is a correction: every job then follows the new wall clock at once
(nothing owed, both passes run), as Debian does.

Owed runs: Debian starts one run per skipped time at the jump, plus the job's own run if it is due
at the jump minute (`0 1-3 * * *` starts twice at 03:00 in New York). Here every run is an instant
of its own, so that none is merged away by the (task, scheduled_for) key and the trigger's fire
times stay strictly increasing: the runs due at a jump fire at the jump instant plus 0, 1, 2, ...
microseconds, in planned order (the owed runs first, the job's own run at the jump minute last).
Each is thus its own occurrence for the scheduler to record; `dst_owed_run()` tells, for a fire
instant, which skipped wall time it was owed for.

Search: field by field on the wall clock (month, then the matching days of the month by calendar
arithmetic, then hour, then minute), then mapped to an instant. The Gregorian calendar repeats
every 400 years (146,097 days, a whole number of weeks), so an expression that matches no minute in
400 years never fires: `parse_cron` refuses it, and no search needs to look further than that.
"""

from __future__ import annotations

import calendar
import functools
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import MAXYEAR, UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from django.utils import timezone as dj_timezone
from django.utils import translation
from django.utils.dates import MONTHS, WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# The Gregorian calendar's cycle: weekdays and leap years repeat exactly after it.
CYCLE_YEARS = 400
# A clock change of this size or more is a correction, not daylight saving: no owed runs, no skipped pass.
DST_CORRECTION = timedelta(hours=3)
# Runs due at one spring jump are spaced by this much, in planned order, so each is its own instant.
OWED_RUN_SPACING = timedelta(microseconds=1)
# A gap shorter than DST_CORRECTION holds at most 180 whole minutes, plus the job's own run at the jump.
_MAX_JUMP_SLOTS = 181
_MINUTE = timedelta(minutes=1)
# `\d` and int() accept any Unicode digit ("٣٠", "０"); cron fields take ASCII digits only.
_NUMBER = re.compile(r"[0-9]+")
# crontab(5) separates fields with blanks (spaces and tabs), not with any Unicode space.
_BLANKS = re.compile(r"[ \t]+")

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Debian marks @hourly as a wildcard job (its hour is "*"); the other macros are fixed-time jobs.
_WILDCARD_MACROS = {"@hourly"}
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
    if not _NUMBER.fullmatch(token):
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
            if not _NUMBER.fullmatch(step_text) or int(step_text) < 1:
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
            # "5/15" means "from 5 to the end, every 15", as in cronie and Vixie cron 4.
            high = spec.high if _slash else low
        if step > spec.high - spec.low + 1:
            raise _field_error(spec, _("step %(step)s is larger than the field's range") % {"step": step})
        values.update(range(low, high + 1, step))
    if spec.label == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


# A wall-clock minute as (year, month, day, hour, minute): the hot path avoids datetime arithmetic.
_Wall = tuple[int, int, int, int, int]


def _next_table(values: frozenset[int], size: int) -> tuple[int, ...]:
    """table[i] = the smallest value >= i, or -1; one entry past the end so table[size] is -1."""
    table, following = [-1] * (size + 1), -1
    for i in range(size - 1, -1, -1):
        if i in values:
            following = i
        table[i] = following
    return tuple(table)


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
    # The minute or the hour field starts with "*": the job follows the wall clock through DST changes.
    wildcard: bool
    _next_minute: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _next_hour: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _next_month: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # (year * 12 + month) -> the matching days of that month; bounded, see _days_of.
    _month_days: dict[int, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_next_minute", _next_table(frozenset(self.minutes), 60))
        object.__setattr__(self, "_next_hour", _next_table(frozenset(self.hours), 24))
        object.__setattr__(self, "_next_month", _next_table(self.months, 13))
        object.__setattr__(self, "_month_days", {})

    def _days_of(self, year: int, month: int) -> tuple[int, ...]:
        """The days of a month that match both day fields (OR or AND, as crontab(5) says)."""
        key = year * 12 + month
        days = self._month_days.get(key)
        if days is None:
            first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
            first = (first_weekday + 1) % 7  # the 1st's weekday, Sunday = 0
            either = self.days_restricted and self.weekdays_restricted
            days = tuple(
                day
                for day in range(1, length + 1)
                if (
                    (day in self.days or (first + day - 1) % 7 in self.weekdays)
                    if either
                    else (day in self.days and (first + day - 1) % 7 in self.weekdays)
                )
            )
            if len(self._month_days) >= 4096:  # a few centuries of months; searches move forward
                self._month_days.clear()
            self._month_days[key] = days
        return days

    def next_match(self, start: datetime) -> datetime | None:
        """The first matching wall-clock minute at or after `start` (naive, whole minute).

        None when there is none within CYCLE_YEARS (the expression never fires) or before year 10000.
        """
        found = self._next_match(start.year, start.month, start.day, start.hour, start.minute)
        return None if found is None else _wall(*found)

    def _next_match(self, year: int, month: int, day: int, hour: int, minute: int) -> _Wall | None:
        """next_match on fields; `minute` may be 60 (the next hour), so callers need no arithmetic."""
        last_year = min(year + CYCLE_YEARS, MAXYEAR)
        next_month, next_hour, next_minute = self._next_month, self._next_hour, self._next_minute
        first_minute = self.minutes[0]
        while year <= last_year:
            wanted = next_month[month]
            if wanted < 0:
                year, month, day, hour, minute = year + 1, next_month[1], 1, 0, 0
                continue
            if wanted != month:
                month, day, hour, minute = wanted, 1, 0, 0
            days = self._days_of(year, month)
            for index in range(bisect_left(days, day), len(days)):
                if days[index] != day:
                    day, hour, minute = days[index], 0, 0
                found_hour = next_hour[hour]
                if found_hour == hour:
                    found_minute = next_minute[minute]
                    if found_minute >= 0:
                        return year, month, day, hour, found_minute
                    found_hour = next_hour[hour + 1]
                if found_hour >= 0:
                    return year, month, day, found_hour, first_minute
                day, hour, minute = day + 1, 0, 0
            month, day, hour, minute = month + 1, 1, 0, 0
            if month > 12:
                year, month = year + 1, 1
        return None


@lru_cache(maxsize=1024)
def parse_cron(expression: str) -> CronSchedule:
    """Parse and validate a cron expression; raises InvalidSchedule naming the faulty field."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidSchedule(_("The cron expression is empty."))
    written = _BLANKS.split(expression.strip(" \t\r\n"))
    normalized = " ".join(written)
    macro = normalized.lower()
    parts = MACROS[macro].split(" ") if macro in MACROS else written
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
        expression=normalized,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=days,
        months=months,
        weekdays=weekdays,
        days_restricted=not parts[2].startswith(("*", "?")),
        weekdays_restricted=not parts[4].startswith(("*", "?")),
        wildcard=macro in _WILDCARD_MACROS or parts[0].startswith("*") or parts[1].startswith("*"),
    )
    # One whole calendar cycle from any start holds every day the expression can ever match.
    if schedule.next_match(_wall(2000, 1, 1)) is None:
        raise InvalidSchedule(
            _("The cron expression '%(expression)s' never fires (no such date).") % {"expression": schedule.expression}
        )
    return schedule


def parse_weekdays(text: str) -> frozenset[int]:
    """The weekdays of a crontab day-of-week field ("1-5", "sat,sun", "*"); empty text is no weekday.

    Numbered as crontab numbers them, 0 = Sunday (7 is Sunday too); raises InvalidSchedule."""
    text = (text or "").strip()
    if not text:
        return frozenset()
    if _BLANKS.search(text):
        raise _field_error(_FIELDS[4], _("one field, without blanks: '%(text)s'") % {"text": text})
    return _parse_field(text, _FIELDS[4])


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


# ---------------------------------------------------------------------------- wall clock -> instants
#
# Naive datetimes below are wall-clock times in the schedule's zone; aware ones are UTC instants.
# Python compares and subtracts two datetimes that share a tzinfo by their wall clocks, which is
# wrong inside a DST overlap, so instants are always kept in UTC.


def _wall(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    """A wall-clock time in the schedule's zone: naive on purpose, the zone is applied by the caller."""
    return datetime(year, month, day, hour, minute, fold=fold)  # noqa: DTZ001


def _minute_after(wall: datetime) -> datetime:
    """The first whole minute strictly after `wall`."""
    return wall.replace(second=0, microsecond=0) + _MINUTE


def _minute_from(wall: datetime) -> datetime:
    """The first whole minute at or after `wall`."""
    floor = wall.replace(second=0, microsecond=0)
    return floor if floor == wall else floor + _MINUTE


def _instant(wall: datetime, offset: timedelta) -> datetime:
    return (wall - offset).replace(tzinfo=UTC)


# A fire time as (UTC instant, the same instant in the schedule's zone).
_Fire = tuple[datetime, datetime]


def _fire(instant: datetime, zone: tzinfo) -> _Fire:
    return instant, instant.astimezone(zone)


def _offset_at(zone: tzinfo, seconds: int) -> timedelta:
    return datetime.fromtimestamp(seconds, zone).utcoffset()


def _transition(zone: tzinfo, low: datetime, high: datetime) -> datetime:
    """The instant in (low, high] at which the zone's offset changes (low's offset differs from high's).

    The tz database changes offsets on whole seconds, so a bisection over seconds finds it exactly.
    """
    low_s, high_s = int(low.timestamp() // 1), -int(-high.timestamp() // 1)
    before = _offset_at(zone, low_s)
    while high_s - low_s > 1:
        middle = (low_s + high_s) // 2
        if _offset_at(zone, middle) == before:
            low_s = middle
        else:
            high_s = middle
    return datetime.fromtimestamp(high_s, UTC)


@dataclass(frozen=True)
class _SpringJump:
    """A clock change forward by less than DST_CORRECTION: [wall_before, wall_after) does not exist."""

    instant: datetime
    wall_before: datetime
    wall_after: datetime


def _spring_jump_at(zone: tzinfo, instant: datetime, offset: timedelta) -> _SpringJump | None:
    """The spring jump happening exactly at `instant` (whose offset is `offset`), if there is one."""
    before = (instant - OWED_RUN_SPACING).astimezone(zone).utcoffset()
    if not timedelta(0) < offset - before < DST_CORRECTION:
        return None
    naive = instant.replace(tzinfo=None)
    return _SpringJump(instant=instant, wall_before=naive + before, wall_after=naive + offset)


def _jump_slots(schedule: CronSchedule, jump: _SpringJump) -> list[datetime]:
    """The planned wall times a fixed-time job runs at a spring jump, in the order they fire: every
    matching time in the skipped interval (owed), then the job's own run at the jump minute."""
    slots = []
    planned = schedule.next_match(_minute_from(jump.wall_before))
    while planned is not None and planned < jump.wall_after:
        slots.append(planned)
        planned = schedule.next_match(planned + _MINUTE)
    if planned == jump.wall_after:
        slots.append(planned)
    return slots


def _next_from(schedule: CronSchedule, zone: tzinfo, wall: _Wall | None, guess: timedelta) -> _Fire | None:
    """The fire time of the matching wall time `wall` (or of the first one after it that can fire),
    which the caller knows to be outside any repeated interval it is in (so a matching time in an
    overlap is due in its first pass). `guess` is the offset most likely in force there."""
    while wall is not None:
        candidate = datetime(*wall, tzinfo=UTC) - guess
        seen = candidate.astimezone(zone)
        if seen.fold == 0 and seen.utcoffset() == guess:  # the usual case: no change in between
            return candidate, seen
        first = zone.utcoffset(_wall(*wall))
        second = zone.utcoffset(_wall(*wall, fold=1))
        if first >= second:  # exists (once, or twice in an autumn overlap: the first pass)
            return _fire(datetime(*wall, tzinfo=UTC) - first, zone)
        # A spring gap: zoneinfo reads a missing wall time with the offset before the jump (fold=0)
        # or after it (fold=1).
        jump = _transition(zone, datetime(*wall, tzinfo=UTC) - second, datetime(*wall, tzinfo=UTC) - first)
        if not schedule.wildcard and second - first < DST_CORRECTION:
            return _fire(jump, zone)  # the first owed run (the first matching time in the gap)
        guess = second
        wall = _fields_from(schedule, jump.replace(tzinfo=None) + second)
    return None


def _fields_from(schedule: CronSchedule, wall: datetime) -> _Wall | None:
    """The first matching wall minute at or after `wall`, as fields."""
    start = _minute_from(wall)
    return schedule._next_match(start.year, start.month, start.day, start.hour, start.minute)


def _next_in_overlap(
    schedule: CronSchedule, zone: tzinfo, after: datetime, local: datetime, other: timedelta
) -> _Fire | None:
    """The first fire time after `after`, an instant inside a repeated (autumn) interval."""
    offset = local.utcoffset()
    first_pass = local.fold == 0
    before, later = (offset, other) if first_pass else (other, offset)
    back = before - later
    jump = _transition(zone, after, after + back) if first_pass else _transition(zone, after - back, after)
    repeated_from = jump.replace(tzinfo=None) + later
    repeated_until = jump.replace(tzinfo=None) + before
    both_passes = schedule.wildcard or back >= DST_CORRECTION
    following = schedule.next_match(_minute_after(local.replace(tzinfo=None)))
    if first_pass:
        if following is not None and following < repeated_until:
            return _fire(_instant(following, before), zone)
        if both_passes:
            again = schedule.next_match(_minute_from(repeated_from))
            if again is not None and again < repeated_until:
                return _fire(_instant(again, later), zone)
    elif both_passes:
        if following is not None and following < repeated_until:
            return _fire(_instant(following, later), zone)
    else:
        following = schedule.next_match(_minute_from(repeated_until))
    return _next_from(schedule, zone, None if following is None else _fields(following), later)


def _fields(wall: datetime) -> _Wall:
    return wall.year, wall.month, wall.day, wall.hour, wall.minute


def next_cron_time(schedule: CronSchedule, after: datetime, zone: tzinfo) -> datetime | None:
    """The first fire time strictly after `after` (aware), as a UTC instant; None if there is none
    before year 10000."""
    if after.tzinfo is not UTC:
        after = after.astimezone(UTC)
    try:
        fire = _next_fire(schedule, zone, after, after.astimezone(zone))
    except OverflowError:  # the end of datetime's range
        return None
    return None if fire is None else fire[0]


def _cron_fire_times(schedule: CronSchedule, zone: tzinfo, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after`, in the zone; each search starts from the previous
    fire's local time, so a preview converts every instant once."""
    after = after.astimezone(UTC)
    fire: _Fire | None = (after, after.astimezone(zone))
    times = []
    try:
        while len(times) < count:
            fire = _next_fire(schedule, zone, *fire)
            if fire is None:
                break
            times.append(fire[1])
    except OverflowError:  # the end of datetime's range
        pass
    return times


def _next_fire(schedule: CronSchedule, zone: tzinfo, after: datetime, local: datetime) -> _Fire | None:
    """next_cron_time for a UTC instant `after` whose local time is `local`."""
    offset = local.utcoffset()
    if not schedule.wildcard and local.microsecond < _MAX_JUMP_SLOTS:
        # Maybe among the runs due at a spring jump (jump + 0, 1, 2... microseconds).
        index = local.microsecond
        jump = _spring_jump_at(zone, after - index * OWED_RUN_SPACING, offset)
        if jump is not None:
            slots = _jump_slots(schedule, jump)
            if index + 1 < len(slots):
                return _fire(jump.instant + (index + 1) * OWED_RUN_SPACING, zone)
    year, month, day, hour, minute = local.year, local.month, local.day, local.hour, local.minute
    # The offset of the same wall time read the other way (fold): different only in an overlap.
    other = zone.utcoffset(
        datetime(year, month, day, hour, minute, local.second, local.microsecond, fold=1 - local.fold)  # noqa: DTZ001
    )
    if other != offset:  # the wall time happens twice: inside an autumn overlap
        return _next_in_overlap(schedule, zone, after, local, other)
    return _next_from(schedule, zone, schedule._next_match(year, month, day, hour, minute + 1), offset)


@dataclass(frozen=True)
class OwedRun:
    """A fixed-time job's run owed for a wall time that a spring DST jump skipped."""

    planned: datetime  # the skipped wall-clock time (naive: it never existed in the zone)
    fire_time: datetime  # when it runs: right after the jump (UTC)

    def describe(self) -> str:
        return _("owed for %(time)s, skipped by the daylight-saving jump") % {"time": self.planned.strftime("%H:%M")}


def dst_owed_run(*, cron_expression: str, timezone: str, fire_time: datetime) -> OwedRun | None:
    """For a fire time of this schedule: the skipped wall time it is owed for, or None for a run at
    its own wall time (including the job's own run at the jump minute, which follows the owed ones)."""
    schedule = parse_cron(cron_expression)
    zone = get_zone(timezone)
    if schedule.wildcard:
        return None
    instant = fire_time.astimezone(UTC)
    local = instant.astimezone(zone)
    index = local.microsecond
    if index >= _MAX_JUMP_SLOTS:
        return None
    jump = _spring_jump_at(zone, instant - timedelta(microseconds=index), local.utcoffset())
    if jump is None:
        return None
    slots = _jump_slots(schedule, jump)
    if index < len(slots) and slots[index] < jump.wall_after:
        return OwedRun(planned=slots[index], fire_time=instant)
    return None


def dst_gap_skips(*, cron_expression: str, timezone: str, after: datetime, until: datetime) -> list[datetime]:
    """The matching wall times a wildcard job does not run at because a spring jump in (after, until]
    skipped them (naive wall times: they never existed). A fixed-time job owes those runs instead
    (dst_owed_run), so it has none here."""
    schedule = parse_cron(cron_expression)
    zone = get_zone(timezone)
    if not schedule.wildcard:
        return []
    low, high = after.astimezone(UTC), until.astimezone(UTC)
    skipped: list[datetime] = []
    while low < high:
        before, later = low.astimezone(zone).utcoffset(), high.astimezone(zone).utcoffset()
        if before == later:
            # No change of offset between them, or one that was undone (rare); look at days one by one.
            following = min(low + timedelta(days=1), high)
            if following.astimezone(zone).utcoffset() == before:
                low = following
                continue
            high_part = following
        else:
            high_part = high
        jump = _transition(zone, low, high_part)
        offset_after = jump.astimezone(zone).utcoffset()
        offset_before = (jump - OWED_RUN_SPACING).astimezone(zone).utcoffset()
        if timedelta(0) < offset_after - offset_before:
            naive = jump.replace(tzinfo=None)
            wall_before, wall_after = naive + offset_before, naive + offset_after
            planned = schedule.next_match(_minute_from(wall_before))
            while planned is not None and planned < wall_after:
                skipped.append(planned)
                planned = schedule.next_match(planned + _MINUTE)
        low = jump
    return skipped


class CrontabTrigger(BaseTrigger):
    """APScheduler trigger for a 5-field cron expression with Debian cron's semantics (UTC instants)."""

    def __init__(self, expression: str, timezone: str | tzinfo) -> None:
        self.timezone = get_zone(timezone) if isinstance(timezone, str) else timezone
        self.schedule = parse_cron(expression)
        self.expression = self.schedule.expression

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # APScheduler asks for the first fire time >= now, or the first one after the previous fire.
        after = previous_fire_time if previous_fire_time is not None else now - timedelta(microseconds=1)
        return next_cron_time(self.schedule, after, self.timezone)

    def __getstate__(self) -> dict:
        # Only the text: the parsed schedule (and its caches) is rebuilt on load.
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
    zone = get_zone(timezone)
    if cron_expression and not interval_seconds:
        return _cron_fire_times(parse_cron(cron_expression), zone, now - timedelta(microseconds=1), count)
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


@lru_cache(maxsize=4)
def _calendar_names(day_names: tuple[str, ...], month_names: tuple[str, ...]) -> tuple[re.Pattern, dict[str, object]]:
    translations: dict[str, object] = {name: WEEKDAYS[i] for i, name in enumerate(day_names)}
    translations.update({name: MONTHS[i] for i, name in enumerate(month_names, 1)})
    # Not \b: in Chinese text a name follows a CJK character directly ("或Monday"), and \b sees
    # both as word characters.
    words = "|".join(re.escape(name) for name in sorted(translations, key=len, reverse=True))
    return re.compile(rf"(?<![^\W\d_])(?:{words})(?![^\W\d_])", re.ASCII), translations


def _localize_calendar_names(text: str) -> str:
    """cron-descriptor translates its phrases but takes weekday and month names from the process's C
    locale (calendar.day_name, strftime("%B")), so they stay English in any language; swap them for
    Django's names in the active language (changing the process locale is global, not per request)."""
    pattern, translations = _calendar_names(tuple(calendar.day_name), tuple(calendar.month_name)[1:])
    return pattern.sub(lambda match: str(translations[match.group(0)]), text)


def describe_schedule(*, cron_expression: str | None, interval_seconds: int | None) -> str:
    """A human-readable schedule in the active language ("At 18:30", "每 15 分钟")."""
    if cron_expression:
        return _describe_cron(cron_expression, translation.get_language() or "")
    if interval_seconds:
        return describe_interval(interval_seconds)
    return _("Manual: runs only on demand")


@functools.lru_cache(maxsize=2048)
def _describe_cron(cron_expression: str, language: str) -> str:
    """The words of one expression in one language, worked out once per process: cron-descriptor reads
    its translation catalogue again for every description, which made schedule text the largest part
    of rendering a page of tasks. `language` is the active one (the cache key; the words follow it)."""
    from cron_descriptor import ExpressionDescriptor, Options

    schedule = parse_cron(cron_expression)
    options = Options()
    options.use_24hour_time_format = True
    options.locale_code = "zh_CN" if language.startswith("zh") else "en_US"
    expression = MACROS.get(schedule.expression.lower(), schedule.expression)
    return _localize_calendar_names(ExpressionDescriptor(expression, options).get_description())
