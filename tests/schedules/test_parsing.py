"""Cron parsing: crontab fields, Debian's day-field rule and job classes, ASCII digits, validation."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from scheduler_app.schedules import (
    InvalidSchedule,
    build_trigger,
    next_fire_times,
    parse_cron,
)
from tests.schedules.walk import fires

SHANGHAI = ZoneInfo("Asia/Shanghai")


class TestCrontabWeekdays:
    """Day-of-week is crontab's: 0 and 7 are Sunday, 1-5 is Monday to Friday (APScheduler says Tue-Sat)."""

    def test_one_to_five_is_monday_to_friday(self):
        start = datetime(2026, 11, 21, 12, 0, tzinfo=SHANGHAI)  # a Saturday
        days = [t.strftime("%a") for t in fires("0 9 * * 1-5", SHANGHAI, start, 5)]
        assert days == ["Mon", "Tue", "Wed", "Thu", "Fri"]

    @pytest.mark.parametrize("weekday", ["0", "7", "sun", "SUN"])
    def test_zero_seven_and_name_are_sunday(self, weekday):
        start = datetime(2026, 11, 18, tzinfo=SHANGHAI)
        times = fires(f"0 18 * * {weekday}", SHANGHAI, start, 2)
        assert [t.strftime("%a %d %H:%M") for t in times] == ["Sun 22 18:00", "Sun 29 18:00"]

    def test_names_ranges_steps_and_lists(self):
        schedule = parse_cron("*/20 8-10/2 1,15 jan-mar mon-fri,sun")
        assert schedule.minutes == (0, 20, 40)
        assert schedule.hours == (8, 10)
        assert schedule.days == {1, 15}
        assert schedule.months == {1, 2, 3}
        assert schedule.weekdays == {0, 1, 2, 3, 4, 5}

    def test_weekday_step_counts_from_sunday(self):
        assert parse_cron("0 0 * * */2").weekdays == {0, 2, 4, 6}

    def test_restricted_day_and_weekday_match_either(self):
        start = datetime(2026, 11, 20, tzinfo=SHANGHAI)  # Friday
        times = fires("0 0 1 * 1", SHANGHAI, start, 4)
        assert [t.strftime("%a %d") for t in times] == ["Mon 23", "Mon 30", "Tue 01", "Mon 07"]

    def test_star_day_with_weekday_matches_weekday_only(self):
        start = datetime(2026, 11, 20, tzinfo=SHANGHAI)
        times = fires("0 0 * * 1", SHANGHAI, start, 2)
        assert [t.strftime("%a %d") for t in times] == ["Mon 23", "Mon 30"]

    def test_macros(self):
        assert parse_cron("@daily").minutes == (0,)
        assert parse_cron("@weekly").weekdays == {0}


class TestCronValidation:
    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("61 * * * *", "minute field: 61 is out of range 0-59"),
            ("*/0 * * * *", "step must be a whole number of at least 1"),
            ("* * * * * *", "has 5 fields"),
            ("* * * *", "got 4"),
            ("", "empty"),
            ("   ", "empty"),
            ("0 24 * * *", "hour field: 24 is out of range 0-23"),
            ("0 0 0 * *", "day of month field: 0 is out of range 1-31"),
            ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
            ("0 0 * * 8", "day of week field: 8 is out of range 0-7"),
            ("0 0 * * funday", "'funday' is not a number or a known name"),
            ("30-10 * * * *", "range 30-10 runs backwards"),
            ("1,,2 * * * *", "empty list item"),
            ("0 0 30 2 *", "never fires"),
            ("*/x * * * *", "step must be a whole number"),
        ],
    )
    def test_invalid_expression_names_the_problem(self, expression, message):
        with pytest.raises(InvalidSchedule, match=message):
            parse_cron(expression)

    def test_feb_29_is_valid(self):
        times = next_fire_times(
            cron_expression="0 0 29 2 *",
            interval_seconds=None,
            timezone="UTC",
            count=2,
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        assert [t.year for t in times] == [2028, 2032]

    def test_unknown_timezone(self):
        with pytest.raises(InvalidSchedule, match="Unknown timezone 'Mars/Olympus'"):
            build_trigger(cron_expression="0 0 * * *", interval_seconds=None, timezone="Mars/Olympus")

    @pytest.mark.parametrize("interval", [0, -5, 1.5, "10", True])
    def test_bad_interval(self, interval):
        with pytest.raises(InvalidSchedule):
            build_trigger(cron_expression=None, interval_seconds=interval, timezone="UTC")


class TestDayFields:
    """Debian: if either day field starts with "*" (also "*/n") both must match; if both are restricted,
    either may."""

    @pytest.mark.parametrize(
        ("expression", "days"),
        [
            # Both restricted: the 1st or a Monday (2026-06: Mondays are 1, 8, 15, 22, 29).
            ("0 0 1,15 6 1", [1, 8, 15, 22, 29]),
            ("0 0 1,15 6 mon", [1, 8, 15, 22, 29]),
            # A step on "*" is not a restriction: odd days that are Mondays.
            ("0 0 */2 6 1", [1, 15, 29]),
            ("0 0 1,15 6 */1", [1, 15]),
            # "1,*" does not start with "*": restricted, so OR with Monday (every day matches).
            ("0 0 1,* 6 1", list(range(1, 31))),
            ("0 0 ? 6 1", [1, 8, 15, 22, 29]),
        ],
    )
    def test_and_or_rule(self, expression, days):
        times = fires(expression, UTC, datetime(2026, 5, 31, 12, tzinfo=UTC), len(days))
        assert [t.day for t in times] == days
        assert times[-1].month == 6


class TestJobClass:
    """Wildcard job: the minute or hour field starts with "*" as written (and @hourly); else fixed-time."""

    @pytest.mark.parametrize(
        ("expression", "wildcard"),
        [
            ("* 2 * * *", True),
            ("*/15 2 * * *", True),
            ("30 * * * *", True),
            ("30 */2 * * *", True),
            ("@hourly", True),
            ("30 2 * * *", False),
            ("0 0-23 * * *", False),
            ("0-59 2 * * *", False),
            ("0,30 1-3 * * *", False),
            ("@daily", False),
            ("@weekly", False),
        ],
    )
    def test_decided_by_the_first_character_as_written(self, expression, wildcard):
        assert parse_cron(expression).wildcard is wildcard


class TestAsciiDigitsOnly:
    @pytest.mark.parametrize(
        "expression",
        [
            "٣٠ * * * *",  # Arabic-Indic 30
            "０ ０ * * *",  # full-width zeros
            "*/٥ * * * *",  # Arabic-Indic step
            "0 9 * * ١-٥",
            "0 ９ * * *",
            "0 0 ¹ * *",  # superscript one
        ],
    )
    def test_non_ascii_digits_are_refused(self, expression):
        with pytest.raises(InvalidSchedule, match="field"):
            parse_cron(expression)

    def test_fields_are_separated_by_blanks_only(self):
        # An ideographic space is not a field separator (crontab(5) splits on spaces and tabs).
        with pytest.raises(InvalidSchedule, match="5 fields"):
            parse_cron("0\u30000 * * *")
        assert parse_cron("0\t0  *\t* *").expression == "0 0 * * *"


class TestNeverFires:
    """Refused at parse time by the same search that finds fire times, over one 400-year cycle."""

    @pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 2,4,6,9,11 *", "0 0 31 4 */7", "0 0 30,31 feb *"])
    def test_impossible_dates_are_refused(self, expression):
        with pytest.raises(InvalidSchedule, match="never fires"):
            parse_cron(expression)

    @pytest.mark.parametrize(
        "expression",
        ["0 0 29 2 *", "0 0 29 2 */7", "0 0 31 12 */7", "53 17 */7 8 4", "0 0 31 2 1", "0 0 29 2 mon"],
    )
    def test_rare_but_possible_dates_are_accepted(self, expression):
        assert parse_cron(expression)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1-5", {1, 2, 3, 4, 5}), ("sat,sun", {0, 6}), ("7", {0}), ("*", {0, 1, 2, 3, 4, 5, 6}), ("", set())],
)
def test_weekdays_of_a_calendar_are_read_like_the_day_of_week_field(text, expected):
    from scheduler_app.schedules import parse_weekdays

    assert parse_weekdays(text) == expected


@pytest.mark.parametrize(
    ("text", "message"), [("1-8", "out of range"), ("1 2", "without blanks"), ("mon-", "not a number")]
)
def test_bad_weekdays_name_the_field(text, message):
    from scheduler_app.schedules import InvalidSchedule, parse_weekdays

    with pytest.raises(InvalidSchedule, match="day of week") as error:
        parse_weekdays(text)
    assert message in str(error.value)
