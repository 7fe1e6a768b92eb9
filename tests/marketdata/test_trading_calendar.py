"""The market-data trading calendar reaches the scheduler as a named calendar (marketdata.trading_calendar,
through scheduler_app.calendars): published after every sync, unchanged when the days are, refused
when a calendar of that name is kept by hand; the bundled 2024 sample drives a trading-day task."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from marketdata.trading_calendar import SOURCE, exchange_calendar
from scheduler_app.calendars import registered_calendar_sources
from scheduler_app.models import Calendar
from scheduler_app.triggers import TaskTiming, fire_times, forget_calendar_snapshots
from tests.executors.helpers import run_config
from tests.factories import CalendarFactory

pytestmark = [pytest.mark.usefixtures("fast"), pytest.mark.django_db]

# Closed weekdays of the sample's first half of 2024: the only days listed (weekends follow Monday-Friday).
SAMPLE_HOLIDAYS = [
    date(2024, 1, 1),
    date(2024, 2, 9),
    date(2024, 2, 12),
    date(2024, 2, 13),
    date(2024, 2, 14),
    date(2024, 2, 15),
    date(2024, 2, 16),
    date(2024, 4, 4),
    date(2024, 4, 5),
    date(2024, 5, 1),
    date(2024, 5, 2),
    date(2024, 5, 3),
    date(2024, 6, 10),
]


@pytest.fixture(autouse=True)
def fresh_cache():
    forget_calendar_snapshots()


def sync_calendar(**config):
    return run_config({"task_action": "sync_trading_calendar", **config}, max_retries=0)


def test_a_sync_publishes_the_exchange_calendar():
    execution = sync_calendar()
    assert execution.status == "success", execution.error_message
    assert execution.result["message"] == "成功同步 182 条交易日历，已更新调度日历 SSE"
    calendar = Calendar.objects.get(name="SSE")
    assert (calendar.source, calendar.weekdays, calendar.known_until) == (SOURCE, "1-5", date(2024, 6, 30))
    assert list(calendar.days.order_by("date").values_list("date", flat=True)) == SAMPLE_HOLIDAYS
    assert set(calendar.days.values_list("kind", flat=True)) == {"closed"}
    revision = calendar.revision
    again = sync_calendar(start_date="20240101", end_date="20240131")
    assert again.result["message"] == "成功同步 31 条交易日历，调度日历无变化 SSE"
    calendar.refresh_from_db()
    assert calendar.revision == revision  # the same days: nothing for the scheduler to rebuild


def test_a_trading_day_task_skips_the_sample_spring_festival():
    sync_calendar()
    calendar = Calendar.objects.get(name="SSE")
    spec = TaskTiming(
        cron_expression="30 16 * * *", interval_seconds=None, timezone="Asia/Shanghai", calendar_id=calendar.pk
    )
    times = fire_times(spec, count=3, now=datetime(2024, 2, 8, tzinfo=UTC))
    assert times == [
        datetime(2024, 2, 8, 8, 30, tzinfo=UTC),
        datetime(2024, 2, 19, 8, 30, tzinfo=UTC),
        datetime(2024, 2, 20, 8, 30, tzinfo=UTC),
    ]


def test_a_calendar_kept_by_hand_is_not_overwritten_and_the_sync_says_so():
    CalendarFactory(name="SSE", weekdays="1-6")
    execution = sync_calendar()
    assert execution.status == "failed"
    assert "成功同步 182 条交易日历" in execution.error_message  # the trading days were synced
    assert (
        'A calendar named "SSE" exists and is not published by marketdata.trading_calendar' in execution.error_message
    )
    assert Calendar.objects.get(name="SSE").weekdays == "1-6"


def test_the_source_reads_the_provider_until_something_is_synced():
    assert SOURCE in [source.name for source in registered_calendar_sources()]
    calendar = exchange_calendar("SSE")
    assert [day.date for day in calendar.days] == SAMPLE_HOLIDAYS
    assert calendar.known_until == date(2024, 6, 30)
    assert exchange_calendar("NOWHERE") is None
