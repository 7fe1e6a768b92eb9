"""Calendar rules on dates (scheduler_app/calendar_rules.py): open days, Nth / last open day of a week
or month, T+n, and their searches, checked day by day against the rule's own definition."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import translation

from scheduler_app.calendar_rules import (
    CLOSED,
    HALF_DAY,
    OPEN,
    CalendarDays,
    DayRule,
    ListedDay,
    day_rule_errors,
    describe_day_rule,
    describe_weekdays,
    ordinal,
)
from scheduler_app.schedules import parse_weekdays

# The 2024 SSE holidays of the first half year (as in marketdata/data/trade_cal.csv).
HOLIDAYS = [date(2024, 1, 1), date(2024, 2, 9), *(date(2024, 2, day) for day in range(12, 17))]
HOLIDAYS += [date(2024, 4, 4), date(2024, 4, 5), date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)]
HOLIDAYS += [date(2024, 6, 10)]


def sse(**extra) -> CalendarDays:
    listed = {day: ListedDay(CLOSED, "Spring Festival" if day.month == 2 else "") for day in HOLIDAYS}
    listed.update(extra.pop("listed", {}))
    return CalendarDays(name="SSE", weekdays=parse_weekdays("1-5"), listed=listed, known_until=date(2024, 6, 30))


def reports() -> CalendarDays:
    """An event calendar as a plain list: no open weekday, four report days (one on a Saturday)."""
    days = [date(2024, 1, 26), date(2024, 2, 8), date(2024, 3, 16), date(2024, 4, 30)]
    return CalendarDays(name="Reports", weekdays=frozenset(), listed={day: ListedDay(OPEN) for day in days})


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


class TestOpenDays:
    def test_weekdays_and_listed_days(self):
        calendar = sse(listed={date(2024, 2, 4): ListedDay(OPEN), date(2024, 2, 8): ListedDay(HALF_DAY)})
        assert calendar.is_open(date(2024, 2, 7))  # a Wednesday
        assert not calendar.is_open(date(2024, 2, 10))  # a Saturday
        assert not calendar.is_open(date(2024, 2, 12))  # a Monday, but the Spring Festival
        assert calendar.is_open(date(2024, 2, 4))  # a Sunday listed open (a make-up day)
        assert calendar.is_open(date(2024, 2, 8))  # a half day is open
        assert calendar.half_day(date(2024, 2, 8)).kind == HALF_DAY

    def test_reasons(self):
        calendar = sse()
        assert calendar.closed_reason(date(2024, 2, 12)) == "SSE is closed: Spring Festival"
        assert calendar.closed_reason(date(2024, 1, 1)) == "SSE is closed (a holiday)"
        assert calendar.closed_reason(date(2024, 2, 10)) == "SSE is not open on Saturday"

    def test_next_and_previous_open_day(self):
        calendar = sse()
        assert calendar.next_open(date(2024, 2, 8)) == date(2024, 2, 19)  # across the Spring Festival
        assert calendar.next_open(date(2024, 2, 8), 3) == date(2024, 2, 21)
        assert calendar.previous_open(date(2024, 2, 19)) == date(2024, 2, 8)
        assert calendar.previous_open(date(2024, 2, 19), 2) == date(2024, 2, 7)

    def test_a_plain_list_ends(self):
        events = reports()
        assert events.next_open(date(2024, 1, 1)) == date(2024, 1, 26)
        assert events.next_open(date(2024, 4, 30)) is None
        assert events.previous_open(date(2024, 1, 26)) is None
        assert events.next_open(date(2024, 1, 1), 4) == date(2024, 4, 30)

    def test_beyond_the_known_days(self):
        calendar = sse()
        assert not calendar.beyond_known(date(2024, 6, 30))
        assert calendar.beyond_known(date(2024, 7, 1))
        assert calendar.is_open(date(2024, 10, 1))  # not known: the weekday rule alone (a Tuesday)


# (rule, n, the occurrence days from 2024-01-01 to 2024-03-10), written out.
RULE_TABLE = [
    (
        "nth_of_month",
        1,
        [date(2024, 1, 2), date(2024, 2, 1), date(2024, 3, 1)],  # 1 January is a holiday
    ),
    (
        "nth_of_month",
        3,
        [date(2024, 1, 4), date(2024, 2, 5), date(2024, 3, 5)],
    ),
    (
        "last_of_month",
        1,
        [date(2024, 1, 31), date(2024, 2, 29)],
    ),
    (
        "last_of_month",
        2,
        [date(2024, 1, 30), date(2024, 2, 28)],
    ),
    (
        "nth_of_week",
        1,
        # Mondays, except 1 January (Tuesday then); the Spring Festival week has none; 2024-02-19 is a Monday.
        [
            date(2024, 1, 2),
            date(2024, 1, 8),
            date(2024, 1, 15),
            date(2024, 1, 22),
            date(2024, 1, 29),
            date(2024, 2, 5),
            date(2024, 2, 19),
            date(2024, 2, 26),
            date(2024, 3, 4),
        ],
    ),
    (
        "last_of_week",
        1,
        # Fridays, except 9 February (Thursday 8th then), and none in the Spring Festival week.
        [
            date(2024, 1, 5),
            date(2024, 1, 12),
            date(2024, 1, 19),
            date(2024, 1, 26),
            date(2024, 2, 2),
            date(2024, 2, 8),
            date(2024, 2, 23),
            date(2024, 3, 1),
            date(2024, 3, 8),
        ],
    ),
]


@pytest.mark.parametrize(("rule", "n", "expected"), RULE_TABLE)
def test_week_and_month_rules(rule, n, expected):
    day_rule = DayRule(rule=rule, calendar=sse(), n=n)
    span = days_between(date(2024, 1, 1), date(2024, 3, 10))
    assert [day for day in span if day_rule.allows(day)] == expected
    # The search agrees with the rule, from every day.
    found, day = [], date(2023, 12, 31)
    while (day := day_rule.next_allowed(day)) is not None and day <= date(2024, 3, 10):
        found.append(day)
    assert found == expected


# T+n after the report days 2024-01-26 (Fri), 2024-02-08 (Thu, before the Spring Festival),
# 2024-03-16 (a Saturday) and 2024-04-30 (Tue, before the May holidays).
AFTER_EVENT_TABLE = [
    (0, [date(2024, 1, 26), date(2024, 2, 8), date(2024, 4, 30)]),  # the Saturday is not open: no T+0
    (1, [date(2024, 1, 29), date(2024, 2, 19), date(2024, 3, 18), date(2024, 5, 6)]),
    (2, [date(2024, 1, 30), date(2024, 2, 20), date(2024, 3, 19), date(2024, 5, 7)]),
]


@pytest.mark.parametrize(("n", "expected"), AFTER_EVENT_TABLE)
def test_t_plus_n_after_each_event_day(n, expected):
    day_rule = DayRule(rule="after_event", calendar=sse(), n=n, events=reports())
    span = days_between(date(2024, 1, 1), date(2024, 6, 30))
    assert [day for day in span if day_rule.allows(day)] == expected
    found, day = [], date(2023, 12, 31)
    while (day := day_rule.next_allowed(day)) is not None:
        found.append(day)
    assert found == expected  # and it ends: the event calendar has no later day


def test_two_events_leading_to_one_day_give_one_day():
    events = CalendarDays(
        name="E", weekdays=frozenset(), listed={date(2024, 2, 10): ListedDay(OPEN), date(2024, 2, 11): ListedDay(OPEN)}
    )
    day_rule = DayRule(rule="after_event", calendar=sse(), n=1, events=events)
    assert [day for day in days_between(date(2024, 2, 1), date(2024, 3, 1)) if day_rule.allows(day)] == [
        date(2024, 2, 19)
    ]


def test_every_open_day_and_the_end_of_a_list():
    listed = CalendarDays(name="M", weekdays=frozenset(), listed={date(2024, 3, 2): ListedDay(OPEN)})
    rule = DayRule(rule="open_days", calendar=listed)
    assert rule.next_allowed(date(2024, 1, 1)) == date(2024, 3, 2)
    assert rule.next_allowed(date(2024, 3, 2)) is None


def test_a_rule_no_week_can_meet_ends_the_search():
    # The 6th open day of a week of a Monday-to-Friday calendar never comes: the search says so.
    rule = DayRule(rule="nth_of_week", calendar=sse(), n=6)
    assert rule.next_allowed(date(2024, 1, 1)) is None
    monthly = DayRule(rule="nth_of_month", calendar=sse(), n=24)  # no month has 24 weekdays
    assert monthly.next_allowed(date(2024, 1, 1)) is None


def test_holidays_that_moved_a_day():
    rule = DayRule(rule="nth_of_month", calendar=sse(), n=1)
    assert rule.holidays_passed(date(2024, 1, 2)) == [(date(2024, 1, 1), "")]
    assert rule.holidays_passed(date(2024, 3, 1)) == []
    last = DayRule(rule="last_of_week", calendar=sse(), n=1)
    assert last.holidays_passed(date(2024, 2, 8)) == [(date(2024, 2, 9), "Spring Festival")]
    after = DayRule(rule="after_event", calendar=sse(), n=1, events=reports())
    assert [day for day, _note in after.holidays_passed(date(2024, 2, 19))] == [date(2024, 2, 9), *HOLIDAYS[2:7]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-5", "Monday–Friday"),
        ("0,6", "Saturday, Sunday"),
        ("sat,sun", "Saturday, Sunday"),
        ("1,3,5", "Monday, Wednesday, Friday"),
        ("*", "Monday–Sunday"),
        ("", "no weekday"),
    ],
)
def test_weekdays_in_words(text, expected):
    assert describe_weekdays(parse_weekdays(text)) == expected


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "23rd",
    ]


@pytest.mark.parametrize(
    ("rule", "n", "english", "chinese"),
    [
        ("open_days", None, "only on open days of SSE", "仅在 SSE 的开放日"),
        ("nth_of_month", 1, "on the 1st open day of each month of SSE", "在 SSE 每月第 1 个开放日"),
        ("last_of_week", 1, "on the last open day of each week of SSE", "在 SSE 每周最后一个开放日"),
        ("last_of_month", 2, "on the 2nd-to-last open day of each month of SSE", "在 SSE 每月倒数第 2 个开放日"),
        (
            "after_event",
            2,
            "on the 2nd open day of SSE after each day of Reports (T+2)",
            "在 Reports 每个日期之后的第 2 个 SSE 开放日（T+2）",
        ),
        (
            "after_event",
            0,
            "on each day of Reports that SSE is open (T+0)",
            "在 Reports 的每个日期，且 SSE 开放时（T+0）",
        ),
    ],
)
def test_rules_in_words_in_both_languages(rule, n, english, chinese):
    with translation.override("en"):
        assert describe_day_rule(rule=rule, n=n, calendar="SSE", events="Reports") == english
    with translation.override("zh-hans"):
        assert describe_day_rule(rule=rule, n=n, calendar="SSE", events="Reports") == chinese


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"rule": "open_days", "n": None, "has_calendar": True}, set()),
        ({"rule": "nth_of_month", "n": 1, "has_calendar": True}, set()),
        ({"rule": "nth_of_month", "n": None, "has_calendar": True}, {"calendar_n"}),
        ({"rule": "nth_of_week", "n": 8, "has_calendar": True}, {"calendar_n"}),
        ({"rule": "last_of_month", "n": 32, "has_calendar": True}, {"calendar_n"}),
        ({"rule": "open_days", "n": 2, "has_calendar": True}, {"calendar_n"}),
        ({"rule": "after_event", "n": 2, "has_calendar": True}, {"event_calendar"}),
        ({"rule": "after_event", "n": 0, "has_calendar": True, "has_event_calendar": True}, set()),
        ({"rule": "nth_of_month", "n": 1, "has_calendar": False}, {"calendar", "calendar_n"}),
        ({"rule": "open_days", "n": None, "has_calendar": False, "has_event_calendar": True}, {"event_calendar"}),
        ({"rule": "open_days", "n": None, "has_calendar": True, "has_days": False}, {"calendar"}),
        ({"rule": "open_days", "n": None, "has_calendar": True, "has_event_calendar": True}, {"event_calendar"}),
        ({"rule": "sometimes", "n": None, "has_calendar": True}, {"calendar_rule"}),
    ],
)
def test_rule_field_errors(fields, errors):
    arguments = {"has_event_calendar": False, "has_days": True, **fields}
    assert set(day_rule_errors(**arguments)) == errors
