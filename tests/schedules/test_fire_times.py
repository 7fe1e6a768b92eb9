"""Next fire times: zones, intervals, the 400-year horizon, the end of time, and the pickled trigger."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from scheduler_app.schedules import CrontabTrigger, build_trigger, next_cron_time, next_fire_times, parse_cron
from tests.schedules.walk import fires, local

NEW_YORK = ZoneInfo("America/New_York")


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

    def test_preview_and_trigger_agree(self):
        now = datetime(2024, 3, 9, 12, tzinfo=UTC)
        for expression in ("0 1-3 * * *", "*/20 * * * *", "0,30 * * * *", "59 23 * * *"):
            preview = next_fire_times(
                cron_expression=expression, interval_seconds=None, timezone="America/New_York", count=60, now=now
            )
            assert preview == fires(expression, NEW_YORK, now, 60)

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

    def test_seconds_of_now_are_ignored(self):
        now = datetime(2026, 11, 22, 10, 30, 15, 500, tzinfo=UTC)
        assert CrontabTrigger("* * * * *", UTC).get_next_fire_time(None, now) == datetime(
            2026, 11, 22, 10, 31, tzinfo=UTC
        )


class TestNoSearchHorizon:
    """Day gaps far beyond 8 years: a schedule that can fire keeps firing."""

    def test_thursday_first_weeks_of_august_skip_eleven_years(self):
        # Day-of-month starts with "*" so both day fields must match: 1, 8, 15, 22 or 29 August on a Thursday.
        times = fires("53 17 */7 8 4", UTC, datetime(2030, 8, 20, tzinfo=UTC), 4)
        assert [t.isoformat() for t in times] == [
            "2030-08-22T17:53:00+00:00",
            "2030-08-29T17:53:00+00:00",
            "2041-08-01T17:53:00+00:00",
            "2041-08-08T17:53:00+00:00",
        ]

    def test_new_years_eve_on_a_sunday(self):
        times = fires("0 0 31 12 */7", UTC, datetime(2035, 1, 1, tzinfo=UTC), 4)
        assert [t.date().isoformat() for t in times] == ["2045-12-31", "2051-12-31", "2056-12-31", "2062-12-31"]

    def test_leap_day_on_a_sunday_across_the_skipped_leap_year_2100(self):
        times = fires("0 0 29 2 */7", UTC, datetime(2089, 1, 1, tzinfo=UTC), 2)
        assert [t.date().isoformat() for t in times] == ["2128-02-29", "2156-02-29"]

    def test_feb_29_is_valid(self):
        times = next_fire_times(
            cron_expression="0 0 29 2 *",
            interval_seconds=None,
            timezone="UTC",
            count=2,
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
        assert [t.year for t in times] == [2028, 2032]

    def test_in_a_dst_zone_too(self):
        times = fires("30 2 31 12 */7", NEW_YORK, datetime(2035, 1, 1, tzinfo=UTC), 2)
        assert local(times) == ["2045-12-31 Sun 02:30 EST", "2051-12-31 Sun 02:30 EST"]

    def test_the_end_of_datetime_is_none_not_an_error(self):
        schedule = parse_cron("0 0 29 2 *")
        assert next_cron_time(schedule, datetime(9996, 3, 1, tzinfo=UTC), UTC) is None
        assert next_cron_time(parse_cron("59 23 31 12 *"), datetime(9999, 12, 31, tzinfo=UTC), NEW_YORK) is None
        assert next_fire_times(
            cron_expression="0 0 1 1 *",
            interval_seconds=None,
            timezone="UTC",
            count=3,
            now=datetime(9998, 6, 1, tzinfo=UTC),
        ) == [datetime(9999, 1, 1, tzinfo=UTC)]


class TestPickling:
    """The trigger is pickled into the job table; only its text goes in, the caches are rebuilt."""

    @pytest.mark.parametrize(("expression", "zone"), [("0 9 * * 1-5", "America/New_York"), ("0 1-3 * * *", "UTC")])
    def test_round_trip(self, expression, zone):
        trigger = CrontabTrigger(expression, ZoneInfo(zone))
        trigger.get_next_fire_time(None, datetime(2026, 11, 21, tzinfo=UTC))  # fill the caches
        clone = pickle.loads(pickle.dumps(trigger))
        assert trigger.__getstate__() == {"version": 1, "expression": expression, "timezone": zone}
        assert str(clone) == f"crontab[{expression}, {zone}]"
        assert repr(clone) == f"<CrontabTrigger ({expression!r}, timezone='{zone}')>"
        now = datetime(2024, 3, 9, tzinfo=UTC)
        previous_a = previous_b = None
        for _ in range(50):
            previous_a = trigger.get_next_fire_time(previous_a, now)
            previous_b = clone.get_next_fire_time(previous_b, now)
            assert previous_a == previous_b

    def test_owed_runs_survive_a_round_trip(self):
        # 2024-03-10 in New York: 02:00 is owed at 03:00 EDT (07:00 UTC), then the job's own 03:00.
        trigger = pickle.loads(pickle.dumps(CrontabTrigger("0 1-3 * * *", NEW_YORK)))
        jump = datetime(2024, 3, 10, 7, tzinfo=UTC)
        assert trigger.get_next_fire_time(None, jump) == jump
        assert trigger.get_next_fire_time(jump, jump) == jump + timedelta(microseconds=1)
