"""Cron parsing with crontab semantics, descriptions, next fire times and DST, with fixed clocks."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from django.utils import translation

from scheduler_app.schedules import (
    CrontabTrigger,
    InvalidSchedule,
    build_trigger,
    describe_schedule,
    next_fire_times,
    parse_cron,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")


def fires(expression: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    """Walk a trigger as APScheduler does (each call gets the previous fire time); shown in `zone`."""
    trigger = CrontabTrigger(expression, zone)
    result, previous = [], None
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, start)
        assert previous.utcoffset() == timedelta(0)  # instants, never wall clocks
        result.append(previous)
    return [t.astimezone(zone) for t in result]


def elapsed(times: list[datetime]) -> list[timedelta]:
    """Real time between fires (in UTC: same-zone subtraction would give wall-clock differences)."""
    return [b.astimezone(UTC) - a.astimezone(UTC) for a, b in itertools.pairwise(times)]


def local(times: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%d %a %H:%M %Z") for t in times]


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


class TestNextFireTimes:
    def test_cron_in_task_timezone(self):
        now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
        times = next_fire_times(
            cron_expression="30 18 * * *", interval_seconds=None, timezone="Asia/Shanghai", count=3, now=now
        )
        assert local(times) == [
            "2026-11-22 Sun 18:30 CST",
            "2026-11-23 Mon 18:30 CST",
            "2026-11-24 Tue 18:30 CST",
        ]
        assert times[0].astimezone(UTC) == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)

    def test_interval_counts_from_now(self):
        now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
        times = next_fire_times(cron_expression=None, interval_seconds=90, timezone="UTC", count=3, now=now)
        assert times == [now + timedelta(seconds=90 * k) for k in (1, 2, 3)]
        assert isinstance(build_trigger(cron_expression=None, interval_seconds=90, timezone="UTC"), IntervalTrigger)

    def test_fire_time_equal_to_now_is_included(self):
        now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
        trigger = CrontabTrigger("30 10 * * *", UTC)
        assert trigger.get_next_fire_time(None, now) == now
        assert trigger.get_next_fire_time(now, now) == now + timedelta(days=1)

    def test_trigger_survives_pickling_for_the_job_store(self):
        trigger = CrontabTrigger("0 9 * * 1-5", NEW_YORK)
        clone = pickle.loads(pickle.dumps(trigger))
        now = datetime(2026, 11, 21, tzinfo=UTC)
        assert clone.get_next_fire_time(None, now) == trigger.get_next_fire_time(None, now)
        assert str(clone) == "crontab[0 9 * * 1-5, America/New_York]"


class TestDaylightSaving:
    """Spring gap: runs once, shifted forward. Autumn overlap: a fixed time runs once, not twice."""

    def test_new_york_spring_gap_runs_once(self):
        # 2026-03-08 02:00 EST jumps to 03:00 EDT; 02:30 does not exist that day.
        times = fires("30 2 * * *", NEW_YORK, datetime(2026, 3, 7, 12, tzinfo=NEW_YORK), 3)
        assert local(times) == [
            "2026-03-08 Sun 03:30 EDT",
            "2026-03-09 Mon 02:30 EDT",
            "2026-03-10 Tue 02:30 EDT",
        ]

    def test_new_york_autumn_overlap_runs_once(self):
        # 2026-11-01 01:00-02:00 happens twice (EDT, then EST).
        times = fires("30 1 * * *", NEW_YORK, datetime(2026, 10, 31, 12, tzinfo=NEW_YORK), 3)
        assert local(times) == [
            "2026-11-01 Sun 01:30 EDT",
            "2026-11-02 Mon 01:30 EST",
            "2026-11-03 Tue 01:30 EST",
        ]
        assert elapsed(times)[0] == timedelta(days=1, hours=1)

    def test_new_york_hourly_job_follows_real_time_through_overlap(self):
        times = fires("*/30 * * * *", NEW_YORK, datetime(2026, 11, 1, 0, 10, tzinfo=NEW_YORK), 6)
        gaps = set(elapsed(times))
        assert gaps == {timedelta(minutes=30)}
        assert local(times)[1:5] == [
            "2026-11-01 Sun 01:00 EDT",
            "2026-11-01 Sun 01:30 EDT",
            "2026-11-01 Sun 01:00 EST",
            "2026-11-01 Sun 01:30 EST",
        ]

    def test_berlin_spring_gap_runs_once(self):
        # 2026-03-29 02:00 CET jumps to 03:00 CEST.
        times = fires("15 2 * * *", BERLIN, datetime(2026, 3, 28, 12, tzinfo=BERLIN), 2)
        assert local(times) == ["2026-03-29 Sun 03:15 CEST", "2026-03-30 Mon 02:15 CEST"]

    def test_berlin_autumn_overlap_runs_once(self):
        # 2026-10-25 03:00 CEST falls back to 02:00 CET.
        times = fires("30 2 * * *", BERLIN, datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2)
        assert local(times) == ["2026-10-25 Sun 02:30 CEST", "2026-10-26 Mon 02:30 CET"]

    def test_berlin_every_fifteen_minutes_in_gap_hour(self):
        times = fires("*/15 2 * * *", BERLIN, datetime(2026, 3, 29, 0, 0, tzinfo=BERLIN), 4)
        # The four 02:xx times all exist only as 03:xx; each runs once and none twice.
        assert local(times) == [
            "2026-03-29 Sun 03:00 CEST",
            "2026-03-29 Sun 03:15 CEST",
            "2026-03-29 Sun 03:30 CEST",
            "2026-03-29 Sun 03:45 CEST",
        ]
        assert len({t.astimezone(UTC) for t in times}) == 4

    def test_no_fire_time_is_ever_repeated_or_backwards(self):
        for zone, start in (
            (NEW_YORK, datetime(2026, 10, 31, tzinfo=NEW_YORK)),
            (BERLIN, datetime(2026, 10, 24, tzinfo=BERLIN)),
        ):
            times = fires("*/10 * * * *", zone, start, 500)
            assert all(gap > timedelta(0) for gap in elapsed(times))


class TestDescriptions:
    def test_cron_description_in_english(self):
        with translation.override("en"):
            assert describe_schedule(cron_expression="0 9 * * 1-5", interval_seconds=None) == (
                "At 09:00, Monday through Friday"
            )

    def test_cron_description_in_chinese(self):
        with translation.override("zh-hans"):
            assert describe_schedule(cron_expression="*/15 * * * *", interval_seconds=None) == "每 15 分钟"

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (1, "Every second"),
            (45, "Every 45 seconds"),
            (60, "Every minute"),
            (300, "Every 5 minutes"),
            (7200, "Every 2 hours"),
            (86400, "Every day"),
        ],
    )
    def test_interval_description(self, seconds, text):
        with translation.override("en"):
            assert describe_schedule(cron_expression=None, interval_seconds=seconds) == text

    def test_manual_description(self):
        with translation.override("en"):
            assert describe_schedule(cron_expression=None, interval_seconds=None).startswith("Manual")
