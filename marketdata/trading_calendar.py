"""The trading calendar as the scheduler's named calendars: one per exchange ("SSE"), published through
scheduler_app.calendars so that tasks can run on trading days only (ScheduledTask.calendar).

An exchange's calendar is written as open weekdays Monday to Friday, the closed weekdays (holidays)
and the open weekend days listed, and `known_until` = the last synced day (later days follow Monday
to Friday until the exchange's next calendar is synced). The source reads the synced table
(TradingDay), or the provider's calendar while nothing is synced (the demo's sample, 2024).
`sync_trading_calendar` publishes after every sync; publishing the same days changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from marketdata.models import TradingDay
from marketdata.providers import get_provider
from scheduler_app.calendars import CLOSED, OPEN, DaySpec, PublishedCalendar, calendar_publish, calendar_source

SOURCE = "marketdata.trading_calendar"
TRADING_WEEKDAYS = "1-5"
DEFAULT_EXCHANGE = "SSE"


def _published(exchange: str, days: Iterable[tuple]) -> PublishedCalendar | None:
    """The calendar of (date, is_open) pairs: only what differs from Monday to Friday is listed."""
    days = sorted(days)
    if not days:
        return None
    listed = [
        DaySpec(date=day, kind=OPEN if is_open else CLOSED)
        for day, is_open in days
        if is_open != (day.weekday() < 5)  # an open weekend day, or a closed weekday (a holiday)
    ]
    return PublishedCalendar(
        name=exchange,
        weekdays=TRADING_WEEKDAYS,
        days=listed,
        known_until=days[-1][0],
        description=f"{exchange} trading days, from the market-data app's trading calendar.",
    )


def exchange_calendar(exchange: str) -> PublishedCalendar | None:
    """The exchange's calendar from the synced table, or from the provider when nothing is synced."""
    rows = TradingDay.objects.filter(exchange=exchange).values_list("cal_date", "is_open")
    if rows.exists():
        return _published(exchange, rows)
    provider_rows = get_provider().trade_calendar(start=None, end=None, exchange=exchange)
    return _published(exchange, ((row["cal_date"], row["is_open"]) for row in provider_rows))


@calendar_source(SOURCE, description="Exchange trading days (one calendar per exchange).")
def trading_calendars() -> list[PublishedCalendar]:
    exchanges = sorted(set(TradingDay.objects.values_list("exchange", flat=True))) or [DEFAULT_EXCHANGE]
    return [calendar for calendar in map(exchange_calendar, exchanges) if calendar is not None]


def publish_trading_calendar(exchange: str) -> bool:
    """Publish one exchange's calendar to the scheduler; returns whether its days changed."""
    calendar = exchange_calendar(exchange)
    return calendar is not None and calendar_publish(calendar, source=SOURCE)
