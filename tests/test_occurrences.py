"""What becomes of a planned occurrence (scheduler_app/occurrences.py): jitter, blackout windows that
skip or defer it, with the instants written out."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta

import pytest

from scheduler_app.calendar_rules import CLOSED, CalendarDays, ListedDay
from scheduler_app.occurrences import Blackout, jitter_offset, occurrence_plan
from scheduler_app.schedules import parse_weekdays

SHANGHAI = "Asia/Shanghai"
SSE = CalendarDays(
    name="SSE", weekdays=parse_weekdays("1-5"), listed={date(2024, 2, 9): ListedDay(CLOSED, "Spring Festival")}
)


def at(text: str) -> datetime:
    """A Shanghai wall time as a UTC instant: at("2024-02-07 11:45")."""
    local = datetime.fromisoformat(text).replace(tzinfo=__import__("zoneinfo").ZoneInfo(SHANGHAI))
    return local.astimezone(UTC)


def lunch(action: str, **kwargs) -> Blackout:
    fields = {"from_time": time(11, 30), "until_time": time(13, 0), "calendar": SSE, **kwargs}
    return Blackout(id=1, name="Lunch break", action=action, kind="daily", timezone=SHANGHAI, **fields)


class TestJitter:
    def test_the_same_occurrence_gets_the_same_delay_in_every_process(self):
        planned = datetime(2024, 2, 7, 8, 30, tzinfo=UTC)
        here = jitter_offset(task_id=42, planned=planned, jitter_seconds=60)
        code = (
            "from datetime import datetime, UTC; from scheduler_app.occurrences import jitter_offset; "
            "print(jitter_offset(task_id=42, planned=datetime(2024, 2, 7, 8, 30, tzinfo=UTC), "
            "jitter_seconds=60).total_seconds())"
        )
        for seed in ("1", "2"):  # Python's own hash() would differ between these processes
            other = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
            )
            assert float(other.stdout) == here.total_seconds()

    def test_delays_stay_within_the_bounds_in_whole_milliseconds_and_spread(self):
        planned = datetime(2024, 1, 1, tzinfo=UTC)
        delays = [
            jitter_offset(task_id=7, planned=planned + timedelta(minutes=index), jitter_seconds=10)
            for index in range(2000)
        ]
        assert all(timedelta(0) <= delay <= timedelta(seconds=10) for delay in delays)
        assert all(delay.microseconds % 1000 == 0 for delay in delays)
        assert min(delays) < timedelta(seconds=1)
        assert max(delays) > timedelta(seconds=9)
        assert len(set(delays)) > 1500

    def test_different_tasks_and_times_differ(self):
        planned = datetime(2024, 1, 1, tzinfo=UTC)
        assert jitter_offset(task_id=1, planned=planned, jitter_seconds=3600) != jitter_offset(
            task_id=2, planned=planned, jitter_seconds=3600
        )

    def test_no_jitter_and_no_task(self):
        planned = datetime(2024, 1, 1, tzinfo=UTC)
        assert jitter_offset(task_id=1, planned=planned, jitter_seconds=0) == timedelta(0)
        assert jitter_offset(task_id=None, planned=planned, jitter_seconds=30) == timedelta(0)


class TestWindows:
    def test_daily_window_on_open_days_only(self):
        window = lunch("skip")
        assert window.span_at(at("2024-02-07 11:30")) == (at("2024-02-07 11:30"), at("2024-02-07 13:00"))
        assert window.span_at(at("2024-02-07 12:59:59")) is not None
        assert window.span_at(at("2024-02-07 13:00")) is None  # the end is not in the window
        assert window.span_at(at("2024-02-07 11:29:59")) is None
        assert window.span_at(at("2024-02-09 12:00")) is None  # the Spring Festival: not an open day
        assert window.span_at(at("2024-02-10 12:00")) is None  # a Saturday

    def test_daily_window_across_midnight_belongs_to_the_day_it_starts(self):
        window = Blackout(
            id=2,
            name="Night",
            action="skip",
            kind="daily",
            timezone=SHANGHAI,
            from_time=time(22, 0),
            until_time=time(2, 0),
            calendar=SSE,
        )
        assert window.span_at(at("2024-02-08 01:00")) == (at("2024-02-07 22:00"), at("2024-02-08 02:00"))
        assert window.span_at(at("2024-02-08 23:00")) == (at("2024-02-08 22:00"), at("2024-02-09 02:00"))
        assert window.span_at(at("2024-02-10 01:00")) is None  # started on the 9th, a holiday

    def test_one_off_window(self):
        window = Blackout(
            id=3,
            name="Upgrade",
            action="defer",
            kind="once",
            timezone=SHANGHAI,
            starts_at=at("2024-02-07 02:00"),
            ends_at=at("2024-02-07 04:00"),
        )
        assert window.span_at(at("2024-02-07 03:00")) == (at("2024-02-07 02:00"), at("2024-02-07 04:00"))
        assert window.span_at(at("2024-02-07 04:00")) is None


# (planned, windows, jitter, expected due or None, the reason's start), Shanghai wall times.
PLAN_TABLE = [
    ("2024-02-07 11:45", ["skip"], 0, None, "in the blackout window “Lunch break”"),
    ("2024-02-07 11:45", ["defer"], 0, "2024-02-07 13:00", ""),
    ("2024-02-07 10:00", ["defer"], 0, "2024-02-07 10:00", ""),
    ("2024-02-09 11:45", ["skip"], 0, "2024-02-09 11:45", ""),  # the window follows the calendar's open days
    # A skip window wins over a defer window covering the same time.
    ("2024-02-07 11:45", ["defer", "skip"], 0, None, "in the blackout window"),
]


@pytest.mark.parametrize(("planned", "actions", "jitter", "due", "reason"), PLAN_TABLE)
def test_plan_table(planned, actions, jitter, due, reason):
    windows = [lunch(action) for action in actions]
    plan = occurrence_plan(planned=at(planned), task_id=1, jitter_seconds=jitter, blackouts=windows)
    assert plan.due == (at(due) if due else None)
    assert plan.skip_reason.startswith(reason)
    assert plan.planned == at(planned)


def test_a_deferred_run_moves_on_through_touching_windows_and_is_not_skipped_by_them():
    after_lunch = Blackout(
        id=4,
        name="Batch",
        action="skip",
        kind="daily",
        timezone=SHANGHAI,
        from_time=time(13, 0),
        until_time=time(13, 20),
    )
    plan = occurrence_plan(planned=at("2024-02-07 12:00"), task_id=1, blackouts=[lunch("defer"), after_lunch])
    assert plan.due == at("2024-02-07 13:20")
    assert plan.deferred
    assert len(plan.deferred_by) == 2
    assert (plan.blackout_start, plan.blackout_end) == (at("2024-02-07 11:30"), at("2024-02-07 13:20"))


def test_jitter_is_checked_against_windows_and_added_again_after_a_deferral():
    task_id = next(  # a task id whose delay for this occurrence is over 20 s
        task_id
        for task_id in range(1, 500)
        if jitter_offset(task_id=task_id, planned=at("2024-02-07 11:29:50"), jitter_seconds=30) > timedelta(seconds=20)
    )
    delay = jitter_offset(task_id=task_id, planned=at("2024-02-07 11:29:50"), jitter_seconds=30)
    plan = occurrence_plan(
        planned=at("2024-02-07 11:29:50"), task_id=task_id, jitter_seconds=30, blackouts=[lunch("defer")]
    )
    # 11:29:50 + over 20 s lands in the window: deferred to 13:00, plus the same delay.
    assert plan.due == at("2024-02-07 13:00") + delay
    assert plan.jitter == delay


def test_windows_without_a_gap_skip_and_say_so():
    windows = [
        Blackout(id=i, name=f"w{i}", action="defer", kind="daily", timezone=SHANGHAI, from_time=start, until_time=end)
        for i, (start, end) in enumerate([(time(0, 0), time(12, 0)), (time(12, 0), time(0, 0))])
    ]
    plan = occurrence_plan(planned=at("2024-02-07 11:00"), task_id=1, blackouts=windows)
    assert plan.skipped
    assert "leave no gap" in plan.skip_reason


def test_a_run_deferred_past_the_validity_window_is_skipped():
    plan = occurrence_plan(
        planned=at("2024-02-07 12:00"), task_id=1, blackouts=[lunch("defer")], valid_until=at("2024-02-07 12:30")
    )
    assert plan.skipped
    assert "validity window" in plan.skip_reason
