"""Daylight saving as Debian's cron(8) handles it, with each day's expected runs written out.

Wildcard job (minute or hour starts with "*"): wall clock, never a missing time, both passes of a
repeated hour. Fixed-time job: a time skipped by a spring jump (< 3 h) is owed one run right after
the jump; a repeated time runs in the first pass only. Changes of 3 h or more are corrections.
Runs due at one jump are spaced by 1 microsecond in planned order ("03:00+1us").
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler_app.schedules import MACROS, CrontabTrigger, dst_gap_skips, dst_owed_run, next_fire_times, parse_cron
from tests.schedules.walk import fires_between, runs_on

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
LORD_HOWE = "Australia/Lord_Howe"


def hourly(first: int, last: int, minute: int, zone: str) -> list[str]:
    return [f"{hour:02}:{minute:02} {zone}" for hour in range(first, last + 1)]


class TestNewYork:
    """2024-03-10 02:00 EST jumps to 03:00 EDT; 2024-11-03 02:00 EDT falls back to 01:00 EST."""

    @pytest.mark.parametrize(
        ("expression", "day", "expected"),
        [
            # Fixed time in the gap: once, right after the jump (we used to run 03:30).
            ("30 2 * * *", "2024-03-10", ["03:00 EDT"]),
            ("30 2 * * *", "2024-03-09", ["02:30 EST"]),
            ("30 2 * * *", "2024-03-11", ["02:30 EDT"]),
            # Autumn: 02:30 is not repeated (01:00-01:59 is), so it runs once, in EST.
            ("30 2 * * *", "2024-11-03", ["02:30 EST"]),
            ("30 1 * * *", "2024-11-03", ["01:30 EDT"]),
            # Wildcard: no run for the missing 02:00; both passes of 01:00.
            ("0 * * * *", "2024-03-10", [*hourly(0, 1, 0, "EST"), *hourly(3, 23, 0, "EDT")]),
            ("0 * * * *", "2024-11-03", ["00:00 EDT", "01:00 EDT", *hourly(1, 23, 0, "EST")]),
            ("@hourly", "2024-11-03", ["00:00 EDT", "01:00 EDT", *hourly(1, 23, 0, "EST")]),
            # We used to run `* 2 * * *` 60 times between 03:00 and 03:59.
            ("* 2 * * *", "2024-03-10", []),
            ("*/15 2 * * *", "2024-03-10", []),
            ("*/30 1 * * *", "2024-11-03", ["01:00 EDT", "01:30 EDT", "01:00 EST", "01:30 EST"]),
            # A list covering all 24 hours is fixed-time, not "*": 01:00 once (we used to run it twice).
            ("0 0-23 * * *", "2024-11-03", ["00:00 EDT", "01:00 EDT", *hourly(2, 23, 0, "EST")]),
            (
                "0 0-23 * * *",
                "2024-03-10",
                ["00:00 EST", "01:00 EST", "03:00 EDT", "03:00+1us EDT", *hourly(4, 23, 0, "EDT")],
            ),
            # Debian starts 0 1-3 twice at 03:00: owed 02:00, then its own 03:00.
            ("0 1-3 * * *", "2024-03-10", ["01:00 EST", "03:00 EDT", "03:00+1us EDT"]),
            ("0,15,30,45 2 * * *", "2024-03-10", ["03:00 EDT", "03:00+1us EDT", "03:00+2us EDT", "03:00+3us EDT"]),
            ("@daily", "2024-03-10", ["00:00 EST"]),
        ],
    )
    def test_runs_of_the_day(self, expression, day, expected):
        assert runs_on(expression, NEW_YORK, day) == expected

    def test_every_minute_of_the_gap_is_owed_by_a_fixed_job(self):
        times = runs_on("0-59 2 * * *", NEW_YORK, "2024-03-10")
        assert times == ["03:00 EDT"] + [f"03:00+{k}us EDT" for k in range(1, 60)]

    def test_wildcard_every_minute_in_the_repeated_hour_runs_120_times(self):
        times = runs_on("* 1 * * *", NEW_YORK, "2024-11-03")
        assert len(times) == 120
        assert times[59:61] == ["01:59 EDT", "01:00 EST"]


class TestLondon:
    """2027-03-28 01:00 GMT jumps to 02:00 BST; 2027-10-31 02:00 BST falls back to 01:00 GMT."""

    def test_owed_run_does_not_merge_with_a_real_time(self):
        # We used to shift 01:01 to 02:01, on top of the real 02:01: one run lost.
        assert runs_on("1 0-23 * * *", LONDON, "2027-03-28") == ["00:01 GMT", "02:00 BST", *hourly(2, 23, 1, "BST")]

    @pytest.mark.parametrize(
        ("expression", "day", "expected"),
        [
            ("30 1 * * *", "2027-03-28", ["02:00 BST"]),
            ("30 1 * * *", "2027-10-31", ["01:30 BST"]),
            (
                "*/20 1 * * *",
                "2027-10-31",
                ["01:00 BST", "01:20 BST", "01:40 BST", "01:00 GMT", "01:20 GMT", "01:40 GMT"],
            ),
            ("0 1,2 * * *", "2027-03-28", ["02:00 BST", "02:00+1us BST"]),
            ("0 1,2 * * *", "2027-10-31", ["01:00 BST", "02:00 GMT"]),
        ],
    )
    def test_runs_of_the_day(self, expression, day, expected):
        assert runs_on(expression, LONDON, day) == expected


class TestLordHowe:
    """Half-hour DST: 2024-04-07 02:00 (+11) falls back to 01:30 (+1030); 2024-10-06 02:00 (+1030)
    jumps to 02:30 (+11)."""

    @pytest.mark.parametrize(
        ("expression", "day", "expected"),
        [
            # We used to add a 02:30 run to `0 * * * *` on the jump day.
            ("0 * * * *", "2024-10-06", ["00:00 +1030", "01:00 +1030", *hourly(3, 23, 0, "+11")]),
            ("30 * * * *", "2024-10-06", ["00:30 +1030", "01:30 +1030", *hourly(2, 23, 30, "+11")]),
            ("15 2 * * *", "2024-10-06", ["02:30 +11"]),
            ("0,30 2 * * *", "2024-10-06", ["02:30 +11", "02:30+1us +11"]),
            ("*/10 2 * * *", "2024-10-06", ["02:30 +11", "02:40 +11", "02:50 +11"]),
            ("45 1 * * *", "2024-04-07", ["01:45 +11"]),
            (
                "*/15 1 * * *",
                "2024-04-07",
                ["01:00 +11", "01:15 +11", "01:30 +11", "01:45 +11", "01:30 +1030", "01:45 +1030"],
            ),
            ("30 0-23 * * *", "2024-04-07", ["00:30 +11", "01:30 +11", *hourly(2, 23, 30, "+1030")]),
            ("0 * * * *", "2024-04-07", ["00:00 +11", "01:00 +11", *hourly(2, 23, 0, "+1030")]),
        ],
    )
    def test_runs_of_the_day(self, expression, day, expected):
        assert runs_on(expression, LORD_HOWE, day) == expected


class TestCorrections:
    """A change of 3 hours or more: every job follows the new wall clock at once."""

    def test_samoa_skipping_a_day_owes_nothing(self):
        # Pacific/Apia went from 2011-12-29 23:59:59 (-10) to 2011-12-31 00:00 (+14).
        assert runs_on("30 12 * * *", "Pacific/Apia", "2011-12-30") == []
        assert runs_on("30 12 * * *", "Pacific/Apia", "2011-12-31") == ["12:30 +14"]

    def test_three_hours_back_runs_both_passes_for_fixed_jobs(self):
        # Antarctica/Casey 2010-03-05 02:00 (+11) went back to 23:00 (+08) on the 4th.
        times = runs_on("30 23 * * *", "Antarctica/Casey", "2010-03-04")
        assert times == ["23:30 +11", "23:30 +08"]

    def test_three_hours_forward_owes_nothing(self):
        # Antarctica/Casey 2009-10-18 02:00 (+08) jumped to 05:00 (+11).
        assert runs_on("30 3 * * *", "Antarctica/Casey", "2009-10-18") == []


class TestOwedRuns:
    """Each run due at a jump is its own instant (1 us apart, in planned order) and can be explained."""

    def test_owed_and_own_runs_are_distinct_increasing_instants(self):
        zone = ZoneInfo(NEW_YORK)
        times = fires_between(
            "0 1-3 * * *", zone, datetime(2024, 3, 10, 5, tzinfo=UTC), datetime(2024, 3, 10, 8, tzinfo=UTC)
        )
        jump = datetime(2024, 3, 10, 7, tzinfo=UTC)
        assert [t.astimezone(UTC) for t in times] == [
            datetime(2024, 3, 10, 6, tzinfo=UTC),
            jump,
            jump + timedelta(microseconds=1),
        ]

    def test_explanation_of_each_fire_time(self):
        preview = next_fire_times(
            cron_expression="0 1-3 * * *",
            interval_seconds=None,
            timezone=NEW_YORK,
            count=4,
            now=datetime(2024, 3, 10, 5, tzinfo=UTC),
        )
        explained = [dst_owed_run(cron_expression="0 1-3 * * *", timezone=NEW_YORK, fire_time=t) for t in preview]
        assert [None if e is None else e.planned for e in explained] == [None, datetime(2024, 3, 10, 2, 0), None, None]
        owed = explained[1]
        assert owed.fire_time == datetime(2024, 3, 10, 7, tzinfo=UTC)
        assert owed.describe() == "owed for 02:00, skipped by the daylight-saving jump"

    def test_explanation_in_chinese(self):
        from django.utils import translation

        owed = dst_owed_run(
            cron_expression="30 2 * * *", timezone=NEW_YORK, fire_time=datetime(2024, 3, 10, 7, tzinfo=UTC)
        )
        with translation.override("zh-hans"):
            assert owed.describe() == "补跑 02:30 的运行（该时刻被夏令时跳过）"

    @pytest.mark.parametrize(
        ("expression", "fire_time"),
        [
            ("0 * * * *", datetime(2024, 3, 10, 7, tzinfo=UTC)),  # wildcard: its own 03:00
            ("0 3 * * *", datetime(2024, 3, 10, 7, tzinfo=UTC)),  # fixed, nothing in the gap
            ("30 2 * * *", datetime(2024, 3, 11, 6, 30, tzinfo=UTC)),  # an ordinary day
        ],
    )
    def test_runs_at_their_own_time_are_not_owed(self, expression, fire_time):
        assert dst_owed_run(cron_expression=expression, timezone=NEW_YORK, fire_time=fire_time) is None

    def test_a_now_between_two_owed_runs_gets_the_next_one(self):
        trigger = CrontabTrigger("0,15,30,45 2 * * *", ZoneInfo(NEW_YORK))
        jump = datetime(2024, 3, 10, 7, tzinfo=UTC)
        now = jump + timedelta(microseconds=2)
        assert trigger.get_next_fire_time(None, now) == now
        assert trigger.get_next_fire_time(now, now) == jump + timedelta(microseconds=3)
        assert trigger.get_next_fire_time(jump + timedelta(microseconds=3), now) == datetime(2024, 3, 11, 6, tzinfo=UTC)


# ------------------------------------------------------------------ Debian's main loop as the oracle

CORRECTION_MINUTES = 180


def debian_runs(expression: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """(real minute, planned wall minute) of every run Debian's cron(8) starts between two UTC minutes.

    A transcription of its main loop: each real minute it reads the wall clock (timeRunning) and
    compares it with the last minute it handled (virtualTime). One minute on: run the jobs due then.
    Forward by less than 3 h: run the wildcard jobs due now and the fixed-time jobs of every minute
    skipped and of now. Back by less than 3 h: run only the wildcard jobs due now, and keep
    virtualTime until the clock catches up. Otherwise: take the new time and run every job due now.
    """
    schedule = parse_cron(expression)
    fields = MACROS.get(expression, expression).split()
    wildcard = fields[0].startswith("*") or fields[1].startswith("*")  # @hourly is "0 * * * *"
    either_day = not fields[2].startswith("*") and not fields[4].startswith("*")

    def due(wall: datetime) -> bool:
        day = wall.day in schedule.days
        weekday = wall.isoweekday() % 7 in schedule.weekdays
        return (
            wall.minute in schedule.minutes
            and wall.hour in schedule.hours
            and wall.month in schedule.months
            and ((day or weekday) if either_day else (day and weekday))
        )

    minute = timedelta(minutes=1)
    runs: list[tuple[datetime, datetime]] = []
    virtual = None
    real = start
    while real < end:
        running = real.astimezone(zone).replace(tzinfo=None)
        # A gap of G minutes shows as G + 1, a step back of B minutes as 1 - B.
        step = None if virtual is None else (running - virtual) // minute
        if step is None or step == 1 or step > CORRECTION_MINUTES or step <= 1 - CORRECTION_MINUTES:
            # The first minute, the usual next minute, or a correction (3 h or more either way).
            virtual = running
            if due(running):
                runs.append((real, running))
        elif running > virtual:  # forward by less than 3 hours: a spring gap
            if wildcard and due(running):
                runs.append((real, running))
            while virtual < running:
                virtual += minute
                if not wildcard and due(virtual):
                    runs.append((real, virtual))
        elif wildcard and due(running):  # back by less than 3 hours: a repeated interval
            runs.append((real, running))
        real += minute
    return runs


def our_runs(expression: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Our fire times as (real minute, planned wall minute), the planned time of an owed run being the
    skipped wall time it is owed for."""
    runs = []
    for fire in fires_between(expression, zone, start, end):
        owed = dst_owed_run(cron_expression=expression, timezone=str(zone), fire_time=fire)
        planned = owed.planned if owed else fire.replace(tzinfo=None, microsecond=0)
        runs.append((fire.astimezone(UTC).replace(microsecond=0), planned))
    return runs


def transitions(zone: ZoneInfo, year: int) -> list[tuple[datetime, timedelta]]:
    """Offset changes of a year (instant, size), found by sampling every hour and bisecting."""
    found = []
    instant = datetime(year, 1, 1, tzinfo=UTC)
    offset = instant.astimezone(zone).utcoffset()
    while instant.year == year:
        following = instant + timedelta(hours=1)
        changed = following.astimezone(zone).utcoffset()
        if changed != offset:
            low, high = int(instant.timestamp()), int(following.timestamp())
            while high - low > 1:  # the tz database changes offsets on whole seconds
                middle = (low + high) // 2
                if datetime.fromtimestamp(middle, zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            found.append((datetime.fromtimestamp(high, UTC), changed - offset))
        instant, offset = following, changed
    return found


def random_expression(rng: random.Random) -> str:
    """Dense expressions, so that many runs fall near the transition; both job classes."""
    minute = rng.choice(["*", "*/5", "*/15", "0", "30", "0,30", "1", "0-59/10", "15-45", "59", "45"])
    hour = rng.choice(["*", "*/2", "0-23", "1", "2", "1-3", "0,1,2,3", "23", "0-4", "*/3", "22-23"])
    day = rng.choice(["*", "*", "*", "1-31", "*/2"])
    weekday = rng.choice(["*", "*", "*", "0-6", "1-5", "0"])
    return f"{minute} {hour} {day} * {weekday}"


DST_DAYS = [
    (NEW_YORK, 2024),
    (LONDON, 2027),
    (LORD_HOWE, 2024),
    ("America/Santiago", 2024),  # changes at midnight
    ("America/St_Johns", 2024),  # -03:30 / -02:30
    ("Asia/Pyongyang", 2018),  # +08:30 to +09:00 once
    ("Pacific/Apia", 2011),  # 24-hour correction
    ("Antarctica/Casey", 2010),  # 3-hour corrections
    ("Antarctica/Casey", 2009),
]
FIXED_EXAMPLES = [
    "30 2 * * *",
    "30 1 * * *",
    "0 * * * *",
    "* 2 * * *",
    "0 0-23 * * *",
    "0 1-3 * * *",
    "1 0-23 * * *",
    "@hourly",
    "0-59 2 * * *",
    "*/30 1 * * *",
    "0,30 * * * *",
    "0 0 * * *",
]


@pytest.mark.parametrize(("zone_name", "year"), DST_DAYS)
def test_every_transition_matches_debians_main_loop(zone_name, year):
    zone = ZoneInfo(zone_name)
    rng = random.Random(f"{zone_name}-{year}")
    expressions = FIXED_EXAMPLES + [random_expression(rng) for _ in range(40)]
    changes = transitions(zone, year)
    assert changes, "the year has offset changes"
    compared = 0
    for instant, size in changes:
        start = (instant - timedelta(hours=5)).replace(second=0)  # the simulation steps whole minutes
        end = instant + timedelta(hours=5) + abs(size)
        for expression in expressions:
            expected = debian_runs(expression, zone, start, end)
            assert our_runs(expression, zone, start, end) == expected, (expression, str(instant))
            compared += len(expected)
    assert compared > 500


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 * * * *", [datetime(2024, 3, 10, 2, 0)]),  # a wildcard job: 02:00 never existed, no run
        ("*/20 * * * *", [datetime(2024, 3, 10, 2, 0), datetime(2024, 3, 10, 2, 20), datetime(2024, 3, 10, 2, 40)]),
        ("30 2 * * *", []),  # a fixed-time job owes its run instead (dst_owed_run)
    ],
)
def test_the_wall_times_a_wildcard_job_loses_in_a_spring_gap(cron, expected):
    skipped = dst_gap_skips(
        cron_expression=cron,
        timezone="America/New_York",
        after=datetime(2024, 3, 9, tzinfo=UTC),
        until=datetime(2024, 3, 12, tzinfo=UTC),
    )
    assert skipped == expected
    assert (
        dst_gap_skips(
            cron_expression=cron,
            timezone="America/New_York",
            after=datetime(2024, 11, 1, tzinfo=UTC),
            until=datetime(2024, 11, 5, tzinfo=UTC),
        )
        == []
    )  # autumn repeats an hour: nothing is lost
