"""Walk a CrontabTrigger as APScheduler does and show its fire times readably."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from scheduler_app.schedules import CrontabTrigger


def fires(expression: str, zone: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    """The next `count` fire times from `start` (each call gets the previous fire time), in `zone`."""
    trigger = CrontabTrigger(expression, zone)
    result, previous = [], None
    for _ in range(count):
        previous = trigger.get_next_fire_time(previous, start)
        assert previous.utcoffset() == timedelta(0)  # instants, never wall clocks
        result.append(previous)
    return [t.astimezone(zone) for t in result]


def fires_between(expression: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in [start, end), in `zone`; checks they strictly increase."""
    trigger = CrontabTrigger(expression, zone)
    result, previous = [], None
    while True:
        fire = trigger.get_next_fire_time(previous, start)
        if fire is None or fire >= end:
            return [t.astimezone(zone) for t in result]
        assert previous is None or fire > previous
        result.append(fire)
        previous = fire


def runs_on(expression: str, zone_name: str, day: str) -> list[str]:
    """The fire times on a local calendar day, as "HH:MM ZONE" ("+Nus" for a run spaced after a jump)."""
    zone = ZoneInfo(zone_name)
    # From the first instant of the day's midnight to the last instant of the next (a midnight can repeat).
    start = datetime.fromisoformat(day).replace(tzinfo=zone)
    end = (datetime.fromisoformat(day) + timedelta(days=1)).replace(tzinfo=zone, fold=1)
    return [clock(t) for t in fires_between(expression, zone, start.astimezone(UTC), end.astimezone(UTC))]


def clock(t: datetime) -> str:
    spacing = f"+{t.microsecond}us" if t.microsecond else ""
    return f"{t:%H:%M}{spacing} {t:%Z}"


def local(times: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%d %a %H:%M %Z") for t in times]
