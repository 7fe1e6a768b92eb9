"""Cron engine speed: the next 1,000 fire times, ours beside cronsim and croniter, and the cost of one
`CrontabTrigger.get_next_fire_time` call beside APScheduler's own CronTrigger.

Ours is the preview path (`next_fire_times`: build the trigger, walk it, show the times in the zone);
cronsim and croniter iterate from an aware start in the zone. Each figure is the best of REPEATS runs
(the machine is shared, so the best is the least disturbed one). Needs the dev extra (cronsim,
croniter). Usage: python bench/schedules.py [repeats]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from _common import ROOT, table

REPEATS = int(sys.argv[1]) if len(sys.argv) > 1 else 7
COUNT = 1000
EXPRESSIONS = ["* * * * *", "*/5 9-15 * * 1-5", "0 9 * * 1-5"]
ZONES = ["Asia/Shanghai", "America/New_York"]
# A Monday; the weekday schedules then run about four years ahead, through several DST changes.
START = (2026, 1, 5, 0, 0, 30)
CALLS = 20000


def best_ms(run) -> float:
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def ours(expression: str, zone: str, start: datetime) -> list[datetime]:
    from scheduler_app.schedules import next_fire_times

    return next_fire_times(cron_expression=expression, interval_seconds=None, timezone=zone, count=COUNT, now=start)


def with_cronsim(expression: str, start: datetime) -> list[datetime]:
    from cronsim import CronSim

    iterator = CronSim(expression, start)
    return [next(iterator) for _ in range(COUNT)]


def with_croniter(expression: str, start: datetime) -> list[datetime]:
    from croniter import croniter

    iterator = croniter(expression, start)
    return [iterator.get_next(datetime) for _ in range(COUNT)]


def per_call_us(trigger, previous: datetime) -> float:
    """Microseconds per get_next_fire_time(previous, now), best of REPEATS."""

    def run() -> None:
        for _ in range(CALLS):
            trigger.get_next_fire_time(previous, previous)

    return best_ms(run) * 1000 / CALLS


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zquant_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from apscheduler.triggers.cron import CronTrigger

    from scheduler_app.schedules import CrontabTrigger

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"next {COUNT} fire times, best of {REPEATS}; load average {load}; {os.cpu_count()} cores\n")
    rows = []
    for expression in EXPRESSIONS:
        for zone_name in ZONES:
            start = datetime(*START, tzinfo=ZoneInfo(zone_name))
            mine = [t.astimezone(UTC) for t in ours(expression, zone_name, start)]
            assert len(mine) == COUNT
            assert mine[0] > start
            ours_ms = best_ms(lambda e=expression, z=zone_name, s=start: ours(e, z, s))
            cronsim_ms = best_ms(lambda e=expression, s=start: with_cronsim(e, s))
            croniter_ms = best_ms(lambda e=expression, s=start: with_croniter(e, s))
            fastest = min(cronsim_ms, croniter_ms)
            rows.append(
                [
                    expression,
                    zone_name,
                    f"{ours_ms:.2f}",
                    f"{cronsim_ms:.2f}",
                    f"{croniter_ms:.2f}",
                    f"{ours_ms / fastest:.2f}",
                ]
            )
    print(table(["expression", "zone", "ours ms", "cronsim ms", "croniter ms", "ours/fastest"], rows))

    zone = ZoneInfo("Asia/Shanghai")
    previous = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    ours_us = per_call_us(CrontabTrigger("* * * * *", zone), previous)
    apscheduler_us = per_call_us(CronTrigger.from_crontab("* * * * *", timezone=zone), previous + timedelta(0))
    print(f"\nget_next_fire_time('* * * * *', Asia/Shanghai), best of {REPEATS} x {CALLS} calls:")
    print(
        table(
            ["trigger", "us per call"],
            [["CrontabTrigger (ours)", f"{ours_us:.2f}"], ["APScheduler CronTrigger", f"{apscheduler_us:.2f}"]],
        )
    )


if __name__ == "__main__":
    main()
