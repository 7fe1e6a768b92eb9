"""Which due run times run, which are recorded as skipped, and why (misfire grace and catch-up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scheduler_app.scheduling.firing import plan_run_times

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def times(*seconds_ago: float) -> list[datetime]:
    return [NOW - timedelta(seconds=s) for s in seconds_ago]


def test_on_time_run():
    plan = plan_run_times(run_times=times(0.01), now=NOW, grace_seconds=300, catch_up="once")
    assert plan.run_time == NOW - timedelta(seconds=0.01)
    assert plan.skipped == []


def test_late_but_within_grace_still_runs():
    plan = plan_run_times(run_times=times(200), now=NOW, grace_seconds=300, catch_up="none")
    assert plan.run_time == NOW - timedelta(seconds=200)


def test_beyond_grace_without_catch_up_is_skipped_with_reason():
    plan = plan_run_times(run_times=times(400), now=NOW, grace_seconds=300, catch_up="none")
    assert plan.run_time is None
    assert plan.skipped[0][1] == "missed by 400.0 s, beyond the misfire grace of 300 s"


def test_downtime_runs_once_and_records_the_rest():
    plan = plan_run_times(run_times=times(5000, 4000, 3000), now=NOW, grace_seconds=300, catch_up="once")
    assert plan.run_time == NOW - timedelta(seconds=3000)
    assert [t for t, _ in plan.skipped] == times(5000, 4000)
    assert all("scheduler was not running" in reason for _, reason in plan.skipped)


def test_downtime_without_catch_up_runs_nothing():
    plan = plan_run_times(run_times=times(5000, 4000), now=NOW, grace_seconds=300, catch_up="none")
    assert plan.run_time is None
    assert len(plan.skipped) == 2


def test_nothing_due():
    plan = plan_run_times(run_times=[], now=NOW, grace_seconds=300, catch_up="once")
    assert (plan.run_time, plan.skipped) == (None, [])
