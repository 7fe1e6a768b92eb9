"""Calendars as rules on dates: open days, the Nth or last open day of a week or month, and T+n.

Pure: no database, no clock. `CalendarDays` is a snapshot of one calendar (models.Calendar and its
days); `DayRule` is what a task asks of it (ScheduledTask.calendar_rule), and decides for a date
whether it is an occurrence day and which one comes next.

A day is open when it is listed open (an open day, or a half day that closes early), or when its
weekday is one of the calendar's open weekdays and it is not listed closed (a holiday). A listed day
always wins over the weekday rule. `known_until` is the last day the calendar's lists are complete
for (a published exchange calendar ends with what the exchange has announced): later days follow
the weekday rule alone, which the preview points out.

Weeks are ISO weeks, Monday to Sunday, as exchanges count them; months are calendar months. Days are
the task's local dates: a fire time belongs to the date it falls on in the task's timezone.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _

# ListedDay.kind
CLOSED = "closed"
OPEN = "open"
HALF_DAY = "half_day"

# DayRule.rule (ScheduledTask.CalendarRule)
OPEN_DAYS = "open_days"
NTH_OF_WEEK = "nth_of_week"
LAST_OF_WEEK = "last_of_week"
NTH_OF_MONTH = "nth_of_month"
LAST_OF_MONTH = "last_of_month"
AFTER_EVENT = "after_event"
RULES = (OPEN_DAYS, NTH_OF_WEEK, LAST_OF_WEEK, NTH_OF_MONTH, LAST_OF_MONTH, AFTER_EVENT)
WEEK_RULES = (NTH_OF_WEEK, LAST_OF_WEEK)
MONTH_RULES = (NTH_OF_MONTH, LAST_OF_MONTH)
# The n of each rule that takes one: (smallest, largest). A week has 7 days, a month at most 31; T+n
# looks at most a year of open days ahead.
N_RANGES = {
    NTH_OF_WEEK: (1, 7),
    LAST_OF_WEEK: (1, 7),
    NTH_OF_MONTH: (1, 31),
    LAST_OF_MONTH: (1, 31),
    AFTER_EVENT: (0, 366),
}
# The Gregorian calendar repeats every 400 years (146,097 days): past every listed day, a search that
# found nothing within one cycle never will (a rule no weekday pattern can meet).
_CYCLE = timedelta(days=146_097)
_DAY = timedelta(days=1)


def crontab_weekday(day: date) -> int:
    """The day's weekday numbered as crontab numbers it: 0 = Sunday, 1 = Monday ... 6 = Saturday."""
    return (day.weekday() + 1) % 7


def _weekday_name(crontab_number: int) -> str:
    return str(WEEKDAYS[(crontab_number + 6) % 7])  # Django's WEEKDAYS: 0 = Monday


def describe_weekdays(weekdays: frozenset[int]) -> str:
    """ "Monday–Friday", "Saturday, Sunday", "no weekday", in the active language, Monday first."""
    if not weekdays:
        return _("no weekday")
    order = [1, 2, 3, 4, 5, 6, 0]  # Monday first
    runs: list[list[int]] = []
    for number in order:
        if number in weekdays:
            if runs and order.index(runs[-1][-1]) == order.index(number) - 1:
                runs[-1].append(number)
            else:
                runs.append([number])
    parts = [
        _weekday_name(run[0])
        if len(run) == 1
        else _("%(first)s–%(last)s") % {"first": _weekday_name(run[0]), "last": _weekday_name(run[-1])}
        if len(run) > 2
        else ", ".join(_weekday_name(number) for number in run)
        for run in runs
    ]
    return ", ".join(parts)


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th ... in English; the translations say it their way ("第 2")."""
    if n % 100 in (11, 12, 13):
        return _("%(n)sth") % {"n": n}
    return {1: _("%(n)sst"), 2: _("%(n)snd"), 3: _("%(n)srd")}.get(n % 10, _("%(n)sth")) % {"n": n}


@dataclass(frozen=True)
class ListedDay:
    """A day a calendar lists: closed (a holiday), open, or a half day (open, closing early)."""

    kind: str
    note: str = ""
    closes_at: time | None = None

    @property
    def is_open(self) -> bool:
        return self.kind != CLOSED


@dataclass(frozen=True, eq=False)
class CalendarDays:
    """One calendar's days: open weekdays (crontab numbers, 0 = Sunday) and the listed exceptions."""

    name: str
    weekdays: frozenset[int]
    listed: Mapping[date, ListedDay] = field(default_factory=dict)
    known_until: date | None = None
    revision: int = 0
    _open_listed: tuple[date, ...] = field(init=False, repr=False)
    _last_listed: date | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_open_listed", tuple(sorted(day for day, row in self.listed.items() if row.is_open)))
        object.__setattr__(self, "_last_listed", max(self.listed) if self.listed else None)

    # ------------------------------------------------------------------ single days

    def is_open(self, day: date) -> bool:
        listed = self.listed.get(day)
        if listed is not None:
            return listed.is_open
        return crontab_weekday(day) in self.weekdays

    def half_day(self, day: date) -> ListedDay | None:
        listed = self.listed.get(day)
        return listed if listed is not None and listed.kind == HALF_DAY else None

    def beyond_known(self, day: date) -> bool:
        """After the last day the calendar's lists are known for: only the weekday rule says anything."""
        return self.known_until is not None and day > self.known_until

    def closed_reason(self, day: date) -> str:
        """Why a day is not open: a listed holiday (with its note) or a weekday that is not open."""
        listed = self.listed.get(day)
        if listed is not None and not listed.is_open:
            if listed.note:
                return _("%(calendar)s is closed: %(note)s") % {"calendar": self.name, "note": listed.note}
            return _("%(calendar)s is closed (a holiday)") % {"calendar": self.name}
        return _("%(calendar)s is not open on %(weekday)s") % {
            "calendar": self.name,
            "weekday": _weekday_name(crontab_weekday(day)),
        }

    # ------------------------------------------------------------------ searches

    def _never_open_from(self, day: date) -> bool:
        """No open day on or after `day`: no open weekday, and no listed open day from then on."""
        return not self.weekdays and bisect_left(self._open_listed, day) == len(self._open_listed)

    def next_open(self, after: date, n: int = 1) -> date | None:
        """The n-th open day strictly after `after` (n >= 1); None when there are not that many."""
        if not self.weekdays:
            index = bisect_right(self._open_listed, after) + n - 1
            return self._open_listed[index] if index < len(self._open_listed) else None
        day, found = after, 0
        try:
            while found < n:
                day += _DAY
                if self.is_open(day):
                    found += 1
        except OverflowError:
            return None
        return day

    def previous_open(self, before: date, n: int = 1) -> date | None:
        """The n-th open day strictly before `before` (n >= 1); None when there are not that many."""
        if not self.weekdays:
            index = bisect_left(self._open_listed, before) - n
            return self._open_listed[index] if index >= 0 else None
        day, found = before, 0
        try:
            while found < n:
                day -= _DAY
                if self.is_open(day):
                    found += 1
        except OverflowError:
            return None
        return day

    def open_on_or_after(self, day: date) -> date | None:
        return day if self.is_open(day) else self.next_open(day)

    def search_horizon(self, after: date) -> date:
        """How far a search for a rule's next day looks before it gives up (see _CYCLE)."""
        base = max(after, self._last_listed or after)
        try:
            return base + _CYCLE
        except OverflowError:
            return date.max

    def open_days_in(self, first: date, last: date) -> list[date]:
        """The open days from `first` to `last`, both included."""
        days, day = [], first
        while day <= last:
            if self.is_open(day):
                days.append(day)
            day += _DAY
        return days


def _week_of(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def _month_of(day: date) -> tuple[date, date]:
    return day.replace(day=1), day.replace(day=monthrange(day.year, day.month)[1])


@dataclass(frozen=True, eq=False)
class DayRule:
    """Which open days of `calendar` are occurrence days: every one, the n-th (or n-th to last) of each
    week or month, or T+n after each open day of `events` (T+n = the n-th open day after it; T+0 =
    the event day itself, when it is open)."""

    rule: str
    calendar: CalendarDays
    n: int | None = None
    events: CalendarDays | None = None

    # ------------------------------------------------------------------ deciding one day

    def _target_in(self, first: date, last: date) -> date | None:
        """The day the week or month rule picks in the period [first, last]."""
        days = self.calendar.open_days_in(first, last)
        n = self.n or 1
        if len(days) < n:
            return None
        return days[n - 1] if self.rule in (NTH_OF_WEEK, NTH_OF_MONTH) else days[-n]

    def _period(self, day: date) -> tuple[date, date]:
        return _week_of(day) if self.rule in WEEK_RULES else _month_of(day)

    def allows(self, day: date) -> bool:
        """Is `day` an occurrence day?"""
        calendar = self.calendar
        if not calendar.is_open(day):
            return False
        if self.rule == OPEN_DAYS:
            return True
        if self.rule in WEEK_RULES or self.rule in MONTH_RULES:
            return self._target_in(*self._period(day)) == day
        return self._after_event_allows(day)

    def _after_event_allows(self, day: date) -> bool:
        events, n = self.events, self.n or 0
        if events is None:
            return False
        if n == 0:
            return events.is_open(day)
        # day = T+n(E) exactly when E lies in [D_n, D_{n-1}), D_k being the k-th open day before day.
        lowest = self.calendar.previous_open(day, n)
        if lowest is None:
            return False
        upper = self.calendar.previous_open(day, n - 1) if n > 1 else day
        first_event = events.open_on_or_after(lowest)
        return first_event is not None and first_event < upper

    # ------------------------------------------------------------------ the next day

    def next_allowed(self, after: date) -> date | None:
        """The first occurrence day strictly after `after`; None when there is none any more."""
        try:
            if self.rule == OPEN_DAYS:
                return self.calendar.next_open(after)
            if self.rule in WEEK_RULES or self.rule in MONTH_RULES:
                return self._next_in_periods(after)
            return self._next_after_event(after)
        except OverflowError:
            return None

    def _next_in_periods(self, after: date) -> date | None:
        calendar = self.calendar
        first, last = self._period(after + _DAY)
        horizon = calendar.search_horizon(after)
        if self.rule in WEEK_RULES:
            # Past the listed days every week looks the same: two of them tell.
            horizon = min(horizon, max(after, calendar._last_listed or after) + timedelta(days=14))
        while first <= horizon:
            if calendar._never_open_from(first):
                return None
            target = self._target_in(first, last)
            if target is not None and target > after:
                return target
            first, last = self._period(last + _DAY)
        return None

    def _next_after_event(self, after: date) -> date | None:
        calendar, events, n = self.calendar, self.events, self.n or 0
        if events is None:
            return None
        if n == 0:
            horizon = max(calendar.search_horizon(after), events.search_horizon(after))
            day = events.next_open(after)
            while day is not None and day <= horizon:
                if calendar.is_open(day):
                    return day
                if calendar._never_open_from(day):
                    return None
                day = events.next_open(day)
            return None
        # T+n is monotonic in the event day: the answer is T+n of the first event day whose T+n comes
        # after `after`, i.e. the first event on or after the n-th open day before the next open day.
        first_open = calendar.next_open(after)
        if first_open is None:
            return None
        lowest = calendar.previous_open(first_open, n)
        if lowest is None:
            # Fewer than n open days before it: every earlier event day leads to a day at or after it,
            # the latest such event day to the earliest one.
            earlier = events.previous_open(first_open)
            if earlier is not None:
                return calendar.next_open(earlier, n)
            lowest = first_open
        event = events.open_on_or_after(lowest)
        return None if event is None else calendar.next_open(event, n)

    # ------------------------------------------------------------------ what holidays did

    def holiday_removed(self, day: date) -> bool:
        """A listed closed day on an open weekday: a holiday took away a day the weekdays would give."""
        listed = self.calendar.listed.get(day)
        return listed is not None and not listed.is_open and crontab_weekday(day) in self.calendar.weekdays

    def holidays_passed(self, day: date) -> list[tuple[date, str]]:
        """The holidays (closed days on open weekdays) that moved the occurrence day `day` where it is:
        before it in its period for the n-th open day, after it for the n-th to last, between the
        event day and it for T+n. Empty for every open day, or when no holiday moved it."""
        if self.rule in (NTH_OF_WEEK, NTH_OF_MONTH):
            first, _last = self._period(day)
            span = (first, day - _DAY)
        elif self.rule in (LAST_OF_WEEK, LAST_OF_MONTH):
            _first, last = self._period(day)
            span = (day + _DAY, last)
        elif self.rule == AFTER_EVENT and self.events is not None and self.n:
            lowest = self.calendar.previous_open(day, self.n)
            event = self.events.open_on_or_after(lowest) if lowest is not None else None
            if event is None:
                return []
            span = (event + _DAY, day - _DAY)
        else:
            return []
        return [
            (holiday, self.calendar.listed[holiday].note)
            for holiday in sorted(self.calendar.listed)
            if span[0] <= holiday <= span[1] and self.holiday_removed(holiday)
        ]

    # ------------------------------------------------------------------ words

    def removal_reason(self, day: date) -> str:
        """Why `day`, a day the cron expression (or interval) fires on, is not an occurrence day."""
        calendar = self.calendar
        if not calendar.is_open(day):
            return calendar.closed_reason(day)
        if self.rule in WEEK_RULES or self.rule in MONTH_RULES:
            target = self._target_in(*self._period(day))
            what = self.describe()
            if target is None:
                return _("not %(rule)s: that period has too few open days") % {"rule": what}
            return _("not %(rule)s (that is %(day)s)") % {"rule": what, "day": target.isoformat()}
        if self.rule == AFTER_EVENT:
            return _("not %(rule)s") % {"rule": self.describe()}
        return ""

    def describe(self) -> str:
        """The rule in words, in the active language: "only on open days of SSE"."""
        events = self.events.name if self.events is not None else None
        return describe_day_rule(rule=self.rule, n=self.n, calendar=self.calendar.name, events=events)


def describe_day_rule(*, rule: str, n: int | None, calendar: str, events: str | None = None) -> str:
    """A calendar rule in words, from the calendars' names alone (no days needed)."""
    count = n or 1
    if rule == OPEN_DAYS:
        return _("only on open days of %(calendar)s") % {"calendar": calendar}
    if rule == NTH_OF_WEEK:
        return _("on the %(nth)s open day of each week of %(calendar)s") % {"nth": ordinal(count), "calendar": calendar}
    if rule == NTH_OF_MONTH:
        return _("on the %(nth)s open day of each month of %(calendar)s") % {
            "nth": ordinal(count),
            "calendar": calendar,
        }
    if rule == LAST_OF_WEEK:
        if count == 1:
            return _("on the last open day of each week of %(calendar)s") % {"calendar": calendar}
        return _("on the %(nth)s-to-last open day of each week of %(calendar)s") % {
            "nth": ordinal(count),
            "calendar": calendar,
        }
    if rule == LAST_OF_MONTH:
        if count == 1:
            return _("on the last open day of each month of %(calendar)s") % {"calendar": calendar}
        return _("on the %(nth)s-to-last open day of each month of %(calendar)s") % {
            "nth": ordinal(count),
            "calendar": calendar,
        }
    if not n:
        return _("on each day of %(events)s that %(calendar)s is open (T+0)") % {
            "events": events or "?",
            "calendar": calendar,
        }
    return _("on the %(nth)s open day of %(calendar)s after each day of %(events)s (T+%(n)s)") % {
        "nth": ordinal(n),
        "calendar": calendar,
        "events": events or "?",
        "n": n,
    }


def day_rule_errors(
    *, rule: str, n: int | None, has_calendar: bool, has_event_calendar: bool, has_days: bool
) -> dict[str, list[str]]:
    """Problems of a task's calendar fields, by field name; empty when they can run.

    `has_days`: the task has a cron expression or an interval to pick days from (a one-shot task
    has one instant, not days to filter).
    """
    errors: dict[str, list[str]] = {}
    if rule not in RULES:
        errors["calendar_rule"] = [_("Unknown calendar rule %(rule)r.") % {"rule": rule}]
        return errors
    if not has_calendar:
        if rule != OPEN_DAYS:
            errors["calendar"] = [_("This calendar rule needs a calendar.")]
        if n is not None:
            errors["calendar_n"] = [_("Without a calendar there is no n; leave it empty.")]
        if has_event_calendar:
            errors["event_calendar"] = [_("An event calendar needs a calendar and the rule T+n.")]
        return errors
    if not has_days:
        errors["calendar"] = [_("Only a cron expression or an interval can be limited to the days of a calendar.")]
    if rule in N_RANGES:
        low, high = N_RANGES[rule]
        if n is None:
            errors["calendar_n"] = [
                _("This calendar rule needs n (from %(low)s to %(high)s).") % {"low": low, "high": high}
            ]
        elif not low <= n <= high:
            errors["calendar_n"] = [_("n goes from %(low)s to %(high)s for this rule.") % {"low": low, "high": high}]
    elif n is not None:
        errors["calendar_n"] = [_("Every open day has no n; leave it empty.")]
    if rule == AFTER_EVENT and not has_event_calendar:
        errors["event_calendar"] = [_("T+n counts from the days of an event calendar: choose one.")]
    elif rule != AFTER_EVENT and has_event_calendar:
        errors["event_calendar"] = [_("Only the rule T+n uses an event calendar; leave it empty.")]
    return errors
